"""Per-task drill-down: a task's prompt, each run's completions, pass/fail and error.

Reads one task's samples at a time (core.views.drill: an index of byte offsets per task, cached)."""
import streamlit as st

from core.base.errors import GateError
from core.views.dashboard import eval_runs
from core.views.drill import task_rows, task_samples
from core.views.overview import next_step
from core.base.store import RunDir
from app_pages._common import lead_to_runs, pick_pair, store

SHOWN = 5

st.title("Per-task drill-down")
runs = [r.run_id for r in eval_runs(store())]
if len(runs) < 2:
    lead_to_runs(next_step(store()), len(runs), "this screen shows each task's solutions side by side")
    st.stop()
a, b = pick_pair(runs, ("Run A", "Run B"))
only = st.selectbox("Show", ["all tasks", "discordant: A only", "discordant: B only"])
run_a, run_b = RunDir(store() / a), RunDir(store() / b)
try:
    rows = task_rows(run_a, run_b)
except GateError as exc:
    st.error(str(exc))
    st.stop()
if only != "all tasks":
    rows = [r for r in rows if r["discordant"] == only.split(": ")[1]]
st.caption(f"{len(rows)} tasks. Discordant pairs (one run passes, the other fails) drive the significance test.")
if rows:
    task = st.selectbox("Task", [r["task_id"] for r in rows])
    row = next(r for r in rows if r["task_id"] == task)
    try:
        shown = {label: task_samples(run, task, SHOWN) for label, run in (("A", run_a), ("B", run_b))}
    except GateError as exc:
        st.error(str(exc))
        st.stop()
    prompt = next((s["prompt"] for s in shown["A"] + shown["B"] if s["prompt"]), "")
    with st.expander("Prompt"):
        st.code(prompt or "(no prompt recorded)")
    for label, name in (("A", a), ("B", b)):
        st.markdown(f"**{label}: `{name}`** — pass rate {row[label.lower() + '_passed']}/{row[label.lower() + '_n']}")
        for s in shown[label]:
            st.text(f"sample {s['sample_id']}: {'passed' if s['passed'] else s['status']}")
            if s["error"]:  # the sample's own text: shown as text, never rendered as markdown
                st.code(s["error"], language=None)
            st.code(s["completion"] or "(empty)", language="python")
