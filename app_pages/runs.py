"""Runs: the store, running jobs with live progress, launch and cancel, and the first-run screen."""
import streamlit as st

from core import jobs
from core.access import AccessDenied, require_launch
from core.dashboard import runs_table
from core.errors import GateError
from core.store import RunDir
from app_pages._common import access_policy, signed_in, store

MBPP = "../shared/data/mbpp/mbpp.jsonl"
SEED_MODELS = {"HRM-27M": "hrm:27m", "GPT-2-117M": "hf:gpt2", "CodeT5-small": "hf:Salesforce/codet5-small"}

st.title("Runs")
policy = access_policy()
can_launch = not policy.hosted or signed_in(policy)
rows = runs_table(store())


def launch(req: jobs.JobRequest) -> None:
    try:
        require_launch(policy, signed_in(policy))  # enforced here, not only by hiding the form
        run_dir = jobs.launch(req, store())
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
        import json
        import tempfile
        empty = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, prefix="empty-")
        empty.write("".join(json.dumps({"task_id": t, "completion": ""}) + "\n" for t in range(11, 31)))
        empty.close()
        launch(jobs.JobRequest("eval", "quick-oracle", "oracle", data_path=MBPP, limit=20))
        launch(jobs.JobRequest("eval", "quick-empty", "oracle", samples=empty.name, data_path=MBPP, limit=20))
        launch(jobs.JobRequest("eval", "quick-hrm-tiny", "hrm:tiny", data_path=MBPP, limit=5, max_new_tokens=48))
        st.rerun()
else:
    selected = st.multiselect("Runs to compare on the other screens", [r["run"] for r in rows],
                              default=st.session_state.get("selected_runs", [r["run"] for r in rows][:2]))
    st.session_state["selected_runs"] = selected
    st.dataframe(rows, width="stretch", hide_index=True)


@st.fragment(run_every=2)
def running_jobs():
    live = [(r["run"], jobs.job_status(store() / r["run"])) for r in runs_table(store())]
    live = [(name, j) for name, j in live if j and j["status"] == "running"]
    if not live:
        return
    st.subheader("Running")
    for name, job in live:
        run = RunDir(store() / name)
        done = 0
        if run.file("results.jsonl").exists():
            done = run.file("results.jsonl").read_text().count("\n")
        cols = st.columns([3, 2, 1])
        cols[0].write(f"**{name}** `{' '.join(job['argv'][:3])}`")
        cols[1].write(f"{done} results so far")
        if can_launch and cols[2].button("Cancel", key=f"cancel-{name}"):
            require_launch(policy, signed_in(policy))
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
            limit = st.number_input("Tasks (eval)", min_value=1, max_value=500, value=20)
            n = st.number_input("Samples per task (eval)", min_value=1, max_value=200, value=1)
            steps = st.number_input("Steps (train)", min_value=1, max_value=100000, value=20)
            if st.form_submit_button("Launch"):
                spec = other.strip() or SEED_MODELS.get(preset, preset)
                launch(jobs.JobRequest(kind, name, spec, data_path=MBPP, limit=int(limit), n=int(n), steps=int(steps),
                                       baseline=baseline if kind == "bench" else None))
elif policy.hosted:
    st.caption("Sign in to launch or cancel runs.")
