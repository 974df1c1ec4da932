"""`python -m core verify stats.json`: does a stats.json still follow from the files it names?

It re-reads the files recorded in its inputs (core.decide.provenance), fails when any of them
changed, recomputes the comparison and the verdict with the recorded settings, and fails on any
difference in a published figure.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.base.errors import GateError
from core.base.store import read_json
from core.decide.gate import run_gate
from core.decide.provenance import results_file
from core.tasks.data import sha256_of

# what verify compares: every published figure of the gate (provenance itself excepted)
COMPARED = ("verdict", "gate", "candidate", "baseline", "n_tasks", "resamples", "seed", "alpha", "mcnemar", "mde",
            "power", "comparability", "k_not_tested", "tasks_dropped")


class VerifyError(GateError):
    """A stats.json that no longer follows from the files it names."""


def verify(stats_path: str | Path) -> list[str]:
    """Lines saying what was checked; raises VerifyError on the first file that changed, or on every
    figure that differs from a recomputation."""
    doc = read_json(Path(stats_path))
    src = doc.get("inputs")
    if not src:
        raise VerifyError(f"{stats_path} names no inputs (written before stats.json recorded its provenance); "
                          "rerun `python -m core gate` to make one that can be verified")
    checks = []
    for side in ("candidate", "baseline"):
        path, want = results_file(src[side]["path"]), src[side]["results_sha256"]
        if not path.is_file():
            raise VerifyError(f"{side} results {path} not found; verify where the runs are (paths are as recorded)")
        if sha256_of(path) != want:
            raise VerifyError(f"{side} results {path} changed since {stats_path} was written (sha256 differs)")
        checks.append(f"{side}: {path} sha256 {want[:12]}... unchanged")
    for name in ("bench", "kpis"):
        rec = src.get(name)
        if rec:
            if not Path(rec["path"]).is_file() or sha256_of(Path(rec["path"])) != rec["sha256"]:
                raise VerifyError(f"{name} file {rec['path']} is missing or changed since {stats_path} was written")
            checks.append(f"{name}: {rec['path']} sha256 {rec['sha256'][:12]}... unchanged")
    s = src["settings"]
    again = run_gate(src["candidate"]["path"], src["baseline"]["path"], bench=(src.get("bench") or {}).get("path"),
                     kpis=src["kpis"]["path"], train_runs=src.get("train_runs"), ks=tuple(s["ks"]),
                     resamples=s["resamples"], seed=s["seed"], intersection=s["intersection"],
                     allow_mismatch=s.get("allow_mismatch") or ()).stats
    differ = [key for key in list(COMPARED) + [k for k in doc if k.startswith("pass_at_")]
              if json.dumps(doc.get(key), sort_keys=True) != json.dumps(again.get(key), sort_keys=True)]
    if differ:
        raise VerifyError(f"{stats_path} does not follow from its inputs: recomputed {', '.join(differ)} differ")
    checks.append(f"recomputed with resamples {s['resamples']}, seed {s['seed']}, k {s['ks']}: every figure and the "
                  f"verdict {doc.get('verdict')} equal")
    if src.get("git_commit") != again["inputs"]["git_commit"]:
        checks.append(f"note: written at commit {src.get('git_commit')}, verified at {again['inputs']['git_commit']}")
    return checks
