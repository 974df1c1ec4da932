"""Runs: every run in the local store (cache/runs/) with its status and headline figures."""
import streamlit as st

from core.store import list_runs, read_json, store_root

st.title("Runs")
STORE = store_root()
st.caption(f"Local run store: `{STORE}`. Start runs with `python -m core eval ... --run-dir cache/runs/NAME`.")

runs = list_runs(STORE)
if not runs:
    st.info("No runs yet. Try: `python -m core eval --model oracle --dataset mbpp "
            "--data-path ../shared/data/mbpp/mbpp.jsonl --limit 20 --run-dir cache/runs/oracle-smoke`")
else:
    rows = []
    for run in runs:
        m = run.manifest()
        summary = read_json(run.file("run_summary.json")) if run.file("run_summary.json").exists() else {}
        row = {"run": run.run_id, "kind": m.get("kind"), "status": run.status(), "model": m.get("model"),
               "dataset": f"{m.get('dataset', {}).get('name')}/{m.get('dataset', {}).get('split')}",
               "tasks": summary.get("n_tasks"), "samples": summary.get("n_samples")}
        for k, v in summary.get("pass_at_k", {}).items():
            row[f"pass@{k}"] = round(v, 4)
        rows.append(row)
    st.dataframe(rows, use_container_width=True, hide_index=True)
