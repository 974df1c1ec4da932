"""Significance: pick candidate and baseline, re-run the paired test and the gate at once."""
import json

import streamlit as st

from core.base.errors import GateError
from core.decide.comparable import IncomparableError
from core.decide.comparable import describe as describe_comparability
from core.decide.gate import describe_power, run_gate
from core.decide.kpi import load_kpis
from core.views.dashboard import eval_runs, kpi_rows, stats_rows
from core.views.overview import matching_bench, next_step, screen_reasons, short_path
from app_pages._common import access_policy, app_config, choose_tasks, lead_to_runs, pick_pair, signed_in, store

st.title("Significance")
st.caption("Paired by task: per-task pass@k, a paired bootstrap CI and a two-sided sign-flip permutation p-value "
           "(never below 1/(B+1)); McNemar's exact test where each run has one sample per task. Superiority needs the "
           f"CI's lower bound > 0 and p < {load_kpis()['significance']['alpha']:g} (kpis.toml). Verdict precedence "
           "(kpis.toml): SUCCESS when every condition holds; "
           "else FAILURE on unstable training, p >= 0.10, a primary KPI below target, or neither the accuracy nor the "
           "efficiency group met; else PARTIAL. Unmeasured KPIs count as not met.")
runs = [r.run_id for r in eval_runs(store())]
if len(runs) < 2:
    lead_to_runs(next_step(store()), len(runs), "this screen tests MapCoder against Analogical prompting")
    st.stop()
cand, base = pick_pair(runs)
c3, c4, c5 = st.columns(3)
ks = c3.multiselect("k", [1, 10, 100], default=[1, 10])
cfg = app_config()
if signed_in(access_policy()):
    most = cfg.max_resamples
    resamples = c4.number_input("Resamples", min_value=100, max_value=most, value=min(10_000, most), step=1000)
else:  # hosted, anonymous: a light test only
    most = resamples = cfg.anonymous_resamples
    c4.number_input("Resamples (sign in for more)", value=most, disabled=True)
resamples = min(int(resamples), most)  # enforced here, not only by the widget
seed = c5.number_input("Seed", value=0)
intersection = choose_tasks(cand, base)
bench, foreign = matching_bench(store() / cand, store() / base, store())
if foreign and not bench:
    st.caption(f"No bench of these two models: {', '.join(map(short_path, foreign))} measured others, so efficiency "
               "is not measured for this pair.")
accepted = st.session_state.setdefault("accepted_mismatch", {}).setdefault((cand, base), [])
settings = (cand, base, tuple(sorted(ks)) or (1,), int(resamples), int(seed), intersection, tuple(accepted))
if st.button("Run the test", type="primary") or st.session_state.get("gate_settings") != settings:
    try:
        res = run_gate(str(store() / cand), str(store() / base), bench=str(bench) if bench else None,
                       ks=settings[2], resamples=settings[3], seed=settings[4], intersection=intersection,
                       allow_mismatch=accepted)
        st.session_state["gate_result"] = (cand, base, res.stats)
        st.session_state["gate_settings"] = settings
    except IncomparableError as exc:
        st.error(str(exc))
        if exc.field and st.button(f"Accept the difference in {exc.field} and compare anyway (recorded in the "
                                   "result, as --allow-mismatch does)"):
            accepted.append(exc.field)
            st.rerun()
        st.stop()
    except GateError as exc:
        st.error(str(exc))
        st.stop()
cand_r, base_r, stats = st.session_state["gate_result"]
colour = {"SUCCESS": "green", "PARTIAL": "orange", "FAILURE": "red"}[stats["verdict"]]
st.subheader(f"Verdict: :{colour}[{stats['verdict']}]")
for reason in screen_reasons(stats):
    st.write(f"- {reason}")
if (stats.get("comparability") or {}).get("accepted"):
    st.caption("\n\n".join(describe_comparability(stats)))
st.dataframe(stats_rows(stats), hide_index=True, width="stretch")
st.caption(describe_power(stats))
kpis = kpi_rows(stats)
st.dataframe(kpis, hide_index=True, width="stretch", height=38 * (len(kpis) + 1))  # every row, no scroll box
st.download_button("Download stats.json", json.dumps(stats, indent=2), file_name="stats.json", mime="application/json")
