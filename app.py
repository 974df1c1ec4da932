"""HRM-CodeGen Gate: the Streamlit app. Every number comes from core/; pages/ only render it."""
import streamlit as st

from pages._common import access_policy, sidebar_sign_in

st.set_page_config(page_title="HRM-CodeGen Gate", layout="wide")
policy = access_policy()
sidebar_sign_in(policy)
if policy.browse_needs_login and not st.session_state.get("signed_in"):
    st.title("HRM-CodeGen Gate")
    st.info("Sign in (sidebar) to browse this hosted app.")
    st.stop()
pages = [
    st.Page("pages/runs.py", title="Runs", default=True),
    st.Page("pages/accuracy.py", title="Accuracy"),
    st.Page("pages/significance.py", title="Significance"),
    st.Page("pages/efficiency.py", title="Efficiency"),
    st.Page("pages/training.py", title="Training"),
    st.Page("pages/health.py", title="System health"),
    st.Page("pages/tasks.py", title="Per-task drill-down"),
    st.Page("pages/report.py", title="Report"),
]
st.navigation(pages).run()
