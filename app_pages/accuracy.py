"""Accuracy: final pass@k per run with 95% CIs, and pass@k vs training step."""
import streamlit as st

from core.base.errors import GateError
from core.decide.kpi import load_kpis
from core.views import charts
from core.views.dashboard import eval_runs, pass_at_k_with_ci, pass_vs_step
from core.views.isolation import reduced_runs
from core.views.overview import next_step
from app_pages._common import follow_store, lead_to_runs, store

st.title("Accuracy")
follow_store()
st.caption("pass@k: per task 1 - C(n-c, k)/C(n, k), mean over tasks; reported only where every task has n >= k. "
           "A sample passes only when every assert ran to the end in its own sandboxed process, and says so "
           "through a channel its code cannot reach. CI: 95% percentile bootstrap over tasks.")
runs = eval_runs(store())
for run_id, why in reduced_runs(runs).items():
    st.warning(f"{run_id}: its samples ran with reduced isolation: {why}.")
if not runs:
    lead_to_runs(next_step(store()), 0, "this screen shows each run's pass@k")
else:
    rows = []
    for run in runs:
        try:
            rows += pass_at_k_with_ci(run)
        except GateError as exc:  # one broken run is named, the others still shown
            st.warning(f"{run.run_id}: unreadable ({exc})")
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
