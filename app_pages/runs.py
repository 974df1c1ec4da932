"""Runs: the store (failed and cancelled jobs with their error), live while jobs run, the pair the other
screens compare, launch and cancel, and the first-run screen."""
import streamlit as st

from core.views import jobs
from core.views.access import AccessDenied, require_launch
from core.base.errors import GateError
from core.base.settings import MBPP_PATH, PUBLISHED_DIR
from core.base.store import RunDir, list_runs
from core.views.estimate import launch_warning
from core.views.dashboard import default_pair_names, results_so_far, runs_for_people, runs_table
from core.views.fmt import PCT_COLUMN, TIME_COLUMN
from core.views.isolation import reduced_runs
from core.views.quickstart import EXPECTED_TIME, quick_validation
from app_pages._common import access_policy, app_config, current_user, setting_input, store

SEED_MODELS = {"HRM-27M": "hrm:27m", "GPT-2-117M": "hf:gpt2", "CodeT5-small": "hf:Salesforce/codet5-small"}
COLUMNS = {"run": st.column_config.TextColumn("run"),
           "model": st.column_config.TextColumn("model", help="the model's name; its spec is in the next column"),
           "spec": st.column_config.TextColumn("spec", help="the model spec the run was made with"),
           "pass@1": st.column_config.NumberColumn("pass@1", format=PCT_COLUMN),
           "pass@10": st.column_config.NumberColumn("pass@10", format=PCT_COLUMN),
           "started": st.column_config.DatetimeColumn("started", format=TIME_COLUMN,
                                                      help="when the run started, in your time zone"),
           "tasks": st.column_config.NumberColumn("tasks", format="localized"),
           "samples": st.column_config.NumberColumn("samples", format="localized"),
           "error": st.column_config.TextColumn("error", help="why a failed or cancelled job ended (job.log)",
                                                width="large")}

st.title("Runs")
policy = access_policy()
user = current_user(policy)
can_launch = user is not None


def launch(req: jobs.JobRequest) -> None:
    try:
        require_launch(policy, current_user(policy) is not None)  # enforced here, not only by hiding the form
        run_dir = jobs.launch(req, store(), user=user, caps=app_config())
        st.success(f"started {req.kind} run {run_dir.name}")
    except (GateError, AccessDenied, ValueError) as exc:
        st.error(str(exc))


def first_run() -> None:
    st.markdown("**HRM-CodeGen Gate** decides with evidence whether our 27M-parameter HRM beats GPT-2 at MBPP "
                "code generation and is cheaper to run: it evaluates models in a sandbox, benchmarks their cost, "
                "tests the difference for significance and applies the release-gate KPIs.")
    st.info("The run store is empty. The first run scores real published generations in our sandbox: ChatGPT on "
            "397 MBPP tasks under three methods (MapCoder, Reflexion, Analogical prompting; Islam et al., ACL "
            "2024), each against its own tests, with the authors' own pass/fail labels checked against ours; and "
            f"the oracle check (MBPP's 500 reference solutions must all pass). It takes {EXPECTED_TIME}; then the "
            "Overview shows MapCoder against Analogical prompting.")
    if can_launch and st.button("Score the published generations", type="primary"):
        try:
            requests = quick_validation(MBPP_PATH, PUBLISHED_DIR, store())
        except GateError as exc:
            st.error(str(exc))
            return
        for req in requests:
            launch(req)
        st.rerun()


def _pair_picked() -> None:
    picked = st.session_state["pair_pick"]
    st.session_state["pair_editing"] = len(picked) != 2  # one of two chosen so far: keep it as it is
    if len(picked) == 2:
        st.session_state["pair"] = tuple(picked)


def pair_picker(names: list[str]) -> None:
    """Candidate then baseline, kept in the session for every screen (a keyed widget: no change is lost).
    Until someone chooses, the default pair is worked out afresh as runs finish (it never sticks to the
    first runs that happened to be done)."""
    current = st.session_state.get("pair_pick", [])
    if not st.session_state.get("pair_editing"):
        current = st.session_state.get("pair") or default_pair_names(store()) or ()
    st.session_state["pair_pick"] = [n for n in current if n in names]
    st.multiselect("Candidate, then baseline (the other screens compare these two)", names,
                   key="pair_pick", max_selections=2, on_change=_pair_picked)


@st.fragment(run_every=2)
def live_store():
    """Re-read every 2 s: runs appear, finish and fail without a reload."""
    rows = runs_table(store())
    if st.session_state.setdefault("store_had_runs", bool(rows)) != bool(rows):
        st.session_state["store_had_runs"] = bool(rows)
        st.rerun()  # the whole screen: the first-run panel gives way to the table
    if not rows:
        first_run()
        return
    pair_picker([r["run"] for r in rows if r["kind"] == "eval" and r["status"] == "done"])
    st.dataframe(runs_for_people(rows, st.context.timezone), width="stretch", hide_index=True, column_config=COLUMNS,
                 column_order=["run", "model", "status", "dataset", "tasks", "samples", "pass@1", "pass@10",
                               "started", "spec", "error"])
    for run_id, why in reduced_runs(list_runs(store(), readable_only=True)).items():
        st.warning(f"{run_id}: its samples ran with reduced isolation: {why}.")
    for r in rows:
        if r.get("error"):
            with st.expander(f"{r['run']}: {r['status']} — {r['error'][:120]}"):
                log = store() / r["run"] / "job.log"
                st.code(log.read_text(encoding="utf-8", errors="replace")[-4000:] if log.exists() else r["error"])
    running = [(r["run"], jobs.job_status(store() / r["run"])) for r in rows]
    running = [(name, j) for name, j in running if j and j["status"] == "running"]
    if running:
        st.subheader("Running")
    for name, job in running:
        run = RunDir(store() / name)
        cols = st.columns([3, 2, 1])
        row = next(r for r in rows if r["run"] == name)
        cols[0].write(f"**{name}**: {job.get('kind') or row['kind']} of {row['model']}")
        cols[1].write(f"{results_so_far(run):,} results so far")
        own = job.get("user") in (user, None)  # a user cancels their own jobs (and those launched before users)
        if can_launch and own and cols[2].button("Cancel", key=f"cancel-{name}"):
            require_launch(policy, current_user(policy) == user)
            jobs.cancel(run.path)


live_store()

if can_launch:
    with st.expander("Launch a run", expanded=False):
        with st.form("launch"):
            kind = st.selectbox("Kind", jobs.KINDS)
            name = st.text_input("Run name", placeholder="letters, digits, . _ - (empty: kind, model and time, e.g. "
                                                          "eval-hrm-27m-20261201-1231)")
            preset = st.selectbox("Model", list(SEED_MODELS) + ["hrm:tiny", "oracle"])
            other = st.text_input("Model spec (overrides the model above)", placeholder="hf:/path/to/model")
            baseline = st.text_input("Baseline (bench only)", value="hf-arch:gpt2")
            values = {k: {f["name"]: setting_input(f) for f in jobs.form_fields(k)} for k in jobs.KINDS}
            if st.form_submit_button("Launch"):
                spec = other.strip() or SEED_MODELS.get(preset, preset)
                data = {"data_path": MBPP_PATH} if kind != "bench" else {}
                name = name.strip() or jobs.default_name(kind, spec, store())
                req = jobs.JobRequest(kind, name, spec, {**data, **values[kind]},
                                      baseline=baseline if kind == "bench" else None)
                warning = launch_warning(req, store())
                st.session_state["pending_launch"] = (req, warning) if warning else None
                if not warning:
                    launch(req)
    if st.session_state.get("pending_launch"):  # said before an untrained model runs many tasks
        req, warning = st.session_state["pending_launch"]
        st.warning(warning)
        go, back = st.columns(2)
        if go.button("Launch anyway"):
            st.session_state["pending_launch"] = None
            launch(req)
        if back.button("Do not launch"):
            st.session_state["pending_launch"] = None
            st.rerun()
elif policy.hosted:
    st.caption("Sign in to launch or cancel runs.")
