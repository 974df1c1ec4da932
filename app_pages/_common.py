"""Helpers the screens share: the run store, access policy and sign-in (UI only)."""
import time
from pathlib import Path

import streamlit as st

from core.base.store import store_root
from core.views import access
from core.views.config import AppConfig
from core.views.dashboard import default_pair, default_pair_names
from core.views.fmt import model_name
from core.views.jobs import form_value
from core.views.quickstart import EXPECTED_TIME


SCREENS = Path(__file__).resolve().parent


def link_to(screen: str, label: str, icon: str | None = None) -> None:
    """A link to another screen: its st.Page by the same file st.navigation registered (app.py)."""
    st.page_link(st.Page(SCREENS / f"{screen}.py"), label=label, icon=icon)


def lead_to_runs(step: str, evaluated: int, then: str) -> None:
    """What a screen with too few runs says instead of a dead end (core.views.overview.next_step): the first
    run, runs under way, or another run to launch, with a link to the Runs screen; `then`: what this screen
    shows once there are runs."""
    sign_in = "" if signed_in(access_policy()) else " Sign in (sidebar) to launch it."
    if step == "first run":
        st.info("**Start here: your first comparison.** No runs of your own yet. On the Runs screen, **Score the "
                "published generations** scores real ChatGPT solutions to 397 MBPP tasks (MapCoder, Reflexion, "
                f"Analogical prompting) and MBPP's 500 reference solutions in our sandbox, in {EXPECTED_TIME}; "
                f"then {then}." + sign_in)
        link_to("runs", "Go to the first run (Runs screen)", icon=":material/play_arrow:")
    elif step == "under way":
        st.info("Your runs are under way: this screen fills in as soon as two evaluated runs are done.")
        link_to("runs", "Follow them on the Runs screen", icon=":material/pending:")
    else:
        st.info(f"A comparison needs two evaluated runs; there {'is one' if evaluated else 'is none'} so far. "
                "Launch one on the Runs screen (Launch a run)." + sign_in)
        link_to("runs", "Go to the Runs screen", icon=":material/play_arrow:")


def store():
    return store_root()


def app_config() -> AppConfig:
    return AppConfig.from_env()


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def access_policy() -> access.Policy:
    return access.policy(st.get_option("server.address"), _oidc_configured(), dict(st.context.headers))


def _client() -> str:
    return access.client_id(st.context.ip_address, dict(st.context.headers))


def current_user(policy: access.Policy) -> str | None:
    """Who is signed in (None: nobody); 'local' on an app that needs no sign-in."""
    if not policy.hosted:
        return "local"
    cfg = app_config()
    if policy.oidc:
        if not getattr(st.user, "is_logged_in", False):
            return None
        email = st.user.get("email")
        if not access.email_allowed(email, cfg.allowed_emails) or st.user.get("email_verified") is False:
            return None
        issued = st.user.get("iat")  # the ID token's issue time (OIDC requires it): the sign-in's age
        if not isinstance(issued, (int, float)) or not access.login_fresh(float(issued), cfg):
            return None
        return str(email).lower()
    if policy.token_configured and access.login_fresh(st.session_state.get("signed_in_at"), cfg):
        return "token"
    return None


def signed_in(policy: access.Policy) -> bool:
    return current_user(policy) is not None


def _sign_out() -> None:
    st.session_state.pop("signed_in_at", None)


def sidebar_sign_in(policy: access.Policy) -> None:
    if not policy.hosted:
        return
    cfg = app_config()
    with st.sidebar:
        if policy.oidc:
            if signed_in(policy):
                st.caption(f"Signed in as {current_user(policy)}")
                st.button("Sign out", on_click=st.logout)
            elif getattr(st.user, "is_logged_in", False):
                st.warning(f"{st.user.get('email', 'this account')} may not sign in here, or its sign-in has "
                           "expired (HRM_GATE_ALLOWED_EMAILS).")
                st.button("Sign out", on_click=st.logout)
            else:
                st.button("Sign in", on_click=st.login)
        elif policy.token_configured:
            if signed_in(policy):
                st.caption("Signed in with the access token")
                st.button("Sign out", on_click=_sign_out)
            else:
                _sign_out()
                with st.form("sign-in", clear_on_submit=True):
                    token = st.text_input("Access token", type="password")
                    if st.form_submit_button("Sign in"):
                        ok, message = access.token_login(token, _client(), cfg)
                        if ok:
                            st.session_state["signed_in_at"] = time.time()
                            st.rerun()
                        st.error(message)
        elif policy.token_too_short:
            st.caption(f"HRM_GATE_ACCESS_TOKEN is shorter than {cfg.min_token_length} characters: sign-in is "
                       "disabled until it is longer.")
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
    if (cand, base) != (runs[a], runs[b]):  # a choice, kept for every screen; a default is worked out afresh
        st.session_state["pair"] = (cand, base)
    if cand == base:
        st.warning("Candidate and baseline are the same run: choose two.")
        st.stop()
    return cand, base


def choose_tasks(cand: str, base: str) -> bool:
    """Whether to compare on the tasks both runs have: offered, with the dropped counts, where the task sets
    differ. A run whose files cannot be read is named and the screen stops there."""
    from core.base.errors import GateError
    from core.views.overview import task_overlap
    try:
        overlap = task_overlap(store() / cand, store() / base)
    except GateError as exc:
        st.error(f"These two runs cannot be compared: {exc}")
        st.stop()
    if not (overlap["only_a"] or overlap["only_b"]):
        return False
    return st.checkbox(f"Compare on the {overlap['common']:,} tasks both runs have (drops {overlap['only_a']:,} of "
                       f"the candidate's and {overlap['only_b']:,} of the baseline's)", value=True)


def setting_input(field: dict):
    """A launch-form input for one setting of a run kind's config (core.views.jobs.form_fields)."""
    default, low = field["default"], field["minimum"]
    if field["type"] == "bool":
        return st.checkbox(field["label"], value=default, help=field["help"])
    if field["type"] == "float":
        return st.number_input(field["label"], min_value=float(low or 0), value=float(default), help=field["help"])
    if default is None:  # an optional count: shown at the count that "no limit" means, where it is known
        every = field["all"]
        if every:
            value = st.number_input(field["label"], min_value=1, max_value=every, value=every,
                                    help=f"{field['help']}: MBPP's test split has {every:,}; {every:,}, the default, "
                                         "runs all of them")
        else:
            value = st.number_input(field["label"], min_value=0, value=0, help=field["help"] + " (0: all)")
        return form_value(field, value)
    return int(st.number_input(field["label"], min_value=int(low or 0), value=int(default), help=field["help"]))


@st.fragment(run_every=3)
def follow_store() -> None:
    """Reruns the screen when a run appears, ends or fails: screens follow running jobs without a reload."""
    from core.views.dashboard import runs_table
    state = tuple((r["run"], r["status"]) for r in runs_table(store()))
    if st.session_state.setdefault("store_state", state) != state:
        st.session_state["store_state"] = state
        st.rerun()
