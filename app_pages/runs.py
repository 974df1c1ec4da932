"""Runs: the store, running jobs with live progress, launch and cancel, and the first-run screen."""
import streamlit as st

from core.views import jobs
from core.views.access import AccessDenied, require_launch
from core.base.errors import GateError
from core.base.settings import MBPP_PATH
from core.base.store import RunDir, list_runs
from core.views.dashboard import results_so_far, runs_table
from core.views.isolation import reduced_runs
from core.views.quickstart import quick_validation
from app_pages._common import access_policy, app_config, current_user, setting_input, store

SEED_MODELS = {"HRM-27M": "hrm:27m", "GPT-2-117M": "hf:gpt2", "CodeT5-small": "hf:Salesforce/codet5-small"}

st.title("Runs")
policy = access_policy()
user = current_user(policy)
can_launch = user is not None
rows = runs_table(store())


def launch(req: jobs.JobRequest) -> None:
    try:
        require_launch(policy, current_user(policy) is not None)  # enforced here, not only by hiding the form
        run_dir = jobs.launch(req, store(), user=user, caps=app_config())
        st.success(f"started {req.kind} run {run_dir.name}")
    except (GateError, AccessDenied, ValueError) as exc:
        st.error(str(exc))


if not rows:
    st.markdown("**HRM-CodeGen Gate** decides with evidence whether our 27M-parameter HRM beats GPT-2 at MBPP "
                "code generation and is cheaper to run: it evaluates models in a sandbox, benchmarks their cost, "
                "tests the difference for significance and applies the release-gate KPIs.")
    st.info("The run store is empty. A quick validation runs real MBPP tasks: the reference solutions (oracle), "
            "empty completions, and our untrained tiny HRM, so you see every panel with real numbers in about a minute.")
    if can_launch and st.button("Run a quick validation", type="primary"):
        for req in quick_validation(MBPP_PATH):
            launch(req)
        st.rerun()
else:
    selected = st.multiselect("Runs to compare on the other screens", [r["run"] for r in rows],
                              default=st.session_state.get("selected_runs", [r["run"] for r in rows][:2]))
    st.session_state["selected_runs"] = selected
    st.dataframe(rows, width="stretch", hide_index=True)
    for run_id, why in reduced_runs(list_runs(store(), readable_only=True)).items():
        st.warning(f"{run_id}: its samples ran with reduced isolation: {why}.")


@st.fragment(run_every=2)
def running_jobs():
    live = jobs.running_jobs(store())
    if not live:
        return
    st.subheader("Running")
    for job in live:
        name = job["run"]
        run = RunDir(store() / name)
        done = results_so_far(run)
        cols = st.columns([3, 2, 1])
        cols[0].write(f"**{name}** `{' '.join(job['argv'][:3])}`")
        cols[1].write(f"{done} results so far")
        own = job.get("user") in (user, None)  # a user cancels their own jobs (and those launched before users)
        if can_launch and own and cols[2].button("Cancel", key=f"cancel-{name}"):
            require_launch(policy, current_user(policy) == user)
            jobs.cancel(run.path)


running_jobs()

if can_launch:
    with st.expander("Launch a run", expanded=not rows):
        with st.form("launch"):
            kind = st.selectbox("Kind", jobs.KINDS)
            name = st.text_input("Run name", placeholder="letters, digits, . _ -")
            preset = st.selectbox("Model", list(SEED_MODELS) + ["hrm:tiny", "oracle"])
            other = st.text_input("Model spec (overrides the model above)", placeholder="hf:/path/to/model")
            baseline = st.text_input("Baseline (bench only)", value="hf-arch:gpt2")
            values = {k: {f["name"]: setting_input(f) for f in jobs.form_fields(k)} for k in jobs.KINDS}
            if st.form_submit_button("Launch"):
                spec = other.strip() or SEED_MODELS.get(preset, preset)
                data = {"data_path": MBPP_PATH} if kind != "bench" else {}
                launch(jobs.JobRequest(kind, name, spec, {**data, **values[kind]},
                                       baseline=baseline if kind == "bench" else None))
elif policy.hosted:
    st.caption("Sign in to launch or cancel runs.")
