"""Model -> samples.jsonl: n samples per task, resumable, seeded, with stop sequences and
post-processing that keeps the function the tests call.

Each task's samples come from one request seeded by (seed, task id), so a run killed half-way and
started again regenerates exactly the samples it lacks (local models take requests `batch` at a
time; a request's samples do not depend on its batch). `context_report` counts the prompts the
protocol's context rule cuts for this model. Lines are appended one whole line at a
time; a partial last line left by a kill is cut off on resume.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from tqdm import tqdm

from core.tasks.data import Dataset, Task, task_key
from core.models.interface import Generator, Request
from core.models.sampling import SamplingParams, window_of
from core.tasks.completions import DESCRIPTION, clean
from core.tasks.prompts import Template
from core.base.store import JsonlAppender, read_jsonl

log = logging.getLogger(__name__)
POSTPROCESS = DESCRIPTION


def task_seed(seed: int, task_id) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{task_key(task_id)}".encode()).digest()[:4], "big")


def context_report(generator: Generator, dataset: Dataset, template: Template, params: SamplingParams) -> dict:
    """How the context rule treats this model's prompts: its window and how many prompts it cuts (every task
    of the data set, whether generated now or before a resume). Models without a tokenizer here: unknown."""
    count = getattr(generator, "prompt_tokens", None)
    if count is None:
        return {"window": None, "prompts_cut": None, "longest_prompt_tokens": None}
    window = window_of(params, getattr(generator, "positions", None))
    lengths = [count(template.render(t, dataset)) for t in dataset.tasks]
    room = None if window is None else window - params.max_new_tokens
    return {"window": window, "prompts_cut": sum(n > room for n in lengths) if room is not None else 0,
            "longest_prompt_tokens": max(lengths, default=0), "room_for_prompt": room}


def generate_samples(generator: Generator, dataset: Dataset, template: Template, params: SamplingParams, out_path: Path,
                     progress: bool = True, stats: dict | None = None) -> list[dict]:
    """Fill out_path with params.n samples per task; returns all rows in file order. `stats` receives the
    samples made now, the generation's wall time and samples/s."""
    existing = read_jsonl(out_path, repair=True)
    have: dict[str, set[int]] = {}
    for r in existing:
        have.setdefault(task_key(r["task_id"]), set()).add(r["sample_id"])
    todo = [t for t in dataset.tasks if len(have.get(task_key(t.task_id), ())) < params.n]
    if existing:
        log.info("resuming generation: %d samples already in %s, %d tasks to go", len(existing), out_path, len(todo))
    started = time.monotonic()
    made = 0
    with JsonlAppender(out_path) as out, tqdm(total=len(todo) * params.n, desc="generating", unit="sample",
                                             disable=not progress, mininterval=0.5) as bar:
        def write(task: Task, prompt: str, completions: list[str], cleanup: bool) -> None:
            nonlocal made
            done = have.get(task_key(task.task_id), set())
            for sid, raw in enumerate(completions):
                if sid in done:
                    continue
                out.append({"task_id": task.task_id, "sample_id": sid, "prompt": prompt,
                            "completion": clean(raw, task, template.stop) if cleanup else raw, "raw_completion": raw})
                made += 1
                bar.update(1)
            bar.set_postfix(samples_per_s=f"{made / max(time.monotonic() - started, 1e-9):.2f}")

        requests = [Request(template.render(task, dataset), _with_seed(params, task), task) for task in todo]
        for idx, completions in generator.generate_many(requests):
            write(requests[idx].task, requests[idx].prompt, completions, generator.cleanup)
    if stats is not None:
        wall = time.monotonic() - started
        stats.update(generated_now=made, generation_wall_s=round(wall, 3),
                     generation_samples_per_s=round(made / wall, 3) if made and wall > 0 else None,
                     batch=getattr(generator, "batch", 1))
    return read_jsonl(out_path)


def _with_seed(params: SamplingParams, task: Task) -> SamplingParams:
    from dataclasses import replace
    return replace(params, seed=task_seed(params.seed, task.task_id))
