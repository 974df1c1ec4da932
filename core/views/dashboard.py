"""What the app's screens show, computed here so that app_pages/ only render (and tests can compare)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.evaluation.collect import load_counts
from core.evaluation.passk import per_task_pass_at_k
from core.lab.monitor import count_alerts
from core.decide.stats import bootstrap_means, show_p
from core.base.errors import DataError
from core.base.store import REPO_ROOT, RunDir, list_runs, read_json, read_jsonl


def runs_table(store: Path | None = None) -> list[dict]:
    rows = []
    for run in list_runs(store):
        try:
            m = run.manifest()
            s = read_json(run.file("run_summary.json")) if run.file("run_summary.json").exists() else {}
        except (DataError, OSError):  # one broken run is one row, not a broken screen
            rows.append({"run": run.run_id, "kind": None, "status": "unreadable"})
            continue
        ds = m.get("dataset") or {}
        row = {"run": run.run_id, "kind": m.get("kind"), "status": run.status(), "model": m.get("model"),
               "dataset": f"{ds.get('name')}/{ds.get('split')}" if ds else "", "tasks": s.get("n_tasks"),
               "samples": s.get("n_samples"), "started": m.get("started_at")}
        for k, v in (s.get("pass_at_k") or {}).items():
            row[f"pass@{k}"] = round(v, 4)
        rows.append(row)
    return rows


def eval_runs(store: Path | None = None) -> list[RunDir]:
    return [r for r in list_runs(store, readable_only=True)
            if r.manifest().get("kind") == "eval" and r.file("results.jsonl").exists()]


def pass_at_k_with_ci(run: RunDir, ks=(1, 10), resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Final pass@k of a run with a 95% bootstrap CI over tasks."""
    counts, _ = load_counts(run.path)
    min_n = min(n for n, _ in counts.values())
    out = []
    for k in ks:
        if k > min_n:
            continue
        scores = np.asarray(per_task_pass_at_k(counts, k))
        means = bootstrap_means(scores, resamples, np.random.default_rng(seed))
        lo, hi = np.percentile(means, [2.5, 97.5])
        out.append({"run": run.run_id, "model": run.manifest().get("model"), "k": f"pass@{k}",
                    "value": float(scores.mean()), "ci_low": float(lo), "ci_high": float(hi), "n_tasks": len(scores)})
    return out


def pass_vs_step(store: Path | None = None) -> list[dict]:
    rows = []
    for run in list_runs(store):
        for r in read_jsonl(run.file("metrics.jsonl")):
            for k in ("pass_at_1", "pass_at_10"):
                if k in r:
                    rows.append({"run": run.run_id, "step": r["step"], "metric": k.replace("_at_", "@"), "value": r[k]})
    return rows


def training_rows(run: RunDir) -> list[dict]:
    rows = []
    for r in read_jsonl(run.file("metrics.jsonl")):
        for key in ("loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "rss_mb"):
            if isinstance(r.get(key), (int, float)):
                rows.append({"step": r["step"], "metric": key, "value": r[key]})
    return rows


EXPERIMENTS_DIR = REPO_ROOT / "cache" / "experiments"
PRETRAIN_RUNS = ("train-candidate", "train-baseline")  # core.flow.experiment's run directories


def experiments(root: Path | None = None) -> list[Path]:
    """Compute-matched experiment folders (`python -m core experiment`) with at least one pretraining, under
    $HRM_GATE_EXPERIMENTS, else cache/experiments/."""
    root = Path(root or os.environ.get("HRM_GATE_EXPERIMENTS") or EXPERIMENTS_DIR)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if any((p / r / "metrics.jsonl").exists() for r in PRETRAIN_RUNS))


def flops_curves(runs: list[RunDir]) -> tuple[list[dict], float | None, list[dict]]:
    """(validation loss vs FLOPs rows, the FLOPs budget, one summary row per run) of pretraining runs."""
    rows, budget, final = [], None, []
    for run in runs:
        if not run.file("metrics.jsonl").exists():
            continue
        m = run.manifest()
        budget = budget or (m.get("flops") or {}).get("budget")
        vals = [r for r in read_jsonl(run.file("metrics.jsonl"), repair=True) if r.get("val_loss") is not None]
        rows += [{"model": m.get("model"), "flops": r["flops"], "step": r["step"], "tokens": r["tokens"],
                  "val_loss": r["val_loss"]} for r in vals]
        speed = sorted(r["tokens_per_s"] for r in read_jsonl(run.file("metrics.jsonl"), repair=True)
                       if r.get("tokens_per_s"))
        final.append({"model": m.get("model"), "status": run.status(), "params": m.get("params"),
                      "FLOPs/step": (m.get("flops") or {}).get("per_step"),
                      "steps": vals[-1]["step"] if vals else None, "FLOPs": vals[-1]["flops"] if vals else None,
                      "tokens": vals[-1]["tokens"] if vals else None,
                      "final val loss": round(vals[-1]["val_loss"], 4) if vals else None,
                      "tokens/s (median)": round(speed[len(speed) // 2]) if speed else None})
    return rows, budget, final


def corpus_rows(manifest: dict) -> list[list[str]]:
    """The corpus manifest as (field, value) rows for a table."""
    s = manifest["splits"]
    return [["sources", "; ".join(f"{x['root']} ({x['files']} files)" for x in manifest["sources"])],
            ["files", f"{manifest['files_kept']} kept of {manifest['files_found']}"],
            ["tokens", f"{s['train']['tokens']:,} train + {s['val']['tokens']:,} validation ({manifest['tokenizer']})"],
            ["dropped", ", ".join(f"{k} {v}" for k, v in manifest["dropped"].items())],
            ["decontamination", f"{manifest['decontamination']['dropped']} file(s) dropped "
                                f"({manifest['decontamination']['against']}, {manifest['decontamination']['tasks']} tasks)"],
            ["sha256", f"train {manifest['sha256']['train'][:16]}..., val {manifest['sha256']['val'][:16]}..."],
            ["built", f"{manifest['created_at']} in {manifest['build_seconds']} s"]]


def bench_files(store: Path | None = None) -> list[Path]:
    files = [REPO_ROOT / "results" / "bench.json"] + [r.file("bench.json") for r in list_runs(store)]
    return [f for f in files if f.exists()]


def efficiency_rows(bench: dict) -> list[dict]:
    rows = []
    for model, f in bench.get("models", {}).items():
        role = "candidate" if model == bench.get("candidate") else ("baseline" if model == bench.get("baseline") else "")
        for key, label in (("latency_ms", "latency (ms)"), ("throughput_tok_s", "throughput (tok/s)"),
                           ("peak_train_rss_mb", "peak train RSS (MB)"), ("params_total", "params (total)")):
            if f.get(key) is not None:
                rows.append({"model": model, "role": role, "metric": label, "value": f[key]})
    return rows


def alerts_feed(store: Path | None = None) -> list[dict]:
    rows = []
    for run in list_runs(store):
        rows += read_jsonl(run.file("alerts.jsonl"))
    return sorted(rows, key=lambda r: r.get("time", ""), reverse=True)


def alert_counts(store: Path | None = None) -> dict:
    return count_alerts([r.file("alerts.jsonl") for r in list_runs(store) if r.file("alerts.jsonl").exists()])


def system_rows(store: Path | None = None) -> list[dict]:
    rows = []
    for run in list_runs(store):
        for r in read_jsonl(run.file("system.jsonl")):
            for key, value in r.items():
                if key != "time" and isinstance(value, (int, float)):
                    rows.append({"run": run.run_id, "time": r["time"], "metric": key, "value": value})
    return rows


def default_pair(runs: list[str], selected: list[str] | None) -> tuple[int, int]:
    """Indices of candidate and baseline among `runs`: the Runs screen's first two selected runs where they
    are still there, else the first two runs."""
    chosen = [r for r in (selected or []) if r in runs]
    first = runs.index(chosen[0]) if chosen else 0
    rest = [runs.index(r) for r in chosen[1:]] + [i for i in range(len(runs)) if i != first]
    return first, rest[0]


def results_so_far(run: RunDir) -> int:
    """Samples executed so far by a running eval (whole lines of its results.jsonl)."""
    path = run.file("results.jsonl")
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


STAT_KEYS = ("delta", "ci95", "p_value", "p_value_holm", "p_value_decision", "p_decision_method", "role", "mde",
             "superior", "n_tasks")


def stats_rows(stats: dict) -> list[dict]:
    """One row per pass@k of a stats.json: both models' values, delta, CI, p (and Holm's where several k)."""
    rows = []
    for key, s in stats.items():
        if key.startswith("pass_at_") and isinstance(s, dict):
            labels = [x for x in s if x not in STAT_KEYS]
            rows.append({"metric": key.replace("_at_", "@"), labels[0]: s[labels[0]], labels[1]: s[labels[1]],
                         "delta": s["delta"], "95% CI": f"[{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}]",
                         "role": s.get("role", ""),
                         "p (decides)": show_p(s.get("p_value_decision", s["p_value"]), stats.get("resamples"),
                                               s.get("p_decision_method", "")),
                         "p method": s.get("p_decision_method", ""), "superior": s["superior"]})
    return rows


def kpi_rows(stats: dict) -> list[dict]:
    """The gate's KPI table of a decided stats.json."""
    return [{"KPI": k["label"], "target": k["target"], "measured": k["shown"],
             "held": "not measured" if k["held"] is None else ("✓" if k["held"] else "✗")}
            for k in (stats.get("gate") or {}).get("kpis", [])]
