"""Aggregate a run directory into run_summary.json; follow a running run with --watch.

Reads results.jsonl (pass@k, per-task counts, failures by status), metrics.jsonl (training
and eval curves: last values, best loss) and bench.json, whichever the run has. A partial last
line (a writer in mid-line or killed) is skipped, never an error.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from core.tasks.data import task_key
from core.base.errors import RunStoreError
from core.sandbox.pool import STATUSES
from core.evaluation.passk import pass_at_k_table
from core.base.store import ENDED, RunDir, atomic_write_json, read_json, read_jsonl

log = logging.getLogger(__name__)
DEFAULT_KS = (1, 10)


def counts_from_results(rows: list[dict]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for r in rows:
        nc = counts.setdefault(task_key(r["task_id"]), [0, 0])
        nc[0] += 1
        nc[1] += bool(r["passed"])
    return {k: (n, c) for k, (n, c) in counts.items()}


def summarize_results(rows: list[dict], ks=DEFAULT_KS) -> dict:
    counts = counts_from_results(rows)
    by_status = {s: 0 for s in (*STATUSES, "missing")}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    table = pass_at_k_table(counts, ks)
    return {"pass_at_k": table, "k_not_reported": [k for k in ks if str(k) not in table],
            "min_samples_per_task": min((n for n, _ in counts.values()), default=0),
            "n_tasks": len(counts), "n_samples": len(rows), "status_counts": by_status,
            "per_task": {k: {"n": n, "c": c} for k, (n, c) in counts.items()}}


def load_counts(path: str | Path) -> tuple[dict[str, tuple[int, int]], str]:
    """Per-task (n, c) and a label from a run directory or a results.jsonl file."""
    p = Path(path)
    if p.is_dir():
        results = p / "results.jsonl"
        if not results.exists():
            raise RunStoreError(f"{p} has no results.jsonl; is it an eval run that finished executing?")
        label = p.name
    elif p.is_file():
        results, label = p, p.parent.name if p.name == "results.jsonl" else p.stem
    else:
        raise RunStoreError(f"{p} not found; pass a run directory or a results.jsonl file")
    rows = read_jsonl(results)
    if not rows:
        raise RunStoreError(f"{results} holds no results")
    for i, r in enumerate(rows, 1):
        if "task_id" not in r or "passed" not in r:
            raise RunStoreError(f"{results}: row {i} lacks task_id or passed; is this a results.jsonl?")
    return counts_from_results(rows), label


def _training_summary(rows: list[dict]) -> dict:
    out = {"steps": len(rows), "last": rows[-1]}
    losses = [(r["step"], r["loss"]) for r in rows if isinstance(r.get("loss"), (int, float))]
    if losses:
        out["best_loss"] = min(loss for _, loss in losses)
    evals = [(r["step"], r["pass_at_1"]) for r in rows if "pass_at_1" in r]
    if evals:
        out["pass_at_1_vs_step"] = [{"step": s, "pass_at_1": v} for s, v in evals]
    return out


def collect(run_dir: str | Path) -> dict:
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunStoreError(f"{run.path} not found; pass a run directory")
    manifest = run.manifest() if run.exists() else {}
    summary_path = run.file("run_summary.json")
    summary = read_json(summary_path) if summary_path.exists() else {}
    summary.update(run_id=run.run_id, kind=manifest.get("kind"), model=manifest.get("model"),
                   status=run.status() if run.exists() else "unknown")
    results = read_jsonl(run.file("results.jsonl"))
    if results:
        ks = tuple(manifest.get("protocol", {}).get("ks", DEFAULT_KS))
        summary.update(summarize_results(results, ks))
    metrics = read_jsonl(run.file("metrics.jsonl"))
    if metrics:
        summary["training"] = _training_summary(metrics)
    if run.file("bench.json").exists():
        summary["bench"] = read_json(run.file("bench.json"))
    atomic_write_json(summary_path, summary)
    return summary


def watch(run_dir: str | Path, interval: float = 2.0, on_update: Callable[[dict], None] | None = None,
          max_wait: float | None = None) -> dict:
    """Collect again every `interval` seconds until the run's manifest says it ended."""
    started = time.monotonic()
    while True:
        summary = collect(run_dir)
        if on_update:
            on_update(summary)
        if summary["status"] in ENDED or summary["status"] == "interrupted":
            return summary
        if max_wait is not None and time.monotonic() - started > max_wait:
            return summary
        time.sleep(interval)
