"""The local run store: run directories, atomic writes, append-only JSONL, the manifest.

Every whole file is written to a temp file and renamed into place; JSONL files grow one
complete line per write. A process killed at any point leaves at worst a partial last line,
which readers skip and a resuming writer cuts off.
"""
from __future__ import annotations

import json
import os
import shutil
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from core.base.errors import DataError, RunStoreError
from core.base.settings import REPO_ROOT, STORE_DIR  # noqa: F401 (REPO_ROOT re-exported)

DEFAULT_STORE = STORE_DIR


def store_root() -> Path:
    """The local run store: $HRM_GATE_STORE, else cache/runs/ in the repository."""
    return Path(os.environ.get("HRM_GATE_STORE") or DEFAULT_STORE)
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ENDED = ("done", "failed", "cancelled")
JOB_FILES = ("job.json", "job.log")  # written by core.views.jobs before the job claims its run directory


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def jsonl_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def atomic_write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(jsonl_line(r) for r in rows))


def replace_dir(final: Path, fill) -> None:
    """Write a directory whole or not at all: `fill(tmp)` writes it beside `final`, then it takes final's
    place (the previous one is kept as final.old until the swap is done), so a kill at any moment leaves a
    complete directory: the old one or the new one."""
    final = Path(final)
    tmp, old = final.with_name(f"{final.name}.tmp-{os.getpid()}"), final.with_name(f"{final.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    fill(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


class NullAppender:
    """A JsonlAppender that writes nothing: what ranks other than 0 of a distributed run append to."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def append(self, row):
        pass


class JsonlAppender:
    """Appends whole lines only, so a kill never splits a line in the middle. With flush_every_s > 0,
    lines are gathered and written together at most that often (a kill then loses at most that much,
    which a resuming run redoes); 0 writes every line at once."""

    def __init__(self, path: Path, flush_every_s: float = 0.0):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.flush_every_s = flush_every_s
        self.pending: list[str] = []
        self.last = time.monotonic()

    def append(self, obj: Any) -> None:
        self.pending.append(jsonl_line(obj))
        if not self.flush_every_s or time.monotonic() - self.last >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            data = "".join(self.pending).encode("utf-8")
            while data:
                data = data[os.write(self.fd, data):]
            self.pending.clear()
        self.last = time.monotonic()

    def close(self) -> None:
        self.flush()
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_jsonl(path: Path, repair: bool = False) -> list[dict]:
    """Rows of a JSONL file. A last line without its newline (a killed writer) is skipped, and
    cut off when repair is set; any other bad line is an error naming its line number."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete_end = data.rfind(b"\n") + 1
    if repair and complete_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(complete_end)
    return [row for _, row in jsonl_rows(data[:complete_end].decode("utf-8", errors="replace").splitlines(), path)]


def jsonl_rows(lines: Iterable[str], path) -> list[tuple[int, dict]]:
    """(line number, object) of every non-blank JSONL line; a bad line is one error naming path:line."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
        rows.append((lineno, row))
    return rows


def read_json(path: Path) -> dict:
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunStoreError(f"{path} not found; is this a run directory?") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object")
    return obj


def validate_run_name(name: str) -> str:
    """A run name is one path component of letters, digits, '.', '_' and '-'."""
    if not RUN_NAME.fullmatch(name or "") or ".." in name:
        raise RunStoreError(f"invalid run name {name!r}: use letters, digits, '.', '_' and '-' only (no '/' or '..')")
    return name


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class RunDir:
    """One run directory: cache/runs/<run_id>/ or any --run-dir."""

    def __init__(self, path: os.PathLike | str):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def run_id(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return self.file("manifest.json").exists()

    def manifest(self) -> dict:
        return read_json(self.file("manifest.json"))

    def readable(self) -> bool:
        """Whether manifest.json parses as a JSON object (a list, or a truncated file, does not)."""
        try:
            self.manifest()
        except (DataError, RunStoreError, OSError, UnicodeDecodeError):
            return False
        return True

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.file("manifest.json"), manifest)

    def update_manifest(self, **fields) -> dict:
        m = self.manifest()
        m.update(fields)
        self.write_manifest(m)
        return m

    def status(self) -> str:
        """The manifest's status, with 'running' turned into 'interrupted' when its process is gone."""
        m = self.manifest()
        if m.get("status") == "running" and not pid_alive(m.get("pid")):
            return "interrupted"
        return m.get("status", "unknown")

    def claim(self, identity: dict, fresh_manifest: dict) -> bool:
        """Start or resume this run. Returns True when resuming an earlier, unfinished or done run
        with the same identity; refuses a directory that holds a different run or a live one."""
        if self.path.exists() and not self.path.is_dir():
            raise RunStoreError(f"--run-dir {self.path} is a file; pass a directory")
        if self.exists():
            m = self.manifest()
            if m.get("identity") != identity:
                raise RunStoreError(f"{self.path} holds a different run ({_identity_diff(m.get('identity'), identity)}); "
                                    "choose another --run-dir or delete that one")
            if m.get("status") == "running" and pid_alive(m.get("pid")) and m.get("pid") != os.getpid():
                raise RunStoreError(f"{self.path} is being written by process {m['pid']}; wait for it or cancel it")
            m.update(status="running", pid=os.getpid(), resumed=m.get("resumed", 0) + 1, ended_at=None)
            self.write_manifest(m)
            return True
        if self.path.exists() and any(p.name not in JOB_FILES for p in self.path.iterdir()):
            raise RunStoreError(f"{self.path} is not empty and is not a run directory; choose another --run-dir")
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_manifest({**fresh_manifest, "identity": identity, "status": "running", "pid": os.getpid()})
        return False


def _identity_diff(old: dict | None, new: dict) -> str:
    if not isinstance(old, dict):
        return "no identity recorded"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:2]) or "same"


def list_runs(store: Path | None = None, readable_only: bool = False) -> list[RunDir]:
    """The store's run directories (those with a manifest.json); with readable_only, only those whose
    manifest parses: a reader that needs the manifest skips a broken run instead of failing on it."""
    store = Path(store) if store else store_root()
    if not store.is_dir():
        return []
    runs = sorted((RunDir(p) for p in Path(store).iterdir() if (p / "manifest.json").exists()),
                  key=lambda r: r.path.name)
    return [r for r in runs if r.readable()] if readable_only else runs
