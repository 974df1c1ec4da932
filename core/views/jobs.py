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
from dataclasses import dataclass, field
from pathlib import Path

from core.base.config import default_of, fields, to_argv
from core.base.errors import RunStoreError, UsageError
from core.evaluation.config import EvalConfig
from core.lab.config import BenchConfig, TrainConfig
from core.base.machine import now_iso
from core.models import parse_spec
from core.base.store import REPO_ROOT, atomic_write_json, pid_alive, read_json, store_root, validate_run_name

KINDS = ("eval", "bench", "train")
CONFIGS = {"eval": EvalConfig, "bench": BenchConfig, "train": TrainConfig}


@dataclass
class JobRequest:
    """A run to launch: its kind, name, model and settings (fields of the kind's config dataclass: the
    launch form's values; an eval may name `samples` instead of a model)."""
    kind: str
    name: str
    model: str
    settings: dict = field(default_factory=dict)
    baseline: str | None = None  # bench: the baseline model


def form_fields(kind: str) -> list[dict]:
    """The launch form's inputs for a run kind: label, type, default and bounds, from its config dataclass."""
    cls = CONFIGS[kind]
    out = []
    for f in fields(cls):
        if f.metadata["form"]:
            default = default_of(f)
            out.append({"name": f.name, "label": f.metadata["form"], "help": f.metadata["help"],
                        "type": type(default).__name__ if default is not None else "int",
                        "default": default, "minimum": f.metadata["minimum"]})
    return out


def config_for(req: JobRequest, run_dir: Path):
    """The run kind's config of a request; a setting it does not have, or out of bounds, is a UsageError."""
    if req.kind not in KINDS:
        raise UsageError(f"unknown job kind {req.kind!r}; use one of {', '.join(KINDS)}")
    settings = dict(req.settings)
    try:
        if req.kind == "eval":
            model = None if settings.get("samples") else str(parse_spec(req.model))
            return EvalConfig(run_dir=str(run_dir), **{"model": model, **settings})
        if req.kind == "train":
            return TrainConfig(model=str(parse_spec(req.model)), run_dir=str(run_dir), **settings)
        models = [str(parse_spec(req.model))] + ([str(parse_spec(req.baseline))] if req.baseline else [])
        return BenchConfig(models=models, out=str(run_dir / "bench.json"), **settings)
    except TypeError as exc:
        raise UsageError(f"{req.kind} has no such setting: {exc}") from None


def build_argv(req: JobRequest, run_dir: Path) -> list[str]:
    validate_run_name(req.name)
    cfg = config_for(req, run_dir)
    if req.kind == "eval":
        source = ["--samples", cfg.samples] if cfg.samples else ["--model", cfg.model]
        return ["eval", *source, *to_argv(cfg), "--run-dir", str(run_dir), "--no-progress"]
    if req.kind == "bench":
        return ["bench", *[x for m in cfg.models for x in ("--model", m)], *to_argv(cfg)]
    return ["train", "--model", cfg.model, *to_argv(cfg, skip=("model",)), "--run-dir", str(run_dir)]


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
