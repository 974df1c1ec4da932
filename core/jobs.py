"""Long jobs launched from the app: `python -m core ...` subprocesses writing to their run directory.

A job runs detached (its own session) under `python -m core job RUN_DIR -- ARGV...`, which
records pid, argv, status and exit code in RUN_DIR/job.json, so the status survives a browser
reload and an app restart. Form inputs never reach a shell: argv is a list built here, the run
name is one validated path component inside the store, and the model spec is parsed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import RunStoreError, UsageError
from core.machine import now_iso
from core.models import parse_spec
from core.store import REPO_ROOT, atomic_write_json, pid_alive, read_json, store_root, validate_run_name

KINDS = ("eval", "bench", "train")


@dataclass
class JobRequest:
    kind: str
    name: str
    model: str
    dataset: str = "mbpp"
    data_path: str | None = None
    limit: int | None = 20
    n: int = 1
    max_new_tokens: int = 128
    samples: str | None = None  # eval: a samples file instead of a model
    baseline: str | None = None  # bench: the baseline model
    steps: int = 20  # train


def build_argv(req: JobRequest, run_dir: Path) -> list[str]:
    if req.kind not in KINDS:
        raise UsageError(f"unknown job kind {req.kind!r}; use one of {', '.join(KINDS)}")
    validate_run_name(req.name)
    data = ["--data-path", req.data_path] if req.data_path else []
    if req.kind == "eval":
        source = ["--samples", req.samples] if req.samples else ["--model", str(parse_spec(req.model))]
        argv = ["eval", *source, "--dataset", req.dataset, *data, "--n", str(req.n), "--k", "1,10",
                "--max-new-tokens", str(req.max_new_tokens), "--run-dir", str(run_dir), "--no-progress"]
        if req.limit:
            argv += ["--limit", str(req.limit)]
        return argv
    if req.kind == "bench":
        models = [str(parse_spec(req.model))] + ([str(parse_spec(req.baseline))] if req.baseline else [])
        argv = ["bench", *[x for m in models for x in ("--model", m)], "--out", str(run_dir / "bench.json"),
                "--repeats", "2", "--throughput-repeats", "1", "--new-tokens", "32", "--skip-train"]
        return argv + (["--data-path", req.data_path] if req.data_path else [])
    return ["train", "--model", str(parse_spec(req.model)), "--steps", str(req.steps), *data, "--run-dir", str(run_dir)]


def launch(req: JobRequest, store: Path | None = None) -> Path:
    """Start a job in the background; returns its run directory."""
    root = Path(store or store_root()).resolve()
    run_dir = (root / validate_run_name(req.name)).resolve()
    if run_dir.parent != root:
        raise RunStoreError(f"run {req.name!r} would land outside the store")
    if run_dir.exists():
        raise RunStoreError(f"a run named {req.name!r} already exists; choose another name")
    argv = build_argv(req, run_dir)
    run_dir.mkdir(parents=True)
    if req.kind == "bench":  # bench writes a file, not a run: give it a manifest of its own
        atomic_write_json(run_dir / "manifest.json", {"run_id": req.name, "kind": "bench", "model": req.model,
                                                      "status": "running", "started_at": now_iso()})
    log = open(run_dir / "job.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "core", "job", str(run_dir), "--", *argv], cwd=REPO_ROOT,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    atomic_write_json(run_dir / "job.json", {"argv": argv, "pid": proc.pid, "status": "running", "started_at": now_iso(),
                                             "kind": req.kind})
    return run_dir


def run_job(run_dir: str | Path, argv: list[str]) -> int:
    """The body of `python -m core job`: run argv, record how it ended."""
    run_dir = Path(run_dir)
    job_file = run_dir / "job.json"
    job = read_json(job_file) if job_file.exists() else {"argv": argv}
    job.update(pid=os.getpid(), status="running")
    atomic_write_json(job_file, job)
    child = subprocess.Popen([sys.executable, "-m", "core", *argv], cwd=REPO_ROOT)

    def forward(signum, frame):
        child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    job = read_json(job_file)
    status = "done" if code == 0 else ("cancelled" if job.get("cancel_requested") else "failed")
    job.update(status=status, exit_code=code, ended_at=now_iso())
    atomic_write_json(job_file, job)
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        m = read_json(manifest)
        if m.get("kind") == "bench" or m.get("status") == "running":
            m.update(status=status, ended_at=now_iso())
            atomic_write_json(manifest, m)
    return code


def job_status(run_dir: str | Path) -> dict | None:
    f = Path(run_dir) / "job.json"
    if not f.exists():
        return None
    job = read_json(f)
    if job.get("status") == "running" and not pid_alive(job.get("pid")):
        job["status"] = "interrupted"
    return job


def cancel(run_dir: str | Path) -> bool:
    job = job_status(run_dir)
    if not job or job["status"] != "running":
        return False
    job["cancel_requested"] = True
    atomic_write_json(Path(run_dir) / "job.json", job)
    try:
        os.killpg(job["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
