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
from core.decide.gate import paired_comparisons, run_gate
from core.decide.kpi import load_kpis
from core.decide.provenance import results_file
from core.tasks.data import sha256_of

# what verify compares: every published figure of the gate (provenance itself excepted)
COMPARED = ("verdict", "gate", "candidate", "baseline", "n_tasks", "resamples", "seed", "alpha", "mcnemar", "mde",
            "power", "comparability", "k_not_tested", "tasks_dropped", "sampled_pass_at_1", "sampled", "pairs", "sources")


COMPARED_STATS = ("candidate", "baseline", "n_tasks", "resamples", "seed", "alpha", "mcnemar", "mde", "comparability",
                  "tasks_dropped", "method")


class VerifyError(GateError):
    """A stats.json that no longer follows from the files it names."""


def verify(stats_path: str | Path) -> list[str]:
    """Lines saying what was checked; raises VerifyError on the first file that changed, or on every
    figure that differs from a recomputation."""
    try:
        return _verify(stats_path)
    except (KeyError, TypeError) as exc:
        raise VerifyError(f"{stats_path}: its inputs block is malformed ({exc!r}); rerun the command that "
                          "wrote it") from None


def _verify(stats_path: str | Path) -> list[str]:
    doc = read_json(Path(stats_path))
    src = doc.get("inputs")
    if not src:
        raise VerifyError(f"{stats_path} names no inputs (written before stats.json recorded its provenance); "
                          "rerun `python -m core gate` to make one that can be verified")
    checks = []
    runs = [(side, src[side]) for side in ("candidate", "baseline")]
    runs += [(f"sampled {side}", rec) for side, rec in (src.get("sampled") or {}).items()]  # the two-run protocol
    for side, rec in runs:
        path, want = results_file(rec["path"]), rec["results_sha256"]
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
    again = _recompute(doc, src)
    keys = set(COMPARED if doc.get("gate") else COMPARED_STATS)
    keys |= {k for k in (*doc, *again) if k.startswith("pass_at_")}
    differ = sorted(k for k in keys if json.dumps(doc.get(k), sort_keys=True) != json.dumps(again.get(k), sort_keys=True))
    if differ:
        raise VerifyError(f"{stats_path} does not follow from its inputs: recomputed {', '.join(differ)} differ")
    s = src["settings"]
    pairs = " (both pairs: pass@1 from the main pair, k > 1 from the sampled pair)" if src.get("sampled") else ""
    checks.append(f"recomputed with resamples {s['resamples']}, seed {s['seed']}, k {s['ks']}{pairs}: every figure"
                  + (f" and the verdict {doc.get('verdict')}" if doc.get("gate") else "") + " equal")
    if src.get("git_commit") != again["inputs"]["git_commit"]:
        checks.append(f"note: written at commit {src.get('git_commit')}, verified at {again['inputs']['git_commit']}")
    return checks


def _recompute(doc: dict, src: dict) -> dict:
    """The document again, from the recorded inputs, the way it was made: the gate's, or the stats command's."""
    s = src["settings"]
    common = dict(ks=tuple(s["ks"]), resamples=s["resamples"], seed=s["seed"], intersection=s["intersection"],
                  allow_mismatch=s.get("allow_mismatch") or ())
    kpis = src["kpis"]["path"]
    if doc.get("gate"):
        sampled = src.get("sampled")
        return run_gate(src["candidate"]["path"], src["baseline"]["path"], bench=(src.get("bench") or {}).get("path"),
                        kpis=kpis, train_runs=src.get("train_runs"),
                        sampled=(sampled["candidate"]["path"], sampled["baseline"]["path"]) if sampled else None,
                        **common).stats
    paired = paired_comparisons(src["candidate"]["path"], src["baseline"]["path"], alpha=load_kpis(kpis)["significance"]["alpha"],
                                ci_method=s.get("ci_method", "percentile"), require_pass_at_1=False, kpis=kpis, **common)
    return paired.document()
