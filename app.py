"""HRM-CodeGen Gate: the Streamlit app. Every number comes from core/; pages/ only render it."""
import streamlit as st

st.set_page_config(page_title="HRM-CodeGen Gate", layout="wide")
pages = [st.Page("pages/runs.py", title="Runs", default=True)]
st.navigation(pages).run()
