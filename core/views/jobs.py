"""Long jobs launched from the app: `python -m core ...` subprocesses writing to their run directory.

A job runs detached (its own session) under `python -m core job RUN_DIR -- ARGV...`, which
records pid, argv, status and exit code in RUN_DIR/job.json, so the status survives a browser
reload and an app restart. Form inputs never reach a shell: argv is a list built here, the run
name is one validated path component inside the store, and the model spec is parsed.

A launch is checked against the caps of `AppConfig` (jobs running at once, per user and in all;
an eval's tasks x samples; steps; new tokens) and refused in one line over any of them. A job gets
a minimal environment (`job_environment`): none of the app's secrets (access token, API keys,
GitHub, W&B), except the OpenAI-compatible key for a job that generates through such endpoints.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from core.base.config import default_of, fields, to_argv
from core.base.errors import DataError, RunStoreError, UsageError
from core.evaluation.config import EvalConfig
from core.lab.config import BenchConfig, TrainConfig
from core.base.machine import now_iso
from core.models import parse_spec
from core.base.settings import MBPP_PATH
from core.base.store import REPO_ROOT, atomic_write_json, pid_alive, read_json, store_root, validate_run_name
from core.tasks.data import load_dataset
from core.views.config import AppConfig

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


def form_fields(kind: str, data_path: str = MBPP_PATH) -> list[dict]:
    """The launch form's inputs for a run kind: label, type, default and bounds, from its config dataclass;
    an eval's task count also gets `all`, the tasks of the split it scores from `data_path` (what no limit
    means, shown as the input's value so that nobody reads it as "no tasks")."""
    cls = CONFIGS[kind]
    out = []
    for f in fields(cls):
        if f.metadata["form"]:
            default = default_of(f)
            out.append({"name": f.name, "label": f.metadata["form"], "help": f.metadata["help"],
                        "type": type(default).__name__ if default is not None else "int",
                        "default": default, "minimum": f.metadata["minimum"],
                        "all": split_size(data_path) if (kind, f.name) == ("eval", "limit") else None})
    return out


@lru_cache(maxsize=8)
def split_size(data_path: str) -> int | None:
    """Tasks an eval launched from the form scores without a limit: the default dataset's default split of
    `data_path` (relative to the repository, as the job runs there); None where it cannot be read (a
    launch then says why)."""
    defaults = {f.name: default_of(f) for f in fields(EvalConfig)}
    path = Path(data_path) if Path(data_path).is_absolute() else REPO_ROOT / data_path
    try:
        return len(load_dataset(defaults["dataset"], path, defaults["split"]).tasks)
    except (DataError, OSError):
        return None


def form_value(field_: dict, value):
    """The setting a launch-form input stands for: an optional count at its `all` value (or at 0, where
    that count is unknown) is None, no flag, as on the command line."""
    if field_["default"] is None and field_["type"] == "int":
        value = int(value)
        return None if value == 0 or (field_["all"] and value >= field_["all"]) else value
    return value


def default_name(kind: str, spec: str, store: Path | None = None, when: datetime | None = None) -> str:
    """A name for a launch left unnamed: its kind, the model's name for people and the start time to the minute
    (eval-gpt-2-117m-20261201-1231), then -2, -3... where that run exists."""
    from core.views.fmt import model_name
    slug = re.sub(r"[^a-z0-9]+", "-", model_name(spec).lower()).strip("-")[:40].strip("-") or "model"
    base = f"{kind}-{slug}-{(when or datetime.now().astimezone()).strftime('%Y%m%d-%H%M')}"
    root = Path(store or store_root())
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


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


class CapExceeded(UsageError):
    """A launch over one of the app's caps (AppConfig)."""


# Variables a job may inherit: nothing secret. Names holding TOKEN, KEY, SECRET or PASSWORD never pass.
JOB_ENV_NAMES = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "VIRTUAL_ENV", "PYTHONPATH",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "WANDB_MODE", "WANDB_DIR"}
JOB_ENV_PREFIXES = ("LC_", "HRM_GATE_", "HF_", "TRANSFORMERS_", "TORCH", "XDG_", "PYTHONHASHSEED")
SECRET_MARKS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "CREDENTIAL")


def job_environment(model_specs: list[str], environ=None) -> dict[str, str]:
    """The environment of a launched job: the app's, less every secret; OPENAI_API_KEY only for a job
    whose model is an OpenAI-compatible endpoint (which sends it only to allow-listed endpoints)."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items()
           if (k in JOB_ENV_NAMES or k.startswith(JOB_ENV_PREFIXES)) and not any(m in k.upper() for m in SECRET_MARKS)}
    if any(str(m).startswith("openai:") for m in model_specs) and environ.get("OPENAI_API_KEY"):
        env["OPENAI_API_KEY"] = environ["OPENAI_API_KEY"]
    return env


def running_jobs(root: Path) -> list[dict]:
    """job.json of every job of the store still running, with its run's name under "run" (a job.json
    that does not parse is left out)."""
    out = []
    for d in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        try:
            job = job_status(d)
        except (DataError, RunStoreError, OSError):
            continue
        if job and job.get("status") == "running":
            out.append({**job, "run": d.name})
    return out


def check_caps(req: JobRequest, cfg, user: str, root: Path, caps: AppConfig) -> None:
    """Refuse, in one line, a launch over a cap."""
    running = running_jobs(root)
    if len(running) >= caps.max_jobs:
        raise CapExceeded(f"{len(running)} jobs are running, the most at once (HRM_GATE_MAX_JOBS={caps.max_jobs}); "
                          "wait for one to end")
    mine = sum(1 for j in running if j.get("user") == user)
    if mine >= caps.max_jobs_per_user:
        raise CapExceeded(f"you have {mine} jobs running, the most per user (HRM_GATE_MAX_JOBS_PER_USER="
                          f"{caps.max_jobs_per_user}); wait for one to end or cancel it")
    if req.kind == "eval" and cfg.samples:  # scoring a file: its samples are what the sandbox runs
        with open(cfg.samples, "rb") as fh:
            count = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        if count > caps.max_task_samples:
            raise CapExceeded(f"{cfg.samples} holds {count} samples, over the cap of {caps.max_task_samples} "
                              "(HRM_GATE_MAX_TASK_SAMPLES); score a smaller file")
    elif req.kind == "eval":
        tasks = cfg.limit or len(load_dataset(cfg.dataset, cfg.data_path, cfg.split).tasks)
        if tasks * cfg.n > caps.max_task_samples:
            raise CapExceeded(f"{tasks} tasks x {cfg.n} samples = {tasks * cfg.n} samples, over the cap of "
                              f"{caps.max_task_samples} (HRM_GATE_MAX_TASK_SAMPLES); use fewer tasks or samples")
        if cfg.max_new_tokens > caps.max_new_tokens:
            raise CapExceeded(f"max new tokens {cfg.max_new_tokens} is over the cap of {caps.max_new_tokens} "
                              "(HRM_GATE_MAX_NEW_TOKENS)")
    elif req.kind == "train" and cfg.steps > caps.max_steps:
        raise CapExceeded(f"{cfg.steps} steps is over the cap of {caps.max_steps} (HRM_GATE_MAX_STEPS)")
    elif req.kind == "bench" and cfg.new_tokens > caps.max_new_tokens:
        raise CapExceeded(f"{cfg.new_tokens} new tokens is over the cap of {caps.max_new_tokens} "
                          "(HRM_GATE_MAX_NEW_TOKENS)")


def launch(req: JobRequest, store: Path | None = None, user: str = "local", caps: AppConfig | None = None) -> Path:
    """Start a job in the background, for `user`, within the caps; returns its run directory."""
    root = Path(store or store_root()).resolve()
    run_dir = (root / validate_run_name(req.name)).resolve()
    if run_dir.parent != root:
        raise RunStoreError(f"run {req.name!r} would land outside the store")
    if run_dir.exists():
        raise RunStoreError(f"a run named {req.name!r} already exists; choose another name")
    argv = build_argv(req, run_dir)
    with _LAUNCHING:  # the caps count job.json files: one launch at a time writes its own
        check_caps(req, config_for(req, run_dir), user, root, caps or AppConfig.from_env())
        return _start(req, run_dir, argv, user)


_LAUNCHING = threading.Lock()


def _start(req: JobRequest, run_dir: Path, argv: list[str], user: str) -> Path:
    run_dir.mkdir(parents=True)
    if req.kind == "bench":  # bench writes a file, not a run: give it a manifest of its own
        atomic_write_json(run_dir / "manifest.json", {"run_id": req.name, "kind": "bench", "model": req.model,
                                                      "status": "running", "started_at": now_iso()})
    log = open(run_dir / "job.log", "ab")
    env = job_environment([req.model, req.baseline or ""])
    proc = subprocess.Popen([sys.executable, "-m", "core", "job", str(run_dir), "--", *argv], cwd=REPO_ROOT,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env)
    log.close()
    atomic_write_json(run_dir / "job.json", {"argv": argv, "pid": proc.pid, "status": "running", "started_at": now_iso(),
                                             "kind": req.kind, "user": user})
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
    try:
        job = read_json(f)
    except (DataError, OSError) as exc:  # a broken job record is shown as such, never a broken screen
        return {"status": "unreadable", "error": str(exc)}
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
