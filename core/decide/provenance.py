"""Where a stats.json came from: the sha256 of both runs' results.jsonl and of the bench.json and
kpis.toml it used, both runs' dataset, protocol and status, the settings of the test, the git commit
and the tool's version (core.decide.verify checks that it still follows from there)."""
from __future__ import annotations

from pathlib import Path

from core.base.machine import git_commit
from core.base.settings import KPIS_PATH, TOOL_VERSION
from core.base.store import RunDir
from core.tasks.data import sha256_of

def results_file(path: str | Path) -> Path:
    p = Path(path)
    return p / "results.jsonl" if p.is_dir() else p


def run_record(path: str | Path) -> dict:
    run = RunDir(Path(path) if Path(path).is_dir() else Path(path).parent)
    m = run.manifest() if run.exists() else {}
    return {"path": str(path), "results_sha256": sha256_of(results_file(path)), "status": run.status() if m else None,
            "model": m.get("model"), "dataset": {k: (m.get("dataset") or {}).get(k) for k in ("name", "split", "sha256")},
            "protocol": m.get("protocol")}


def file_record(path: str | Path | None) -> dict | None:
    return None if path is None else {"path": str(path), "sha256": sha256_of(Path(path))}


def record(candidate, baseline, settings: dict, bench=None, kpis=None, train_runs=None) -> dict:
    return {"candidate": run_record(candidate), "baseline": run_record(baseline), "bench": file_record(bench),
            "kpis": file_record(kpis or KPIS_PATH), "train_runs": list(train_runs) if train_runs else None,
            "settings": settings, "git_commit": git_commit(), "tool_version": TOOL_VERSION}
