"""Report: export the summary PDF for the release gate."""
from pathlib import Path

import streamlit as st

from core.dashboard import eval_runs
from core.errors import GateError
from core.report import build_report
from core.store import list_runs
from core.store import REPO_ROOT
from app_pages._common import store

st.title("Report")
runs = [r.run_id for r in eval_runs(store())]
if len(runs) < 2:
    st.info("Two evaluated runs are needed.")
    st.stop()
c1, c2 = st.columns(2)
cand = c1.selectbox("Candidate", runs, index=0)
base = c2.selectbox("Baseline", runs, index=1)
train_runs = ["(none)"] + [r.run_id for r in list_runs(store()) if r.manifest().get("kind") == "train"]
train = st.selectbox("Training run", train_runs)
bench = REPO_ROOT / "results" / "bench.json"
if st.button("Build the PDF", type="primary"):
    out = store() / cand / "summary.pdf"
    try:
        build_report(str(store() / cand), str(store() / base), out, str(bench) if bench.exists() else None,
                     str(store() / train) if train != "(none)" else None)
        st.session_state["pdf"] = str(out)
    except GateError as exc:
        st.error(str(exc))
if st.session_state.get("pdf"):
    st.download_button("Download summary.pdf", Path(st.session_state["pdf"]).read_bytes(), file_name="summary.pdf",
                       mime="application/pdf")
