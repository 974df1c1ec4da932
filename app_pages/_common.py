"""Helpers the screens share: the run store, access policy and sign-in (UI only)."""
import streamlit as st

from core.base.store import store_root
from core.views import access
from core.views.dashboard import default_pair, default_pair_names
from core.views.fmt import model_name


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


def run_label(run: str) -> str:
    """A run as people read it: the model's name, then the run's."""
    from core.base.store import RunDir
    try:
        spec = RunDir(store() / run).manifest().get("model")
    except Exception:  # noqa: BLE001 - a run being written: its name alone
        return run
    return f"{model_name(spec)} · {run}"


def pick_pair(runs: list[str], labels=("Candidate", "Baseline")) -> tuple[str, str]:
    """Candidate and baseline, chosen explicitly: the pair chosen on any screen this session, else the
    default (latest HRM vs latest GPT-2; the first run's real pair)."""
    chosen = st.session_state.get("pair") or default_pair_names(store())
    a, b = default_pair(runs, chosen)
    c1, c2 = st.columns(2)
    help_ = "the model's spec and the run directory are on the Runs screen"
    cand = c1.selectbox(labels[0], runs, index=a, format_func=run_label, help=help_)
    base = c2.selectbox(labels[1], runs, index=b, format_func=run_label, help=help_)
    st.session_state["pair"] = (cand, base)
    return cand, base


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


@st.fragment(run_every=3)
def follow_store() -> None:
    """Reruns the screen when a run appears, ends or fails: screens follow running jobs without a reload."""
    from core.views.dashboard import runs_table
    state = tuple((r["run"], r["status"]) for r in runs_table(store()))
    if st.session_state.setdefault("store_state", state) != state:
        st.session_state["store_state"] = state
        st.rerun()
