"""Per-task drill-down: a task's prompt, each run's completions, pass/fail and error."""
import streamlit as st

from core.views.dashboard import drilldown, eval_runs
from core.base.store import RunDir
from app_pages._common import pick_pair, store

st.title("Per-task drill-down")
runs = [r.run_id for r in eval_runs(store())]
if len(runs) < 2:
    st.info("Two evaluated runs are needed.")
    st.stop()
a, b = pick_pair(runs, ("Run A", "Run B"))
only = st.selectbox("Show", ["all tasks", "discordant: A only", "discordant: B only"])
rows = drilldown(RunDir(store() / a), RunDir(store() / b))
if only != "all tasks":
    rows = [r for r in rows if r["discordant"] == only.split(": ")[1]]
st.caption(f"{len(rows)} tasks. Discordant pairs (one run passes, the other fails) drive the significance test.")
if rows:
    task = st.selectbox("Task", [r["task_id"] for r in rows])
    row = next(r for r in rows if r["task_id"] == task)
    with st.expander("Prompt"):
        st.code(row["prompt"] or "(no prompt recorded)")
    for label, name, samples in (("A", a, row["a"]), ("B", b, row["b"])):
        st.markdown(f"**{label}: {name}** — pass rate {sum(s['passed'] for s in samples)}/{len(samples)}")
        for s in samples[:5]:
            st.write(f"sample {s['sample_id']}: {'passed' if s['passed'] else s['status']} {s['error']}")
            st.code(s["completion"] or "(empty)", language="python")
