"""Efficiency: latency, throughput and RAM against the baseline, with the machine they ran on."""
import streamlit as st

from core.views import charts
from core.lab.bench import PROTOCOL
from core.views.dashboard import bench_files, efficiency_rows
from core.base.store import read_json
from app_pages._common import store

st.title("Efficiency")
files = bench_files(store())
if not files:
    st.info("No bench.json yet: run `make bench` or launch a bench run.")
    st.stop()
path = st.selectbox("Benchmark", files, format_func=lambda p: str(p))
bench = read_json(path)
m = bench["machine"]
st.caption(f"Measured side by side in one run on {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB, GPU: {m['gpu']}), "
           f"torch threads {bench['torch_threads']}. " + " ".join(f"{k}: {v}." for k, v in PROTOCOL.items()))
rows = efficiency_rows(bench)
st.altair_chart(charts.efficiency_bars(rows), width="stretch")
st.dataframe(rows, hide_index=True, width="stretch")
