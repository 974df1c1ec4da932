"""Model -> samples.jsonl: n samples per task, resumable, seeded, with stop sequences and
post-processing that keeps the function the tests call.

Each task's samples come from one call seeded by (seed, task id), so a run killed half-way and
started again regenerates exactly the samples it lacks. Lines are appended one whole line at a
time; a partial last line left by a kill is cut off on resume.
"""
from __future__ import annotations

import ast
import builtins
import hashlib
import logging
import time
from pathlib import Path

from tqdm import tqdm

from core.tasks.data import Dataset, Task, task_key
from core.models.sampling import SamplingParams
from core.tasks.prompts import Template
from core.base.store import JsonlAppender, read_jsonl

log = logging.getLogger(__name__)
POSTPROCESS = "cut at the first stop sequence; keep imports, functions, classes and assignments (drop top-level calls)"


def task_seed(seed: int, task_id) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{task_key(task_id)}".encode()).digest()[:4], "big")


def entry_point(task: Task) -> str | None:
    """The function the tests call: HumanEval's entry_point, or the first non-builtin name called in
    MBPP's first assert."""
    if task.entry_point:
        return task.entry_point
    for test in task.tests[:1]:
        try:
            tree = ast.parse(test)
        except SyntaxError:
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id):
                return node.func.id
    return None


def _largest_parsable_prefix(code: str) -> str | None:
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
    return None


def keep_definitions(code: str, name: str | None) -> str:
    """Drop what a model writes around the solution (prints, asserts, calls of its own) while keeping
    imports, definitions and assignments; code that does not define `name` or does not parse is
    returned as it is, so the sandbox reports its real error."""
    source = code if _parses(code) else _largest_parsable_prefix(code)
    if source is None:
        return code
    tree = ast.parse(source)
    kept = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.ClassDef, ast.Assign, ast.AnnAssign))]
    defined = {n.name for n in kept if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if name and name not in defined:
        return code
    lines = source.splitlines()
    out = []
    for node in kept:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        out.append("\n".join(lines[start:node.end_lineno]))
    return "\n".join(out) + "\n"


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def postprocess(completion: str, task: Task, template: Template) -> str:
    cut = min((i for i in (completion.find(s) for s in template.stop) if i >= 0), default=len(completion))
    completion = completion[:cut]
    if task.is_humaneval:  # the body continues the prompt's signature: nothing to reorganise
        return completion
    return keep_definitions(completion, entry_point(task))


def generate_samples(generator, dataset: Dataset, template: Template, params: SamplingParams, out_path: Path,
                     progress: bool = True) -> list[dict]:
    """Fill out_path with params.n samples per task; returns all rows in file order."""
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
        def write(task: Task, prompt: str, completions: list[str], clean: bool = True) -> None:
            nonlocal made
            done = have.get(task_key(task.task_id), set())
            for sid, raw in enumerate(completions):
                if sid in done:
                    continue
                out.append({"task_id": task.task_id, "sample_id": sid, "prompt": prompt,
                            "completion": postprocess(raw, task, template) if clean else raw, "raw_completion": raw})
                made += 1
                bar.update(1)
            bar.set_postfix(samples_per_s=f"{made / max(time.monotonic() - started, 1e-9):.2f}")

        requests = []
        for task in todo:
            prompt = template.render(task, dataset)
            if getattr(generator, "needs_task", False):
                write(task, prompt, generator.generate_for_task(task, params.n), clean=False)
            else:
                requests.append((task, prompt, _with_seed(params, task)))
        if hasattr(generator, "generate_many") and requests:
            for idx, completions in generator.generate_many([(p, sp) for _, p, sp in requests]):
                write(requests[idx][0], requests[idx][1], completions)
        else:
            for task, prompt, sp in requests:
                write(task, prompt, generator.generate(prompt, sp))
    return read_jsonl(out_path)


def _with_seed(params: SamplingParams, task: Task) -> SamplingParams:
    from dataclasses import replace
    return replace(params, seed=task_seed(params.seed, task.task_id))
