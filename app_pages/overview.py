"""Overview: does the candidate beat the baseline? The verdict first (decided in memory, nothing written),
its reasons, the KPI traffic lights, pass@k with CIs, efficiency against targets, and where it came from."""
import pandas as pd
import streamlit as st

from core.base.errors import GateError
from core.decide.gate import two_run_note
from core.views.dashboard import eval_runs
from core.views.overview import LIGHT_COLOURS, committed_overview, next_step, pair_overview
from core.views.quickstart import ORACLE
from core.base.store import RunDir, read_json
from app_pages._common import choose_tasks, follow_store, lead_to_runs, pick_pair, store

st.title("Overview")
follow_store()
runs = [r.run_id for r in eval_runs(store())]
committed = committed_overview()
step = next_step(store())
if step:
    lead_to_runs(step, len(runs), "this screen decides MapCoder against Analogical prompting")
    if not committed or not st.toggle("Meanwhile, show the committed gate (results/): the verdict this repository "
                                      "last published, from its own runs, not yours", value=False):
        st.stop()
    source = "The committed gate (results/)"
else:
    choices = ["The chosen pair of runs"] + (["The committed gate (results/)"] if committed else [])
    source = st.radio("Show", choices, horizontal=True, label_visibility="collapsed")
view = None
if source.startswith("The chosen pair"):
    cand, base = pick_pair(runs)
    intersection = choose_tasks(cand, base)
    try:
        with st.spinner("deciding (paired bootstrap, in memory)..."):
            view = pair_overview(store() / cand, store() / base, store(), intersection=intersection,
                                 tz=st.context.timezone)
    except GateError as exc:
        st.error(f"These two runs cannot be compared: {exc}")
        st.stop()
else:
    view = committed

h = view["headline"]
st.markdown(
    f"<div data-testid='verdict' style='background:{view['colour']};color:white;padding:0.8rem 1.2rem;"
    f"border-radius:0.5rem;font-size:2.2rem;font-weight:700'>{view['verdict']}</div>", unsafe_allow_html=True)
st.markdown(f"**{view['candidate_name']}** (candidate) against **{view['baseline_name']}** (baseline)")
c = st.columns(4)
c[0].metric("Candidate pass@1", h["candidate"], help=f"{view['candidate_name']}, run {view['candidate']}")
c[1].metric("Baseline pass@1", h["baseline"], help=f"{view['baseline_name']}, run {view['baseline']}")
c[2].metric("Difference (95% CI)", h["delta"], help=f"95% paired bootstrap CI {h['ci']}", delta_color="off")
c[3].metric("p (decides pass@1)", h["p"], help=h["p_method"])
st.caption(f"Difference {h['delta']}, 95% CI {h['ci']}, p = {h['p']} ({h['p_method']}), {h['n_tasks']:,} paired tasks.")
if view["figures"]:
    st.subheader("Pass@1 and pass@10, by pair")
    st.caption(two_run_note(view["stats"]))
    st.dataframe(view["figures"], hide_index=True, width="stretch")
st.subheader("Why")
for reason in view["reasons"]:
    st.markdown(f"- {reason}")
st.subheader("KPIs")


def lights(rows: list[dict]):
    """The KPI rows with their status cell coloured: a traffic light."""
    return pd.DataFrame(rows).style.map(lambda v: f"background-color: {LIGHT_COLOURS[v]}" if v in LIGHT_COLOURS
                                        else "", subset=["status"])


def height(rows: list) -> int:
    return 35 * (len(rows) + 1) + 3  # every row, no scroll box


st.dataframe(lights(view["kpis"]), hide_index=True, width="stretch", height=height(view["kpis"]),
             column_config={"why": st.column_config.TextColumn("why not measured", width="large")})
if view["accuracy"]:
    st.subheader("Pass@k with 95% CIs")
    st.dataframe(view["accuracy"], hide_index=True, width="stretch",
                 column_config={"spec": st.column_config.TextColumn("spec", help="the model spec of the run")})
st.subheader("Efficiency against targets")
eff = [k for k in view["kpis"] if k["KPI"].startswith(("Latency", "Peak training RAM", "Throughput", "Parameters"))]
if view["bench"]:
    st.caption(f"From {view['bench']}, which holds figures of both models.")
st.dataframe(lights(eff), hide_index=True, width="stretch", height=height(eff))
if view["foreign_bench"]:
    st.warning(f"Not used: {', '.join(view['foreign_bench'])} holds figures of other models, not of this pair "
               "(the Efficiency screen shows it, marked as such).")
for check in view["labels"]:
    st.markdown(f"**{check['name']}**: the authors' own labels say {check['authors_solved']:,} of "
                f"{check['checked']:,} solved; our sandbox passes {check['ours_solved']:,}; "
                f"{len(check['disagreements']):,} disagree.")
    if check["disagreements"]:
        with st.expander(f"{check['name']}: the {len(check['disagreements'])} disagreements"):
            st.dataframe(check["disagreements"], hide_index=True, width="stretch")
oracle = RunDir(store() / ORACLE)
if oracle.file("run_summary.json").exists():
    s = read_json(oracle.file("run_summary.json"))
    passed = s["status_counts"].get("passed", 0)
    st.markdown(f"**Oracle check**: {passed:,} of {s['n_samples']:,} MBPP reference solutions pass in our sandbox "
                f"({'as they should' if passed == s['n_samples'] else 'some fail: see the drill-down'}).")
st.subheader("Computed")
st.dataframe(view["sources"], hide_index=True, width="stretch")
