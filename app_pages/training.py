"""Training: loss, learning rate and gradient norm vs step."""
import streamlit as st

from core.views import charts
from core.views.dashboard import training_rows
from core.base.store import list_runs
from app_pages._common import follow_store, store

st.title("Training")
follow_store()
runs = [r for r in list_runs(store()) if r.file("metrics.jsonl").exists()]
if not runs:
    st.info("No training run yet: launch one on the Runs screen or `python -m core train ...`.")
    st.stop()
run = st.selectbox("Run", runs, format_func=lambda r: r.run_id)
rows = training_rows(run)
st.altair_chart(charts.training_lines(rows), width="stretch")
st.caption(f"{len(set(r['step'] for r in rows))} steps; status {run.status()}.")
