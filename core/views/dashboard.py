"""What the app's screens show, computed here so that app_pages/ only render (and tests can compare)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.evaluation.collect import load_counts
from core.evaluation.passk import per_task_pass_at_k
from core.lab.monitor import count_alerts
from core.views.fmt import model_name
from core.views.jobs import job_status
from core.decide.stats import bootstrap_means, show_p
from core.base.errors import DataError
from core.base.store import REPO_ROOT, RunDir, list_runs, read_json, read_jsonl, store_root


def job_error_line(run_dir: Path) -> str:
    """Why a job ended badly, in one line: its last `error:` line in job.log, else the log's last line."""
    log = Path(run_dir) / "job.log"
    if not log.exists():
        return ""
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:") or "Error" in ln.split(":")[0]]
    return (errors or lines or [""])[-1][:300]


def _job_only_dirs(store: Path | None) -> list[Path]:
    """Run directories a job made but never claimed (it failed before: a model that would not load...)."""
    root = Path(store) if store else store_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "job.json").exists() and not (p / "manifest.json").exists())


def runs_table(store: Path | None = None) -> list[dict]:
    """Every run in the store, failed and cancelled jobs included (with their error line), by run name."""
    rows = []
    for run in list_runs(store):
        try:
            m = run.manifest()
            s = read_json(run.file("run_summary.json")) if run.file("run_summary.json").exists() else {}
        except (DataError, OSError):  # one broken run is one row, not a broken screen
            rows.append({"run": run.run_id, "kind": None, "status": "unreadable"})
            continue
        ds = m.get("dataset") or {}
        job = job_status(run.path)
        status = job["status"] if job and job.get("status") in ("failed", "cancelled", "interrupted") else run.status()
        row = {"run": run.run_id, "kind": m.get("kind"), "status": status, "model": model_name(m.get("model")),
               "spec": m.get("model"), "dataset": f"{ds.get('name')}/{ds.get('split')}" if ds else "",
               "tasks": s.get("n_tasks"), "samples": s.get("n_samples"), "started": m.get("started_at"),
               "error": (m.get("error") or job_error_line(run.path)) if status in ("failed", "cancelled", "interrupted")
               else ""}
        for k, v in (s.get("pass_at_k") or {}).items():
            row[f"pass@{k}"] = v  # exact: the screen's format rounds once (0.735499 is 73.5%, not 73.6%)
        rows.append(row)
    for path in _job_only_dirs(store):
        job = job_status(path) or {}
        argv = job.get("argv") or []
        spec = argv[argv.index("--model") + 1] if "--model" in argv[:-1] else None
        rows.append({"run": path.name, "kind": job.get("kind") or (argv[0] if argv else None),
                     "status": job.get("status", "unknown"), "model": model_name(spec), "spec": spec, "dataset": "",
                     "tasks": None, "samples": None, "started": job.get("started_at"),
                     "error": job_error_line(path) if job.get("status") != "running" else ""})
    return sorted(rows, key=lambda r: r["run"])


def runs_for_people(rows: list[dict], tz: str | None = None) -> list[dict]:
    """runs_table's rows for the Runs screen, still sortable: pass@k in percent (shown with fmt.PCT_COLUMN),
    start times as datetimes in the viewer's time zone `tz` (shown with fmt.TIME_COLUMN)."""
    from core.views.fmt import local_time
    out = []
    for r in rows:
        r = dict(r)
        for key, value in r.items():
            if key.startswith("pass@") and value is not None:
                r[key] = 100 * value
        if "started" in r:
            r["started"] = local_time(r["started"], tz)
        out.append(r)
    return out


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
        spec = run.manifest().get("model")
        out.append({"run": run.run_id, "model": model_name(spec), "spec": spec, "k": f"pass@{k}",
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


COMMITTED_BENCH = REPO_ROOT / "results" / "bench.json"  # the bench the repository's committed gate read


def bench_files(store: Path | None = None) -> list[Path]:
    files = [COMMITTED_BENCH] + [r.file("bench.json") for r in list_runs(store)]
    return [f for f in files if f.exists()]


def bench_origin(path: Path) -> str | None:
    """What a screen says of a bench that is not one of the user's runs: the repository's committed bench,
    measured where the committed gate ran (None for a bench in the run store)."""
    if Path(path).resolve() != COMMITTED_BENCH.resolve():
        return None
    machine = read_json(path).get("machine") or {}
    return (f"This is the repository's committed bench (results/bench.json, measured on {machine.get('cpu', '?')} "
            f"with {machine.get('cores', '?')} cores for the committed gate), not a bench of your runs. To measure "
            "your models on this machine, launch a bench run on the Runs screen (run kind: bench).")


def efficiency_target(key: str, role: str, kpis: str | None = None) -> float | None:
    """The candidate's absolute target for a bench figure (kpis.toml), drawn on the chart; None where none."""
    if role != "candidate":
        return None
    from core.decide.kpi import load_kpis
    eff = load_kpis(kpis)["efficiency"]
    return {"latency_ms": eff["latency_ms_max"], "throughput_tok_s": eff["throughput_tok_s_min"],
            "peak_train_rss_mb": eff["peak_train_ram_gb_max"] * 1024,
            "params_nonembedding": eff["params_nonembedding_max"] / 1e6}.get(key)


def efficiency_rows(bench: dict) -> list[dict]:
    rows = []
    for model, f in bench.get("models", {}).items():
        role = "candidate" if model == bench.get("candidate") else ("baseline" if model == bench.get("baseline") else "")
        for key, label in (("latency_ms", "latency (ms)"), ("throughput_tok_s", "throughput (tok/s)"),
                           ("peak_train_rss_mb", "peak train RSS (MB)"),
                           ("params_nonembedding", "params, non-embedding (M)")):
            if f.get(key) is not None:
                value = f[key] / 1e6 if key == "params_nonembedding" else f[key]
                rows.append({"model": model_name(model), "spec": model, "role": role, "metric": label,
                             "value": round(value, 1), "target": efficiency_target(key, role)})
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


def default_pair_names(store: Path | None = None) -> tuple[str, str] | None:
    """Candidate and baseline when nobody chose: the latest finished HRM eval against the latest finished
    GPT-2 eval; else the first run's real pair (core.views.quickstart.FIRST_PAIR); else the two newest eval
    runs, the newer as candidate. None with fewer than two eval runs."""
    from core.views.fmt import is_gpt2
    from core.views.quickstart import FIRST_PAIR
    done = [(r.manifest(), r.run_id) for r in eval_runs(store) if r.status() == "done"]
    done.sort(key=lambda mr: mr[0].get("started_at") or "", reverse=True)
    hrm = [name for m, name in done if str(m.get("model", "")).startswith("hrm:")]
    gpt2 = [name for m, name in done if is_gpt2(m.get("model"))]
    if hrm and gpt2:
        return hrm[0], gpt2[0]
    names = [name for _, name in done]
    if all(n in names for n in FIRST_PAIR):
        return FIRST_PAIR
    return (names[0], names[1]) if len(names) >= 2 else None


def default_pair(runs: list[str], chosen: tuple[str, str] | None) -> tuple[int, int]:
    """Indices of candidate and baseline among `runs`: the chosen pair where both are still there, else the
    first two runs."""
    if chosen and chosen[0] in runs and chosen[1] in runs and chosen[0] != chosen[1]:
        return runs.index(chosen[0]), runs.index(chosen[1])
    return 0, min(1, len(runs) - 1)


def results_so_far(run: RunDir) -> int:
    """Samples executed so far by a running eval (whole lines of its results.jsonl)."""
    path = run.file("results.jsonl")
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


STAT_KEYS = ("delta", "ci95", "p_value", "p_value_holm", "p_value_decision", "p_decision_method", "role", "mde",
             "superior", "n_tasks")


STAT_COLUMNS = ("delta", "95% CI", "role", "p (decides)", "p method", "Holm p", "superior")  # stats_rows' own


def side_heading(stats: dict, side: str) -> str:
    """A statistics column's heading: the model's name, then the run's (as the run selectors show a run)."""
    label = stats.get(side)
    spec = ((stats.get("inputs") or {}).get(side) or {}).get("model")
    return f"{model_name(spec)} · {label}" if spec else str(label)


def stats_rows(stats: dict) -> list[dict]:
    """One row per pass@k of a stats.json (and the sampled pair's pass@1, labelled descriptive): both models'
    values under their names, delta, CI, p (and Holm's where several k), in the one format of each (%, pp,
    core.decide.stats.show_p); each metric names the pair it came from where there are two."""
    from core.decide.gate import metric_label
    from core.views.fmt import pct, pp
    heads = {side: side_heading(stats, side) for side in ("candidate", "baseline")}
    if heads["candidate"] == heads["baseline"]:  # one label for both runs: keep the columns apart
        heads = {side: f"{h} ({side})" for side, h in heads.items()}
    rows = []
    for key, s in stats.items():
        if (key.startswith("pass_at_") or key == "sampled_pass_at_1") and isinstance(s, dict):
            labels = [x for x in s if x not in STAT_KEYS]
            cand, base = (stats["candidate"], stats["baseline"]) if stats.get("candidate") in s else labels[:2]
            holm = s.get("p_value_holm")
            rows.append({"metric": metric_label(stats, key), heads["candidate"]: pct(s[cand]),
                         heads["baseline"]: pct(s[base]),
                         "delta": pp(s["delta"]), "95% CI": f"[{pp(s['ci95'][0])}, {pp(s['ci95'][1])}]",
                         "role": s.get("role", ""),
                         "p (decides)": show_p(s.get("p_value_decision", s["p_value"]), stats.get("resamples"),
                                               s.get("p_decision_method", "")),
                         "p method": s.get("p_decision_method", ""),
                         "Holm p": show_p(holm, stats.get("resamples"), "permutation") if holm is not None
                         else "– (one k: no adjustment)",
                         "superior": "yes" if s["superior"] else "no"})
    return rows


def kpi_rows(stats: dict) -> list[dict]:
    """The gate's KPI table of a decided stats.json."""
    return [{"KPI": k["label"], "target": k["target"], "measured": k["shown"],
             "held": "not measured" if k["held"] is None else ("✓" if k["held"] else "✗")}
            for k in (stats.get("gate") or {}).get("kpis", [])]


def pdf_first_page_png(pdf: bytes, dpi: int = 60) -> bytes:
    """Page 1 of a PDF as PNG (poppler's pdftoppm, as `make test` installs it), for a preview."""
    import subprocess
    proc = subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-"], input=pdf,
                          capture_output=True, timeout=60, check=True)
    return proc.stdout
