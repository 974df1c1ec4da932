"""Report: export the summary PDF for the release gate."""
import streamlit as st

from core.base.errors import GateError
from core.base.settings import RESULTS_DIR
from core.base.store import list_runs
from core.decide.gate import run_gate
from core.publish.report import build_report
from core.views.dashboard import eval_runs
from app_pages._common import access_policy, pick_pair, signed_in, store

st.title("Report")
runs = [r.run_id for r in eval_runs(store())]
if len(runs) < 2:
    st.info("Two evaluated runs are needed.")
    st.stop()
cand, base = pick_pair(runs)
train_runs = ["(none)"] + [r.run_id for r in list_runs(store(), readable_only=True)
                            if r.manifest().get("kind") == "train"]
train = st.selectbox("Training run", train_runs)
bench = RESULTS_DIR / "bench.json"
if not signed_in(access_policy()):
    st.caption("Sign in to build the PDF.")
elif st.button("Build the PDF", type="primary"):
    bench_file = str(bench) if bench.exists() else None
    train_run = str(store() / train) if train != "(none)" else None
    try:  # decide, then render: the PDF is built in memory, nothing is written to the run store
        gate = run_gate(str(store() / cand), str(store() / base), bench=bench_file,
                        train_runs=[train_run] if train_run else None)
        st.session_state["pdf"] = build_report(gate.stats, str(store() / cand), str(store() / base), None,
                                               bench_file, train_run)
    except GateError as exc:
        st.error(str(exc))
if st.session_state.get("pdf"):
    st.download_button("Download summary.pdf", st.session_state["pdf"], file_name="summary.pdf",
                       mime="application/pdf")
