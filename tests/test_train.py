"""Training runs through the real CLI: loss falls, SIGKILL + resume, divergence, data parallel."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.test_evaluate import cli

SMALL = ["--model", "hrm:tiny", "--batch", "4", "--seq-len", "96", "--threads", "1"]


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_loss_falls_and_a_killed_run_resumes_exactly(tmp_path, mbpp_path):
    args = ["train", *SMALL, "--steps", "50", "--lr", "1e-3", "--warmup", "5", "--checkpoint-every", "10",
            "--data-path", mbpp_path]
    out = cli(*args, "--run-dir", tmp_path / "whole")
    whole = metrics(tmp_path / "whole")
    assert [r["step"] for r in whole] == list(range(1, 51))
    first, last = sum(r["loss"] for r in whole[:10]) / 10, sum(r["loss"] for r in whole[-10:]) / 10
    assert last < first - 0.5, (first, last)
    assert "peak RSS" in out.stdout

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "core", *map(str, args), "--run-dir", killed], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (killed / "metrics.jsonl").exists() and (killed / "metrics.jsonl").read_text().count("\n") >= 30:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_at_kill = len(metrics(killed))
    assert 30 <= steps_at_kill < 50
    state = json.loads((killed / "checkpoint" / "state.json").read_text())
    assert state["step"] % 10 == 0 and state["step"] <= steps_at_kill
    cli(*args, "--run-dir", killed)
    resumed = metrics(killed)
    assert [r["step"] for r in resumed] == list(range(1, 51))  # none twice, none missing
    for a, b in zip(whole, resumed):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["resumed"] == 1
    # the checkpoint loads as a trained model
    out = cli("eval", "--model", f"hrm:{killed / 'checkpoint'}", "--dataset", "mbpp", "--data-path", mbpp_path,
              "--limit", "1", "--max-new-tokens", "8", "--run-dir", tmp_path / "ev", "--no-progress")
    assert json.loads((tmp_path / "ev" / "manifest.json").read_text())["trained"] is True


def test_non_finite_loss_fails_the_run_with_a_clear_message(tmp_path, mbpp_path):
    proc = cli("train", *SMALL, "--steps", "5", "--lr", "1e9", "--warmup", "0", "--data-path", mbpp_path,
               "--run-dir", tmp_path / "r", check=False)
    assert proc.returncode != 0
    assert "error: training diverged at step" in proc.stderr and "lower --lr" in proc.stderr
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["status"] == "failed" and "diverged" in m["error"]


@pytest.mark.slow
def test_two_process_data_parallel_matches_one_process(tmp_path, mbpp_path):
    args = [*SMALL, "--steps", "6", "--data-path", mbpp_path]
    cli("train", *args, "--run-dir", tmp_path / "one")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "-m", "core", "train"]
    proc = subprocess.run([*torchrun, *map(str, args), "--run-dir", str(tmp_path / "two")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert [r["step"] for r in two] == list(range(1, 7))
    for a, b in zip(one, two):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["protocol"]["world_size"] == 2


def test_seq2seq_training_is_refused(tmp_path, mbpp_path):
    proc = cli("train", "--model", "hf-arch:codet5-small", "--steps", "1", "--data-path", mbpp_path,
               "--run-dir", tmp_path / "r", check=False)
    assert proc.returncode != 0 and "training seq2seq models is not supported" in proc.stderr


def test_pass_at_1_vs_step_is_measured_in_the_sandbox_and_charted(tmp_path, mbpp_path, monkeypatch):
    """Issue 17: the seed's accuracy line chart had no data: training never measured pass@1."""
    from core.base.store import read_json
    from core.views.dashboard import pass_vs_step
    run = tmp_path / "store" / "tiny"
    cli("train", *SMALL, "--steps", "4", "--checkpoint-every", "0", "--pass-every", "2", "--pass-tasks", "3",
        "--pass-new-tokens", "8", "--data-path", mbpp_path, "--run-dir", run)
    rows = metrics(run)
    assert [r["step"] for r in rows if "pass_at_1" in r] == [2, 4]
    assert all(r["pass_at_1"] == 0.0 for r in rows if "pass_at_1" in r)  # untrained: 0, scored for real
    for step in (2, 4):
        ev = run / "pass-at-1" / f"step-{step}" / "eval"
        results = [json.loads(line) for line in (ev / "results.jsonl").read_text().splitlines()]
        assert len(results) == 3 and read_json(ev / "manifest.json")["dataset"]["split"] == "validation"
        assert not (run / "pass-at-1" / f"step-{step}" / "model").exists()  # weights are not kept
    assert [(r["step"], r["value"]) for r in pass_vs_step(tmp_path / "store")] == [(2, 0.0), (4, 0.0)]
