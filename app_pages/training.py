"""Training: validation loss vs training FLOPs of compute-matched experiments; loss, learning rate and
gradient norm vs step of any run."""
import streamlit as st

from core.views import charts
from core.views.dashboard import corpus_rows, experiments, flops_curves, training_rows, PRETRAIN_RUNS
from core.base.store import RunDir, list_runs, read_json
from app_pages._common import follow_store, store

st.title("Training")
follow_store()
found = experiments()
if found:
    st.subheader("Compute-matched pretraining")
    exp = st.selectbox("Experiment", found, format_func=lambda p: p.name)
    rows, budget, final = flops_curves([RunDir(exp / r) for r in PRETRAIN_RUNS])
    if rows:
        st.altair_chart(charts.val_loss_vs_flops(rows, budget), width="stretch")
    st.dataframe(final, hide_index=True)
    corpus = (RunDir(exp / PRETRAIN_RUNS[0]).manifest().get("protocol") or {}).get("corpus")
    if corpus and (RunDir(corpus).file("manifest.json")).exists():
        with st.expander("Corpus manifest"):
            st.table({k: v for k, v in corpus_rows(read_json(RunDir(corpus).file("manifest.json")))})
    st.subheader("Any run")
runs = [r for r in list_runs(store(), readable_only=True) if r.file("metrics.jsonl").exists()]
if not runs:
    st.info("No training run yet: launch one on the Runs screen or `python -m core train ...`.")
    st.stop()
run = st.selectbox("Run", runs, format_func=lambda r: r.run_id)
rows = training_rows(run)
st.altair_chart(charts.training_lines(rows), width="stretch")
st.caption(f"{len(set(r['step'] for r in rows))} steps; status {run.status()}.")
