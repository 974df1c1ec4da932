"""What the app's screens show, computed here so that app_pages/ only render (and tests can compare)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.collect import load_counts
from core.metrics import per_task_pass_at_k
from core.monitor import count_alerts
from core.stats import bootstrap_means
from core.store import REPO_ROOT, RunDir, list_runs, read_json, read_jsonl


def runs_table(store: Path | None = None) -> list[dict]:
    rows = []
    for run in list_runs(store):
        m = run.manifest()
        s = read_json(run.file("run_summary.json")) if run.file("run_summary.json").exists() else {}
        ds = m.get("dataset") or {}
        row = {"run": run.run_id, "kind": m.get("kind"), "status": run.status(), "model": m.get("model"),
               "dataset": f"{ds.get('name')}/{ds.get('split')}" if ds else "", "tasks": s.get("n_tasks"),
               "samples": s.get("n_samples"), "started": m.get("started_at")}
        for k, v in (s.get("pass_at_k") or {}).items():
            row[f"pass@{k}"] = round(v, 4)
        rows.append(row)
    return rows


def eval_runs(store: Path | None = None) -> list[RunDir]:
    return [r for r in list_runs(store) if r.manifest().get("kind") == "eval" and r.file("results.jsonl").exists()]


def pass_at_k_with_ci(run: RunDir, ks=(1, 10), resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Final pass@k of a run with a 95% bootstrap CI over tasks."""
    counts, _ = load_counts(run.path)
    min_n = min(n for n, _ in counts.values())
    out = []
    for k in ks:
        if k > min_n:
            continue
        scores = per_task_pass_at_k(counts, k)
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


def drilldown(a: RunDir, b: RunDir) -> list[dict]:
    """Per task: prompt, each run's completions with pass/fail and error; and whether the pair is
    discordant (one run passes the task's first sample, the other fails it)."""
    def index(run):
        samples = {(str(r["task_id"]), r["sample_id"]): r for r in read_jsonl(run.file("samples.jsonl"))}
        results = {(str(r["task_id"]), r["sample_id"]): r for r in read_jsonl(run.file("results.jsonl"))}
        by_task: dict[str, list] = {}
        for key, res in results.items():
            s = samples.get(key, {})
            by_task.setdefault(key[0], []).append({"sample_id": key[1], "completion": s.get("completion", ""),
                                                   "prompt": s.get("prompt", ""), "passed": res["passed"],
                                                   "status": res["status"], "error": res.get("error", "")})
        return by_task
    ia, ib = index(a), index(b)
    rows = []
    for task in sorted(set(ia) & set(ib), key=lambda t: (len(t), t)):
        sa, sb = sorted(ia[task], key=lambda r: r["sample_id"]), sorted(ib[task], key=lambda r: r["sample_id"])
        pa = sum(r["passed"] for r in sa) / len(sa)
        pb = sum(r["passed"] for r in sb) / len(sb)
        rows.append({"task_id": task, "prompt": sa[0]["prompt"] or sb[0]["prompt"], "a": sa, "b": sb,
                     "a_pass_rate": pa, "b_pass_rate": pb,
                     "discordant": "A only" if sa[0]["passed"] and not sb[0]["passed"]
                     else ("B only" if sb[0]["passed"] and not sa[0]["passed"] else "")})
    return rows
