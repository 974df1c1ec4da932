"""Report: the summary PDF of the chosen pair, decided in memory, its verdict stated and its first page
previewed before the download."""
import subprocess

import streamlit as st

from core.base.errors import GateError
from core.base.store import list_runs
from core.decide.gate import run_gate
from core.publish.report import build_report
from core.views.dashboard import eval_runs, pdf_first_page_png
from core.views.overview import COLOURS, matching_bench, next_step
from app_pages._common import access_policy, choose_tasks, lead_to_runs, pick_pair, signed_in, store

st.title("Report")
runs = [r.run_id for r in eval_runs(store())]
if len(runs) < 2:
    lead_to_runs(next_step(store()), len(runs), "this screen builds the PDF of MapCoder against Analogical prompting")
    st.stop()
cand, base = pick_pair(runs)
train_runs = ["(none)"] + [r.run_id for r in list_runs(store(), readable_only=True)
                            if r.manifest().get("kind") == "train"]
train = st.selectbox("Training run", train_runs)
intersection = choose_tasks(cand, base)
if not signed_in(access_policy()):
    st.caption("Sign in to build the PDF.")
elif st.button("Build the PDF", type="primary"):
    bench, _ = matching_bench(store() / cand, store() / base, store())
    bench_file = str(bench) if bench else None
    train_run = str(store() / train) if train != "(none)" else None
    try:  # decide, then render: the PDF is built in memory, nothing is written to the run store
        gate = run_gate(str(store() / cand), str(store() / base), bench=bench_file,
                        train_runs=[train_run] if train_run else None, intersection=intersection)
        pdf = build_report(gate.stats, str(store() / cand), str(store() / base), None, bench_file, train_run)
        st.session_state["pdf"] = ((cand, base, train, intersection), gate.stats["verdict"],
                                   gate.stats["gate"]["reasons"], pdf)
    except GateError as exc:
        st.error(str(exc))
built = st.session_state.get("pdf")
if built and built[0] != (cand, base, train, intersection):  # built for another choice: not shown as this one's
    st.caption("The PDF built before was for another pair or training run: build it again for this one.")
elif built:
    (cand_r, base_r, _, _), verdict, reasons, pdf = built
    st.markdown(f"<div style='background:{COLOURS[verdict]};color:white;padding:0.5rem 1rem;border-radius:0.4rem;"
                f"font-size:1.6rem;font-weight:700'>Verdict: {verdict}</div>", unsafe_allow_html=True)
    st.caption(f"{cand_r} (candidate) vs {base_r} (baseline): " + "; ".join(reasons[:3]))
    st.download_button("Download summary.pdf", pdf, file_name="summary.pdf", mime="application/pdf")
    try:
        st.image(pdf_first_page_png(pdf), caption="Page 1 of summary.pdf", width=620)
    except (OSError, subprocess.SubprocessError) as exc:  # no pdftoppm: the download still works
        st.caption(f"No preview ({exc}); `make test` installs poppler-utils for it.")
