"""Helpers the screens share: the run store, access policy and sign-in (UI only)."""
import streamlit as st

from core import access
from core.store import store_root


def store():
    return store_root()


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def access_policy() -> access.Policy:
    return access.policy(st.get_option("server.address"), _oidc_configured())


def signed_in(policy: access.Policy) -> bool:
    if policy.oidc:
        return bool(getattr(st.user, "is_logged_in", False))
    return bool(st.session_state.get("signed_in"))


def sidebar_sign_in(policy: access.Policy) -> None:
    if not policy.hosted:
        return
    with st.sidebar:
        if policy.oidc:
            if signed_in(policy):
                st.caption(f"Signed in as {st.user.get('email', 'user')}")
                st.button("Sign out", on_click=st.logout)
            else:
                st.button("Sign in", on_click=st.login)
        elif policy.token_configured:
            if signed_in(policy):
                st.caption("Signed in with the access token")
            else:
                token = st.text_input("Access token", type="password", key="access_token")
                if st.button("Sign in") and access.token_ok(token):
                    st.session_state["signed_in"] = True
                    st.rerun()
        else:
            st.caption("Hosted without a login provider or HRM_GATE_ACCESS_TOKEN: launching is disabled.")
