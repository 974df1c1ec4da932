"""HRM-CodeGen Gate: the Streamlit app. Every number comes from core/; app_pages/ only render it (not pages/: Streamlit would also auto-discover that folder beside st.navigation)."""
import streamlit as st

from app_pages._common import access_policy, sidebar_sign_in, signed_in

st.set_page_config(page_title="HRM-CodeGen Gate", layout="wide")
policy = access_policy()
sidebar_sign_in(policy)
if policy.hosted and policy.browse_needs_login and not signed_in(policy):
    st.title("HRM-CodeGen Gate")
    st.info("Sign in (sidebar) to browse this hosted app.")
    st.stop()
pages = [
    st.Page("app_pages/overview.py", title="Overview", default=True),
    st.Page("app_pages/runs.py", title="Runs"),
    st.Page("app_pages/accuracy.py", title="Accuracy"),
    st.Page("app_pages/significance.py", title="Significance"),
    st.Page("app_pages/efficiency.py", title="Efficiency"),
    st.Page("app_pages/training.py", title="Training"),
    st.Page("app_pages/health.py", title="System health"),
    st.Page("app_pages/tasks.py", title="Per-task drill-down"),
    st.Page("app_pages/report.py", title="Report"),
]
st.navigation(pages).run()
