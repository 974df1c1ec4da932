"""The per-task drill-down's data, read one task at a time.

A run's samples.jsonl can be hundreds of MB (500 tasks x 200 samples is ~200 MB), so the screen
never loads it whole: each JSONL file gets an index of byte offsets per task, built in one pass
and cached (until the file's size or mtime changes), and a view seeks to the lines of the one task
it shows. results.jsonl's pass/fail per task is summarised in the same pass.
"""
from __future__ import annotations

import json
import re
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from core.base.errors import DataError
from core.base.store import RunDir

CACHED_FILES = 16
# Lines as core's writers start them: {"task_id": 11, "sample_id": 0, "passed": true, ... (JSON strings
# escape every quote, so these cannot match inside a completion). Other lines are parsed whole.
TASK_FIRST = re.compile(rb'\{"task_id": (-?\d+|"(?:[^"\\]|\\.)*")(?:, "sample_id": (-?\d+), "passed": (true|false))?[,}]')


@dataclass
class TaskSummary:
    n: int = 0
    passed: int = 0
    first_sample: int | None = None
    first_passed: bool = False


@dataclass
class JsonlIndex:
    """Byte ranges of each task's lines in one JSONL file, and (results files) each task's pass counts."""
    offsets: dict[str, array] = field(default_factory=dict)  # task -> start, end, start, end...
    summary: dict[str, TaskSummary] = field(default_factory=dict)


_cache: OrderedDict[tuple, JsonlIndex] = OrderedDict()
_lock = threading.Lock()


def _build(path: Path, summarise: bool) -> JsonlIndex:
    idx = JsonlIndex()
    names: dict[bytes, str] = {}
    with open(path, "rb") as fh:
        pos = 0
        for lineno, line in enumerate(fh, 1):
            start, pos = pos, pos + len(line)
            if not line.endswith(b"\n") or not line.strip():
                continue  # a partial last line (a writer still at work, or killed) is not read yet
            fast = TASK_FIRST.match(line)
            if fast and (not summarise or fast.group(3)):
                raw = fast.group(1)
                task = names.get(raw)
                if task is None:
                    task = names[raw] = str(json.loads(raw))
                sample, passed = (int(fast.group(2)), fast.group(3) == b"true") if summarise else (None, None)
            else:
                try:
                    row = json.loads(line)
                    task, sample, passed = str(row["task_id"]), row.get("sample_id", 0), row.get("passed")
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise DataError(f"{path}:{lineno}: not a JSON object with a task_id; fix or remove that line") \
                        from None
            offsets = idx.offsets.get(task)
            if offsets is None:
                offsets = idx.offsets[task] = array("q")
            offsets.append(start)
            offsets.append(pos)
            if summarise and passed is not None:
                s = idx.summary.get(task)
                if s is None:
                    s = idx.summary[task] = TaskSummary()
                s.n += 1
                s.passed += bool(passed)
                if s.first_sample is None or sample < s.first_sample:
                    s.first_sample, s.first_passed = sample, bool(passed)
    return idx


def index(path: Path) -> JsonlIndex:
    """The file's index, built once per (size, mtime) and kept for the CACHED_FILES most recent files;
    a results.jsonl's also summarises each task's pass/fail."""
    path = Path(path)
    if not path.exists():
        return JsonlIndex()
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    built = _build(path, summarise=path.name == "results.jsonl")
    with _lock:
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]
        _cache[key] = built
        while len(_cache) > CACHED_FILES:
            _cache.popitem(last=False)
    return built


def read_task(path: Path, task: str) -> list[dict]:
    """The rows of one task, read by seeking to its lines."""
    ranges = index(path).offsets.get(str(task))
    if not ranges:
        return []
    rows = []
    with open(path, "rb") as fh:
        for i in range(0, len(ranges), 2):
            fh.seek(ranges[i])
            rows.append(json.loads(fh.read(ranges[i + 1] - ranges[i])))
    return rows


def task_rows(a: RunDir, b: RunDir) -> list[dict]:
    """Per task both runs scored: pass rates, and whether the pair is discordant (one run passes the task's
    first sample, the other fails it)."""
    sa, sb = index(a.file("results.jsonl")).summary, index(b.file("results.jsonl")).summary
    rows = []
    for task in sorted(set(sa) & set(sb), key=lambda t: (len(t), t)):
        x, y = sa[task], sb[task]
        rows.append({"task_id": task, "a_pass_rate": x.passed / x.n, "b_pass_rate": y.passed / y.n,
                     "a_passed": x.passed, "a_n": x.n, "b_passed": y.passed, "b_n": y.n,
                     "discordant": "A only" if x.first_passed and not y.first_passed
                     else ("B only" if y.first_passed and not x.first_passed else "")})
    return rows


def task_samples(run: RunDir, task: str, limit: int | None = None) -> list[dict]:
    """One task's samples of a run, by sample_id: completion, prompt, pass/fail, status and error."""
    samples = {r.get("sample_id"): r for r in read_task(run.file("samples.jsonl"), task)}
    out = []
    for res in sorted(read_task(run.file("results.jsonl"), task), key=lambda r: r.get("sample_id", 0))[:limit]:
        s = samples.get(res.get("sample_id"), {})
        out.append({"sample_id": res.get("sample_id"), "completion": s.get("completion", ""),
                    "prompt": s.get("prompt", ""), "passed": res["passed"], "status": res["status"],
                    "error": res.get("error", "")})
    return out
