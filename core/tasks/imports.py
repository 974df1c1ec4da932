"""Generations from other harnesses, read in their own formats and turned into our samples.jsonl.

Formats (`FORMATS`):
- `mapcoder`, `reflexion`, `multipl-e`: MultiPL-E's typed MBPP layout (`name` mbpp_<id>_<function>,
  `prompt`, `test`, `entry_point`); the program is `source_codes[0]` (MapCoder, its Analogical baseline),
  `solution` (Reflexion) or `prompt` + each of `completions` (MultiPL-E's own output, .json or .json.gz). Such a row is
  scored the way it was generated: against its own `test`, so the import also writes those tests as a
  `mbpp-typed` dataset (tests.jsonl), identical for every file of the same tasks.
- `bigcode`: bigcode-evaluation-harness generations.json, a list per task of generations (prompt
  included) in the order of MBPP's test split (ids 11-510); scored against MBPP's asserts.
- `evalplus`: EvalPlus samples, `task_id` "Mbpp/N" and a whole-program `solution`; MBPP's asserts.
- `ours`: our samples.jsonl (`task_id`, `completion`, optional `sample_id`).

Task ids are mapped to MBPP's; a task outside the chosen tasks, an unreadable id or a repeat is left
out and reported, one line each. Authors' own `is_solved` labels are kept to be checked against ours.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from core.base.errors import DataError
from core.base.store import atomic_write_json, atomic_write_jsonl, jsonl_rows
from core.tasks.data import MBPP_SPLITS, sha256_of, task_key, typed_task_id

FORMATS = ("mapcoder", "reflexion", "multipl-e", "bigcode", "evalplus", "ours")
OWN_TESTS = ("mapcoder", "reflexion", "multipl-e")  # scored against each row's own test
TEST_FIELDS = ("name", "prompt", "test", "entry_point")


@dataclass
class Imported:
    """What a file held, as our samples: rows (task_id, sample_id, completion), the typed tests its rows
    are scored against (own-test formats only), the authors' labels per task, and one line per problem."""
    format: str
    source: str
    source_sha256: str
    samples: list[dict] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)
    labels: dict[int, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def own_tests(self) -> bool:
        return self.format in OWN_TESTS

    @property
    def n_tasks(self) -> int:
        return len({r["task_id"] for r in self.samples})


def import_file(path: str | Path, fmt: str, task_ids: Iterable[int]) -> Imported:
    """Read a file of generations in format `fmt`; `task_ids` are the MBPP tasks it may name (those of the
    split it will be scored on)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise DataError(f"{path} not found; pass the generations file to import")
    out = Imported(fmt, path.name, sha256_of(path))
    allowed = set(task_ids)
    try:
        if fmt == "bigcode":
            _bigcode(path, out, allowed)
        else:
            READERS[fmt](_rows(path), path, out, allowed)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; is this really a {fmt} file?") from None
    if not out.samples:
        raise DataError(f"{path}: no usable generation for the chosen tasks ({len(out.problems)} left out); "
                        f"is --format {fmt} right, and --split?")
    out.samples.sort(key=lambda r: (r["task_id"], r["sample_id"]))
    out.tests.sort(key=lambda r: typed_task_id(r["name"]))
    return out


def _text_of(path: Path) -> str:
    """The file's text; gzip-compressed files (MultiPL-E writes .json.gz) are read through."""
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")


def _rows(path: Path) -> list[tuple[int, dict]]:
    text = _text_of(path)
    if text.lstrip().startswith("["):  # a JSON array of objects (MultiPL-E and EvalPlus write JSONL too)
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not all(isinstance(r, dict) for r in rows):
            raise DataError(f"{path}: expected a JSON array of objects")
        return list(enumerate(rows, 1))
    if text.lstrip().startswith("{") and "\n{" not in text.strip():  # one problem per file, as MultiPL-E writes
        try:
            return [(1, json.loads(text))]
        except json.JSONDecodeError:
            pass  # one JSONL line: read below, with its line number in the error
    return jsonl_rows(text.splitlines(), path)


class _Seen:
    """First line of each task; a repeat is reported and left out."""

    def __init__(self, out: Imported):
        self.out, self.first = out, {}

    def new(self, task_id: int, lineno: int) -> bool:
        if task_id in self.first:
            self.out.problems.append(f"line {lineno}: task {task_id} again (first on line {self.first[task_id]}); "
                                     "left out")
            return False
        self.first[task_id] = lineno
        return True


def _known(out: Imported, raw, task_id: int | None, lineno: int, allowed: set[int]) -> bool:
    if task_id is None:
        out.problems.append(f"line {lineno}: task {raw!r} is not an MBPP task id; left out")
        return False
    if task_id not in allowed:
        out.problems.append(f"line {lineno}: task {task_id} ({raw}) is not among the chosen MBPP tasks; left out")
        return False
    return True


def _typed(rows, path: Path, out: Imported, allowed: set[int], program) -> None:
    seen = _Seen(out)
    for lineno, row in rows:
        missing = [f for f in TEST_FIELDS if f not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}; is this really "
                            f"{out.format} output (MultiPL-E's typed MBPP layout)?")
        task_id = typed_task_id(row["name"])
        if not _known(out, row["name"], task_id, lineno, allowed) or not seen.new(task_id, lineno):
            continue
        programs = program(row, f"{path}:{lineno}")
        out.samples += [{"task_id": task_id, "sample_id": i, "completion": p} for i, p in enumerate(programs)]
        out.tests.append({k: row[k] for k in TEST_FIELDS})
        if isinstance(row.get("is_solved"), bool):
            out.labels[task_id] = row["is_solved"]


def _text(value, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} is not a string")
    return value


def _mapcoder(rows, path, out, allowed):
    def program(row, where):
        codes = row.get("source_codes")
        if not isinstance(codes, list) or not codes:
            raise DataError(f"{where}: no source_codes list; is this MapCoder output? (Reflexion's is --format "
                            "reflexion)")
        return [_text(codes[0], where, "source_codes[0]")]
    _typed(rows, path, out, allowed, program)


def _reflexion(rows, path, out, allowed):
    def program(row, where):
        if "solution" not in row:
            raise DataError(f"{where}: no solution field; is this Reflexion output? (MapCoder's is --format mapcoder)")
        return [_text(row["solution"], where, "solution")]
    _typed(rows, path, out, allowed, program)


def _multipl_e(rows, path, out, allowed):
    def program(row, where):
        completions = row.get("completions")
        if not isinstance(completions, list):
            raise DataError(f"{where}: no completions list; is this MultiPL-E's completions output?")
        return [row["prompt"] + _text(c, where, "a completion") for c in completions]
    _typed(rows, path, out, allowed, program)


def _evalplus(rows, path, out, allowed):
    next_id: dict[int, int] = {}
    for lineno, row in rows:
        if "task_id" not in row or "solution" not in row:
            raise DataError(f"{path}:{lineno}: needs task_id and solution (EvalPlus samples: "
                            '{"task_id": "Mbpp/2", "solution": "..."})')
        raw = row["task_id"]
        m = re.fullmatch(r"Mbpp/(\d+)", str(raw))
        task_id = int(m.group(1)) if m else None
        if not _known(out, raw, task_id, lineno, allowed):
            continue
        sid = next_id.get(task_id, 0)
        next_id[task_id] = sid + 1
        out.samples.append({"task_id": task_id, "sample_id": sid,
                            "completion": _text(row["solution"], f"{path}:{lineno}", "solution")})


def _ours(rows, path, out, allowed):
    next_id: dict[int, int] = {}
    seen: dict[tuple[int, int], int] = {}
    for lineno, row in rows:
        if "task_id" not in row or "completion" not in row:
            raise DataError(f"{path}:{lineno}: needs task_id and completion")
        key = task_key(row["task_id"])
        task_id = int(key) if key.isdigit() else None
        if not _known(out, row["task_id"], task_id, lineno, allowed):
            continue
        sid = int(row["sample_id"]) if "sample_id" in row else next_id.get(task_id, 0)
        if (task_id, sid) in seen:
            out.problems.append(f"line {lineno}: task {task_id} sample {sid} again (first on line "
                                f"{seen[(task_id, sid)]}); left out")
            continue
        seen[(task_id, sid)] = lineno
        next_id[task_id] = max(next_id.get(task_id, 0), sid + 1)
        out.samples.append({"task_id": task_id, "sample_id": sid,
                            "completion": _text(row["completion"], f"{path}:{lineno}", "completion")})


def _bigcode(path: Path, out: Imported, allowed: set[int]) -> None:
    try:
        tasks = json.loads(_text_of(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); generations.json is one JSON array") from None
    if not isinstance(tasks, list) or not all(isinstance(t, list) for t in tasks):
        raise DataError(f"{path}: expected a list of lists of generations (bigcode-evaluation-harness "
                        "generations.json)")
    lo, hi = MBPP_SPLITS["test"]
    for i, generations in enumerate(tasks):
        task_id = lo + i if lo + i <= hi else None
        if not _known(out, f"#{i}", task_id, i + 1, allowed):
            continue
        out.samples += [{"task_id": task_id, "sample_id": j, "completion": _text(g, f"{path}: task #{i}", "a generation")}
                        for j, g in enumerate(generations)]


READERS = {"mapcoder": _mapcoder, "reflexion": _reflexion, "multipl-e": _multipl_e, "evalplus": _evalplus,
           "ours": _ours}


def write_import(imp: Imported, out_dir: str | Path, name: str) -> dict:
    """Writes NAME.jsonl (our samples), NAME.tests.jsonl (own-test formats: the same bytes for every file of
    the same tasks, so their runs compare) and NAME.import.json into out_dir; returns the last one's
    document. NAME becomes the run's model label."""
    out_dir = Path(out_dir)
    samples = out_dir / f"{name}.jsonl"
    atomic_write_jsonl(samples, imp.samples)
    doc = {"format": imp.format, "source": imp.source, "source_sha256": imp.source_sha256, "name": name,
           "samples": str(samples), "n_samples": len(imp.samples), "n_tasks": imp.n_tasks,
           "scored_against": "each row's own test (mbpp-typed)" if imp.own_tests else "MBPP's asserts",
           "tests": None, "authors_labels": {str(k): v for k, v in sorted(imp.labels.items())},
           "problems": imp.problems}
    if imp.own_tests:
        doc["tests"] = str(out_dir / f"{name}.tests.jsonl")
        atomic_write_jsonl(out_dir / f"{name}.tests.jsonl", imp.tests)
    atomic_write_json(out_dir / f"{name}.import.json", doc)
    return doc
