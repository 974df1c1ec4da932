"""Accuracy: final pass@k per run with 95% CIs, and pass@k vs training step."""
import streamlit as st

from core.decide.kpi import load_kpis
from core.views import charts
from core.views.dashboard import eval_runs, pass_at_k_with_ci, pass_vs_step
from app_pages._common import follow_store, store

st.title("Accuracy")
follow_store()
st.caption("pass@k: per task 1 - C(n-c, k)/C(n, k), mean over tasks; reported only where every task has n >= k. "
           "A sample passes only when every assert ran to the end in its own sandboxed process. "
           "CI: 95% percentile bootstrap over tasks.")
runs = eval_runs(store())
if not runs:
    st.info("No evaluated runs yet: launch one on the Runs screen.")
else:
    rows = [r for run in runs for r in pass_at_k_with_ci(run)]
    acc = load_kpis()["accuracy"]
    st.altair_chart(charts.pass_at_k_bars(rows, {"pass@1": acc["pass_at_1_min"], "pass@10": acc["pass_at_10_min"]}),
                    width="stretch")
    pct = st.column_config.NumberColumn(format="percent")
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"value": pct, "ci_low": pct, "ci_high": pct,
                                "spec": st.column_config.TextColumn("spec", help="the model spec of the run")})
steps = pass_vs_step(store())
if steps:
    st.altair_chart(charts.pass_vs_step(steps), width="stretch")
else:
    st.caption("Pass@1 vs step appears when a training run logs validation pass@1.")
