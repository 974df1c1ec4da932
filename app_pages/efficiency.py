"""Efficiency: latency, throughput and RAM against the baseline, with the machine they ran on; a bench
of other models than the compared pair is flagged."""
import streamlit as st

from core.views import charts
from core.lab.bench import PROTOCOL
from core.decide.kpi import match_bench
from core.views.dashboard import bench_files, bench_origin, default_pair_names, efficiency_rows
from core.views.fmt import model_name
from core.views.overview import short_path
from core.base.store import RunDir, read_json
from app_pages._common import store

st.title("Efficiency")
files = bench_files(store())
if not files:
    st.info("No bench.json yet: launch a bench run on the Runs screen (run kind: bench), or `make bench`.")
    st.stop()
path = st.selectbox("Benchmark", files, format_func=short_path)
bench = read_json(path)
origin = bench_origin(path)
if origin:
    st.info(origin)
pair = st.session_state.get("pair") or default_pair_names(store())
if pair:
    specs = [RunDir(store() / run).manifest().get("model") if (store() / run / "manifest.json").exists() else None
             for run in pair]
    if not all(match_bench(bench, spec) is not None for spec in specs):
        st.warning(f"This bench does not belong to the compared runs ({', '.join(model_name(s) for s in specs)}): "
                   f"it measured {', '.join(model_name(m) for m in bench.get('models', {}))}. The gate does not use "
                   "it for this pair.")
m = bench["machine"]
st.caption(f"Measured side by side in one run on {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB, GPU: {m['gpu']}), "
           f"torch threads {bench['torch_threads']}. " + " ".join(f"{k}: {v}." for k, v in PROTOCOL.items()))
rows = efficiency_rows(bench)
st.altair_chart(charts.efficiency_bars(rows), width="stretch")
st.dataframe(rows, hide_index=True, width="stretch",
             column_config={"value": st.column_config.NumberColumn("value", format="localized"),
                            "target": st.column_config.NumberColumn("candidate's target", format="localized"),
                            "spec": st.column_config.TextColumn("spec", help="the model spec the bench measured")})
