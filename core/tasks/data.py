"""Benchmark tasks: MBPP (full and sanitized) and HumanEval-format JSONL, in their published formats.

A `Task` knows how to turn a completion into the program that the sandbox runs. MBPP is read
from --data-path, or downloaded once from its canonical source into cache/datasets/ with its
sha256 recorded beside it. Splits follow the MBPP paper: prompt 1-10, test 11-510,
validation 511-600, train 601-974 (the sanitized file keeps the same ids, 427 tasks in all).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.base.errors import DataError
from core.base.settings import DATASETS_DIR, MBPP_PATH
from core.base.store import jsonl_rows

log = logging.getLogger(__name__)

DATASETS = ("mbpp", "mbpp-sanitized", "humaneval-jsonl", "mbpp-typed")
# MultiPL-E's typed MBPP: a row's `name` is mbpp_<MBPP task id>_<function>
TYPED_NAME = re.compile(r"mbpp_(\d+)_\w+")
MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974),
               "all": (1, 10**9)}
CANONICAL_URLS = {
    "mbpp": "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
    "mbpp-sanitized": "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/sanitized-mbpp.json",
}
DEFAULT_CACHE = DATASETS_DIR


@dataclass(frozen=True)
class Task:
    task_id: int | str
    description: str  # MBPP's text / prompt; HumanEval's prompt (signature + docstring)
    reference: str  # the published solution
    tests: tuple[str, ...] = ()
    setup: str = ""  # MBPP test_setup_code
    imports: tuple[str, ...] = ()  # sanitized MBPP test_imports
    challenge_tests: tuple[str, ...] = ()
    test_code: str = ""  # HumanEval: the check() definition; MultiPL-E: check() and the call that runs it
    entry_point: str = ""
    test_runs_itself: bool = False  # MultiPL-E's typed MBPP: the completion is a whole program

    @property
    def is_humaneval(self) -> bool:
        return bool(self.test_code)

    def program(self, completion: str, challenge: bool = False, test_block: str | None = None) -> str:
        """The program a sample is judged by; it passes only if it runs to its end. test_block, where
        given, stands for MBPP's assert lines (the sandbox's rewrite of them, core/sandbox/checks.py)."""
        if self.test_runs_itself:  # as MultiPL-E rows are scored: the prompt's imports, the program, its test
            imports = [line for line in self.description.splitlines() if line.startswith(("import ", "from "))]
            return "\n".join([*imports, completion, "", self.test_code]) + "\n"
        if self.is_humaneval:
            return f"{self.description}{completion}\n\n{self.test_code}\n\ncheck({self.entry_point})\n"
        # The solution comes before test_setup_code: tasks 367 and 927 build their fixtures
        # from classes the solution defines.
        tests = (test_block,) if test_block is not None else self.tests + (self.challenge_tests if challenge else ())
        parts = [*self.imports, completion, self.setup, *tests]
        return "\n".join(p for p in parts if p) + "\n"

    def test_lines(self, challenge: bool = False) -> tuple[str, ...]:
        return () if self.test_code else self.tests + (self.challenge_tests if challenge else ())


@dataclass
class Dataset:
    name: str
    split: str
    path: str
    sha256: str
    tasks: list[Task]
    shots: list[Task] = field(default_factory=list)  # MBPP tasks 2, 3, 4 for the 3-shot prompt

    def by_key(self) -> dict[str, Task]:
        return {task_key(t.task_id): t for t in self.tasks}


def task_key(task_id) -> str:
    """Normalises task ids as people write them: 11, "11", "MBPP/11", "Mbpp/11" -> "11"."""
    try:
        return _task_key(task_id)  # a run looks up each id a dozen times
    except TypeError:  # an unhashable id from a malformed file: normalised all the same, then refused by name
        return _task_key.__wrapped__(task_id)


@functools.lru_cache(maxsize=1 << 16, typed=True)  # typed: True, 1 and 1.0 are different ids
def _task_key(task_id) -> str:
    text = str(task_id).strip()
    m = re.fullmatch(r"(?i)mbpp/(\d+)", text)
    return m.group(1) if m else text


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json_lines(path: Path) -> list[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        return jsonl_rows(fh, path)


def _require(row: dict, fields: tuple[str, ...], where: str, fmt: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}; is this really {fmt}?")


def _parse_mbpp(path: Path) -> list[Task]:
    tasks = []
    for lineno, row in _read_json_lines(path):
        _require(row, ("task_id", "text", "code", "test_list"), f"{path}:{lineno}", "MBPP's mbpp.jsonl")
        tasks.append(Task(task_id=int(row["task_id"]), description=row["text"], reference=row["code"],
                          tests=tuple(row["test_list"]), setup=row.get("test_setup_code", "") or "",
                          challenge_tests=tuple(row.get("challenge_test_list") or ())))
    return tasks


def _parse_mbpp_sanitized(path: Path) -> list[Task]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); sanitized MBPP is one JSON array") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON array of tasks (sanitized-mbpp.json)")
    tasks = []
    for i, row in enumerate(rows):
        where = f"{path}: task #{i}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object")
        _require(row, ("task_id", "prompt", "code", "test_list"), where, "sanitized-mbpp.json")
        tasks.append(Task(task_id=int(row["task_id"]), description=row["prompt"], reference=row["code"],
                          tests=tuple(row["test_list"]), imports=tuple(row.get("test_imports") or ())))
    return tasks


def _parse_humaneval(path: Path) -> list[Task]:
    tasks = []
    for lineno, row in _read_json_lines(path):
        _require(row, ("task_id", "prompt", "test", "entry_point"), f"{path}:{lineno}", "HumanEval-format JSONL")
        tasks.append(Task(task_id=str(row["task_id"]), description=row["prompt"],
                          reference=row.get("canonical_solution", ""), test_code=row["test"],
                          entry_point=row["entry_point"]))
    return tasks


def typed_task_id(name) -> int | None:
    """MBPP's task id in a MultiPL-E name (mbpp_3_is_not_prime -> 3), or None."""
    m = TYPED_NAME.fullmatch(str(name))
    return int(m.group(1)) if m else None


def _parse_typed(path: Path) -> list[Task]:
    tasks = []
    for lineno, row in _read_json_lines(path):
        where = f"{path}:{lineno}"
        _require(row, ("name", "prompt", "test", "entry_point"), where, "MultiPL-E's typed MBPP (JSONL)")
        task_id = typed_task_id(row["name"])
        if task_id is None:
            raise DataError(f"{where}: name {row['name']!r} is not mbpp_<task id>_<function>")
        tasks.append(Task(task_id=task_id, description=row["prompt"], reference="", test_code=row["test"],
                          entry_point=row["entry_point"], test_runs_itself=True))
    return tasks


PARSERS = {"mbpp": _parse_mbpp, "mbpp-sanitized": _parse_mbpp_sanitized, "humaneval-jsonl": _parse_humaneval,
           "mbpp-typed": _parse_typed}


def datasets_dir() -> Path:
    """Where downloaded datasets go: $HRM_GATE_DATASETS, else cache/datasets/ in the repository."""
    return Path(os.environ.get("HRM_GATE_DATASETS") or DEFAULT_CACHE)


def download(name: str, cache_dir: Path | None = None, url: str | None = None) -> Path:
    """Fetch an MBPP file once into cache_dir; its sha256 is stored beside it."""
    cache_dir = Path(cache_dir) if cache_dir else datasets_dir()
    url = url or os.environ.get(f"HRM_GATE_{name.upper().replace('-', '_')}_URL") or CANONICAL_URLS[name]
    target = cache_dir / Path(url).name
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s", name, url)
    tmp = target.with_suffix(target.suffix + ".part")
    import urllib.error  # here, not at the top: every command reads data sets, one in many downloads
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
            out.write(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(f"could not download {name} from {url} ({reason}); pass --data-path to a local copy, "
                        f"e.g. --data-path {Path(MBPP_PATH).parent / Path(CANONICAL_URLS.get(name, url)).name}") from None
    os.replace(tmp, target)
    (cache_dir / (target.name + ".sha256")).write_text(sha256_of(target) + "\n")
    return target


def load_dataset(name: str, data_path: str | os.PathLike | None = None, split: str = "test",
                 limit: int | None = None, cache_dir: Path | None = None) -> Dataset:
    if name not in DATASETS:
        raise DataError(f"unknown --dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if data_path is None:
        if name == "humaneval-jsonl":
            raise DataError("--dataset humaneval-jsonl needs --data-path FILE (task_id, prompt, test, entry_point per line)")
        path = download(name, cache_dir)
    else:
        path = Path(data_path)
        if not path.is_file():
            raise DataError(f"data file not found: {path}; pass --data-path to an existing file "
                            f"(the MBPP files are in {Path(MBPP_PATH).parent}/)")
    try:
        all_tasks = PARSERS[name](path)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; is this the right file for --dataset {name}?") from None
    if not all_tasks:
        raise DataError(f"{path}: holds no tasks")
    if name == "humaneval-jsonl":
        if split not in ("test", "all"):
            raise DataError(f"HumanEval-format data has no split {split!r}; use --split test")
        tasks, shots = all_tasks, []
    else:
        if split not in MBPP_SPLITS:
            raise DataError(f"unknown --split {split!r}; choose one of {', '.join(MBPP_SPLITS)}")
        lo, hi = MBPP_SPLITS[split]
        tasks = [t for t in all_tasks if lo <= t.task_id <= hi]
        shots = [t for t in all_tasks if t.task_id in (2, 3, 4)]
    if limit is not None:
        tasks = tasks[:limit]
    return Dataset(name=name, split=split, path=str(path.resolve()), sha256=sha256_of(path), tasks=tasks,
                   shots=shots)
