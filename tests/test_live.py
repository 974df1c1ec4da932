"""Live W&B runs (core.publish.live): a real offline run beside a real job, read back from its .wandb file."""
import os
import subprocess
import sys
import threading
import time

import pytest

from core.base.store import JsonlAppender, RunDir, atomic_write_json, read_json
from core.lab.monitor import Monitor
from core.publish.live import INFO_FILE, Follower, run_tags
from core.publish.tracking import log_run, offline_files, read_offline_run, read_table
from tests.conftest import REPO


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def info_of(run_dir):
    p = run_dir / INFO_FILE
    return read_json(p) if p.exists() else {}


@pytest.mark.slow
def test_a_killed_training_run_is_logged_live_and_ends_as_crashed(tmp_path, mbpp_path, offline):
    """kill -9 mid-training: the W&B run already holds the steps trained so far, and ends crashed (exit
    code 1, status crashed), not as a clean exit of a run still `running`."""
    d = tmp_path / "train"
    job = subprocess.Popen([sys.executable, "-m", "core", "train", "--model", "hrm:tiny", "--steps", "1000000",
                            "--batch", "2", "--seq-len", "64", "--threads", "1", "--checkpoint-every", "0",
                            "--data-path", str(mbpp_path), "--run-dir", str(d), "--wandb", "offline"],
                           cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: info_of(d).get("status") == "running" and (d / "metrics.jsonl").exists()
                 and len((d / "metrics.jsonl").read_text().splitlines()) >= 10, 180, "a running W&B run and 10 steps")
    finally:
        job.kill()
        job.wait()
    wait_for(lambda: info_of(d).get("status") != "running", 120, "the follower to end the W&B run")
    assert info_of(d)["status"] == "crashed"
    assert RunDir(d).status() == "interrupted"
    files = offline_files(d)
    assert len(files) == 1
    data = read_offline_run(files[0])
    assert data["exit_code"] == 1 and data["summary"]["status"] == "crashed"
    steps = [r["train/step"] for r in data["history"] if "loss" in r]
    assert len(steps) >= 10 and steps == sorted(set(steps))  # logged while it ran, each step once
    assert {"lr", "grad_norm"} <= set(data["summary"])
    assert any("system/cpu_percent" in r for r in data["history"])


def test_a_run_logged_after_its_process_died_is_crashed(tmp_path, offline):
    """`wandb-log` of a run whose process is gone mid-run: before, a clean exit (code 0) with no status."""
    run = RunDir(tmp_path / "r")
    run.claim({"kind": "train"}, {"kind": "train", "model": "hrm:tiny"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.update_manifest(pid=dead.pid)  # a process that no longer exists, status still running
    with JsonlAppender(run.file("metrics.jsonl")) as out:
        out.append({"step": 1, "loss": 2.0})
    info = log_run(run.path, "offline")
    data = read_offline_run(offline_files(run.path)[0])
    assert info["status"] == "crashed" and data["exit_code"] == 1 and data["summary"]["status"] == "crashed"


def test_the_monitors_alerts_reach_the_live_run(tmp_path, offline):
    """The real monitor flags a NaN loss in alerts.jsonl; the follower logs its count as it comes and an
    alerts table at the end; the run failed, so the W&B run ends with exit code 1."""
    run = RunDir(tmp_path / "job")
    run.claim({"kind": "train"}, {"kind": "train", "model": "hrm:tiny", "dataset": {"name": "mbpp", "split": "train"},
                                  "protocol": {"prompt": "mbpp-3shot", "steps": 4, "lr": 1e-3}})
    follower = Follower(run.path, os.getpid(), "offline", group="g", name="people's name", poll_s=0.1)
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("info", follower.follow()))
    thread.start()
    wait_for(lambda: info_of(run.path).get("status") == "running", 60, "the W&B run")
    monitor = Monitor(run.path)
    with JsonlAppender(run.file("metrics.jsonl")) as metrics, JsonlAppender(run.file("alerts.jsonl")) as alerts:
        for step, loss in enumerate([3.0, 2.5, float("nan")], 1):
            metrics.append({"step": step, "loss": loss, "lr": 1e-3, "grad_norm": 1.0})
        metrics.flush()
        monitor.check(alerts)
    wait_for(lambda: follower.alert_rows, 30, "the follower to read the alert")
    run.update_manifest(status="failed", error="training diverged")
    thread.join(120)
    assert out["info"]["status"] == "failed"
    f = offline_files(run.path)[0]
    data = read_offline_run(f)
    assert data["run"]["name"] == "people's name" and data["run"]["group"] == "g"
    assert {"model:hrm:tiny", "dataset:mbpp/train", "protocol:mbpp-3shot steps=4 lr=0.001"} <= set(data["run"]["tags"])
    assert data["exit_code"] == 1 and data["summary"]["alerts/critical"] == 1
    table = read_table(f, "alerts")
    assert [r[2] for r in table["data"]] == ["non_finite_loss"]


def test_tags_name_model_dataset_and_protocol():
    eval_manifest = {"kind": "eval", "model": "hrm:cache/pipeline/smoke/train/checkpoint",
                     "dataset": {"name": "mbpp", "split": "test"},
                     "protocol": {"prompt": "mbpp-3shot", "n": 10, "temperature": 0.8}}
    assert run_tags(eval_manifest) == ["model:hrm:train/checkpoint", "dataset:mbpp/test",
                                       "protocol:mbpp-3shot n=10 T=0.8", "kind:eval"]
    assert all(len(t) <= 64 for t in run_tags({**eval_manifest, "model": "hf:" + "x" * 100}))


@pytest.mark.slow
def test_a_pipeline_killed_during_training_leaves_a_crashed_wandb_run(tmp_path, mbpp_path, offline):
    """The audit's case: kill -9 of the pipeline while it trains."""
    config = tmp_path / "pipeline.toml"
    config.write_text(f"""
[pipeline]
out_dir = "{tmp_path / 'weekly'}"
data_path = "{mbpp_path}"
limit = 2

[train]
model = "hrm:tiny"
steps = 1000000
batch = 2
seq_len = 64
checkpoint_every = 0

[candidate]
model = "train"

[baseline]
model = "oracle"

[wandb]
mode = "offline"
""")
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    job = subprocess.Popen([sys.executable, "-m", "core", "pipeline", "--config", str(config), "--no-progress"],
                           cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = tmp_path / "weekly" / "train"
    try:
        wait_for(lambda: info_of(d).get("status") == "running" and (d / "metrics.jsonl").exists()
                 and len((d / "metrics.jsonl").read_text().splitlines()) >= 5, 180, "the pipeline's live train run")
    finally:
        job.kill()
        job.wait()
    wait_for(lambda: info_of(d).get("status") != "running", 120, "the follower to end the W&B run")
    data = read_offline_run(offline_files(d)[0])
    assert info_of(d)["status"] == "crashed" and data["exit_code"] == 1 and data["summary"]["status"] == "crashed"
    assert data["run"]["name"] == "weekly · train hrm:tiny (1000000 steps)" and data["run"]["group"] == "weekly"
    assert {"pipeline:weekly", "role:train", "model:hrm:tiny", "dataset:mbpp/train"} <= set(data["run"]["tags"])
