"""One evaluation run: tasks -> samples.jsonl -> sandbox -> results.jsonl -> run_summary.json.

Resumable: the same command on the same --run-dir keeps what is there and executes only the
samples without a result. results.jsonl is rewritten at the end in canonical order (dataset
order, then sample id) so two runs of the same samples give byte-identical files whatever the
worker count; per-sample wall times, which differ from run to run, go to timings.jsonl.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from core.tasks import data

from core.tasks import prompts
from core.base.errors import SamplesError
from core.evaluation.config import EvalConfig
from core.sandbox.checks import split_test_lines
from core.sandbox.pool import SAMPLE_ENVIRONMENT, Job, Limits, SandboxPool
from core.base.machine import git_commit, machine_info, now_iso, package_versions
from core.evaluation.collect import summarize_results
from core.evaluation.generate import POSTPROCESS, context_report, generate_samples
from core.evaluation.protocol import SAMPLED, Protocol
from core.models import load_generator, parse_spec
from core.base.store import JsonlAppender, RunDir, atomic_write_json, atomic_write_jsonl, read_jsonl

log = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


def _raise_cancelled(signum, frame):
    raise Cancelled()


def read_samples_file(path: str, dataset: data.Dataset) -> list[dict]:
    """task_id + completion per line (several per task allowed) -> rows with sample ids."""
    p = Path(path)
    if not p.is_file():
        raise SamplesError(f"samples file not found: {p}; pass --samples FILE with one JSON object per line")
    rows = read_jsonl(p)
    if not rows:
        raise SamplesError(f"{p} holds no samples; it needs one JSON line per sample: "
                           '{"task_id": 11, "completion": "def ..."}')
    known = dataset.by_key()
    out, next_id, seen = [], {}, set()
    for i, row in enumerate(rows, 1):
        if "task_id" not in row or "completion" not in row:
            raise SamplesError(f"{p}: sample #{i} lacks task_id or completion; each line needs both")
        key = data.task_key(row["task_id"])
        if key not in known:
            raise SamplesError(f"{p}: sample #{i} names task {row['task_id']!r}, which is not in "
                               f"{dataset.name}/{dataset.split} ({len(known)} tasks); check --dataset and --split")
        if not isinstance(row["completion"], str):
            raise SamplesError(f"{p}: sample #{i} has a completion that is not a string")
        sid = int(row["sample_id"]) if "sample_id" in row else next_id.get(key, 0)
        if (key, sid) in seen:
            raise SamplesError(f"{p}: sample #{i} repeats sample_id {sid} of task {row['task_id']!r}")
        seen.add((key, sid))
        next_id[key] = max(next_id.get(key, 0), sid + 1)
        out.append({"task_id": known[key].task_id, "sample_id": sid, "prompt": row.get("prompt", ""),
                    "completion": row["completion"]})
    return out



def generation_kind(cfg: EvalConfig, generator) -> str:
    if generator is None:
        return "samples file"
    return "model" if generator.cleanup else "reference solutions"


def missing_results(sample_rows: list[dict], dataset: data.Dataset) -> list[dict]:
    """Every task is scored on as many samples as the best-covered task has: a sample the file lacks
    counts as a failure (a task left out would flatter the run), with status "missing"."""
    have: dict[str, list[int]] = {data.task_key(t.task_id): [] for t in dataset.tasks}
    for r in sample_rows:
        have[data.task_key(r["task_id"])].append(r["sample_id"])
    n = max(len(ids) for ids in have.values())
    rows = []
    for task in dataset.tasks:
        ids = have[data.task_key(task.task_id)]
        start = max(ids, default=-1) + 1
        rows += [{"task_id": task.task_id, "sample_id": start + i, "passed": False, "status": "missing",
                  "error": "no sample for this task in the samples file: counted as a failure"}
                 for i in range(n - len(ids))]
    return rows


def sample_job(key, task, completion: str, challenge: bool = False) -> Job:
    """A sample's sandbox job: its task's assert lines rewritten once per task (the expected values stay
    out of the sample's process, core/sandbox/checks.py), the completion as it is."""
    lines = task.test_lines(challenge)
    if not lines:
        return Job(key, task.program(completion, challenge))
    block, expected = split_test_lines(lines)
    return Job(key, task.program(completion, challenge, test_block=block), checks=expected)


def _order(dataset: data.Dataset):
    index = {data.task_key(t.task_id): i for i, t in enumerate(dataset.tasks)}
    return lambda row: (index[data.task_key(row["task_id"])], row["sample_id"])


def run_eval(cfg: EvalConfig) -> dict:
    if (cfg.model is None) == (cfg.samples is None):
        from core.base.errors import UsageError
        raise UsageError("give exactly one of --model SPEC or --samples FILE")
    if cfg.model and cfg.dataset == "mbpp-typed":
        from core.base.errors import UsageError
        raise UsageError("--dataset mbpp-typed scores imported generations (--samples, from `python -m core import`); "
                         "evaluate a model on --dataset mbpp")
    if cfg.samples and not Path(cfg.samples).is_file():  # named before any data set is looked for
        raise SamplesError(f"samples file not found: {cfg.samples}; pass --samples FILE with one JSON object per line")
    limits = Limits(timeout_s=cfg.timeout)
    # Scoring a samples file, the sandbox's workers boot while the files are read and written;
    # generating, they start once the samples exist.
    pool = SandboxPool(cfg.workers, limits, wait=False) if cfg.samples else None
    try:
        return _prepare_and_execute(cfg, limits, pool)
    finally:
        if pool is not None:
            pool.close()


def _prepare_and_execute(cfg: EvalConfig, limits: Limits, pool: SandboxPool | None) -> dict:
    dataset = data.load_dataset(cfg.dataset, cfg.data_path, cfg.split, cfg.limit)
    template = prompts.get_template(cfg.prompt, cfg.dataset)
    missing_rows: list[dict] = []
    if cfg.samples:
        sample_rows = read_samples_file(cfg.samples, dataset)
        missing_rows = missing_results(sample_rows, dataset)
        if missing_rows:
            log.warning("%d sample(s) missing from %s (tasks with fewer samples than the most any task has, or "
                        "none): counted as failures", len(missing_rows), cfg.samples)
        model_label = f"samples:{Path(cfg.samples).name}"
        generator = None
    else:
        spec = parse_spec(cfg.model)  # fail on a bad spec or missing weights before touching the run directory
        generator = load_generator(spec, cfg.device, cfg.dtype, cfg.batch)
        sample_rows, model_label = None, str(spec)
    shared = Protocol.of(cfg, dataset, template)
    protocol = {"generation": generation_kind(cfg, generator), **shared.manifest(),
                "postprocess": POSTPROCESS if generator is not None and generator.cleanup else "none (scored as given)",
                "ks": list(cfg.ks), "limits": asdict(limits), "environment": SAMPLE_ENVIRONMENT}
    if protocol["generation"] != "model":  # nothing was sampled here: these settings would be fiction
        protocol.update(dict.fromkeys(SAMPLED))
    context = context_report(generator, dataset, template, shared.params()) if generator is not None else None
    if context and context["prompts_cut"]:
        log.warning("%d of %d prompts are longer than %s's window leaves room for (%s tokens): they keep their last "
                    "tokens", context["prompts_cut"], len(dataset.tasks), model_label, context["room_for_prompt"])
    ds_info = {"name": dataset.name, "split": dataset.split, "sha256": dataset.sha256, "path": dataset.path,
               "n_tasks": len(dataset.tasks),
               "tasks_without_samples": len({data.task_key(r["task_id"]) for r in missing_rows
                                             if r["sample_id"] == 0})}
    identity = {"kind": "eval", "model": model_label, "dataset": {k: ds_info[k] for k in ("name", "split", "sha256", "n_tasks")},
                "protocol": {k: v for k, v in protocol.items() if k not in ("limits", "ks")}}
    if cfg.samples:
        identity["samples_sha256"] = data.sha256_of(Path(cfg.samples))
    run = RunDir(cfg.run_dir)
    manifest = {"run_id": run.run_id, "kind": "eval", "model": model_label,
                "trained": generator.trained if generator else None,
                "model_info": generator.describe() if generator else {"samples_file": str(Path(cfg.samples).resolve())},
                "dataset": ds_info, "protocol": protocol, "context": context, "seeds": {"sampling": cfg.seed},
                "runtime": {"device": cfg.device, "dtype": cfg.dtype, "batch": cfg.batch},
                "git_commit": git_commit(), "packages": package_versions(), "machine": machine_info(),
                "started_at": now_iso(), **cfg.extra_manifest}
    resumed = run.claim(identity, manifest)
    previous = signal.signal(signal.SIGTERM, _raise_cancelled)
    try:
        summary = _execute(cfg, run, dataset, template, sample_rows, limits, resumed, generator, missing_rows,
                           shared.params(), context, pool)
    except (Cancelled, KeyboardInterrupt):
        run.update_manifest(status="cancelled", ended_at=now_iso())
        raise
    except BaseException as exc:
        run.update_manifest(status="failed", ended_at=now_iso(), error=str(exc)[:500])
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return summary


def _execute(cfg, run, dataset, template, sample_rows, limits, resumed, generator, missing_rows, params,
             context, pool=None) -> dict:
    samples_path = run.file("samples.jsonl")
    generation: dict = {}
    if generator is not None:
        sample_rows = generate_samples(generator, dataset, template, params, samples_path, cfg.progress, generation)
    elif resumed and samples_path.exists():
        sample_rows = read_jsonl(samples_path)
    else:
        by_key = dataset.by_key()
        for r in sample_rows:
            r["prompt"] = r["prompt"] or template.render(by_key[data.task_key(r["task_id"])], dataset)
        atomic_write_jsonl(samples_path, sorted(sample_rows, key=_order(dataset)))
        sample_rows = read_jsonl(samples_path)
    tasks = dataset.by_key()
    key = lambda r: (data.task_key(r["task_id"]), r["sample_id"])  # noqa: E731
    results = {key(r): r for r in [*missing_rows, *read_jsonl(run.file("results.jsonl"), repair=True)]}
    timings = {key(r): r for r in read_jsonl(run.file("timings.jsonl"), repair=True)}
    todo = [r for r in sample_rows if key(r) not in results]
    if resumed:
        log.info("resuming %s: %d of %d samples already executed", run.path, len(results), len(sample_rows))
    started = time.monotonic()
    isolation = None
    if todo:
        jobs = (sample_job(key(r), tasks[data.task_key(r["task_id"])], r["completion"], cfg.challenge_tests) for r in todo)
        with pool or SandboxPool(cfg.workers, limits) as pool, \
                JsonlAppender(run.file("results.jsonl"), flush_every_s=0.25) as res_out, \
                JsonlAppender(run.file("timings.jsonl"), flush_every_s=0.25) as time_out, \
                tqdm(total=len(todo), desc="executing", unit="sample", disable=not cfg.progress,
                     mininterval=0.5) as bar:
            isolation = pool.isolation
            run.update_manifest(sandbox=isolation)
            for (task_key, sid), outcome in pool.run(jobs):
                task_id = tasks[task_key].task_id
                row = {"task_id": task_id, "sample_id": sid, "passed": outcome.passed,
                       "status": outcome.status, "error": outcome.error}
                res_out.append(row)
                time_out.append({"task_id": task_id, "sample_id": sid, "duration_s": outcome.duration_s})
                results[(task_key, sid)] = row
                timings[(task_key, sid)] = {"task_id": task_id, "sample_id": sid, "duration_s": outcome.duration_s}
                bar.update(1)
    exec_wall = time.monotonic() - started
    order = _order(dataset)
    final = sorted(results.values(), key=order)
    atomic_write_jsonl(run.file("results.jsonl"), final)
    atomic_write_jsonl(run.file("timings.jsonl"), sorted(timings.values(), key=order))
    summary = summarize_results(final, cfg.ks)
    summary["missing_samples"] = len(missing_rows)
    summary["prompts_cut"] = context["prompts_cut"] if context else None
    summary.update(run_id=run.run_id, model=run.manifest()["model"], dataset=dataset.name, split=dataset.split,
                   timings={"executed_now": len(todo), "exec_wall_s": round(exec_wall, 3),
                            "samples_per_s": round(len(todo) / exec_wall, 2) if todo and exec_wall > 0 else None,
                            "sample_time_total_s": round(sum(t["duration_s"] for t in timings.values()), 3),
                            "workers": cfg.workers, **generation})
    atomic_write_json(run.file("run_summary.json"), summary)
    run.update_manifest(status="done", ended_at=now_iso(), pid=os.getpid())
    return summary
