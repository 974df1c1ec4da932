"""Helpers the screens share: the run store, access policy and sign-in (UI only)."""
import streamlit as st

from core.base.store import store_root
from core.views import access
from core.views.dashboard import default_pair


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


def pick_pair(runs: list[str], labels=("Candidate", "Baseline")) -> tuple[str, str]:
    """Two run selectors, defaulting to the pair chosen on the Runs screen."""
    a, b = default_pair(runs, st.session_state.get("selected_runs"))
    c1, c2 = st.columns(2)
    return c1.selectbox(labels[0], runs, index=a), c2.selectbox(labels[1], runs, index=b)


def setting_input(field: dict):
    """A launch-form input for one setting of a run kind's config (core.views.jobs.form_fields)."""
    default, low = field["default"], field["minimum"]
    if field["type"] == "bool":
        return st.checkbox(field["label"], value=default, help=field["help"])
    if field["type"] == "float":
        return st.number_input(field["label"], min_value=float(low or 0), value=float(default), help=field["help"])
    if default is None:  # an optional count: 0 stands for "no limit"
        value = st.number_input(field["label"], min_value=0, value=0, help=field["help"] + " (0: all)")
        return int(value) or None
    return int(st.number_input(field["label"], min_value=int(low or 0), value=int(default), help=field["help"]))
