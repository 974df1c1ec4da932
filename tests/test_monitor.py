"""Each fault fed through a metrics.jsonl written as a run writes it, or a real training process."""
import json
import math
import subprocess
import sys
import time

from core.lab.monitor import Monitor, Thresholds, count_alerts, system_sample
from core.base.store import JsonlAppender, RunDir
from tests.conftest import REPO


def make_run(tmp_path, rows, status="running", pid=None):
    run = RunDir(tmp_path / "run")
    run.claim({"kind": "train"}, {"kind": "train"})
    if pid is not None or status != "running":
        run.update_manifest(status=status, **({"pid": pid} if pid is not None else {}))
    with JsonlAppender(run.file("metrics.jsonl")) as out:
        for r in rows:
            out.append(r)
    return run


def rules(run):
    return [json.loads(x)["rule"] for x in run.file("alerts.jsonl").read_text().splitlines()]


def watch_once(run, **kw):
    Monitor(run.path, Thresholds(**kw)).run_forever(interval=0.01, max_s=0.05)


def steady(n, loss=2.0, norm=1.0):
    return [{"step": i, "loss": loss - 0.01 * i, "grad_norm": norm} for i in range(1, n + 1)]


def test_nan_loss(tmp_path):
    run = make_run(tmp_path, steady(10) + [{"step": 11, "loss": math.nan, "grad_norm": 1.0}], status="done")
    watch_once(run)
    assert rules(run) == ["non_finite_loss"]


def test_loss_spike_and_grad_explosion(tmp_path):
    run = make_run(tmp_path, steady(10) + [{"step": 11, "loss": 50.0, "grad_norm": 500.0}], status="done")
    watch_once(run)
    assert sorted(rules(run)) == ["grad_explosion", "loss_spike"]


def test_stall(tmp_path):
    run = make_run(tmp_path, steady(5))  # running, its pid (this test process) alive, no new lines
    m = Monitor(run.path, Thresholds(stall_s=0.2))
    m.run_forever(interval=0.1, max_s=0.6)
    assert rules(run) == ["stalled"]


def test_dead_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = make_run(tmp_path, steady(3), status="running", pid=proc.pid)
    watch_once(run)
    assert "process_died" in rules(run)


def test_memory_near_the_limit(tmp_path):
    hog = subprocess.Popen([sys.executable, "-c", "x = bytearray(300 * 2**20)\nimport time\ntime.sleep(30)"])
    try:
        time.sleep(1.0)
        run = make_run(tmp_path, steady(3), status="running", pid=hog.pid)
        Monitor(run.path, Thresholds(), total_memory=256 * 2**20).run_forever(interval=0.01, max_s=0.05)
    finally:
        hog.kill()
        hog.wait()
    assert "memory_high" in rules(run)


def test_real_training_process_that_diverges(tmp_path, mbpp_path):
    """A real `python -m core train` that blows up; the side-car reports the trainer's own divergence stop as
    non_finite_loss (before: process_died, so the divergence alert never fired for our trainer)."""
    run_dir = tmp_path / "train"
    job = subprocess.Popen([sys.executable, "-m", "core", "train", "--model", "hrm:tiny", "--steps", "8", "--batch", "2",
                            "--seq-len", "64", "--lr", "1e9", "--warmup", "0", "--data-path", str(mbpp_path),
                            "--run-dir", str(run_dir)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (run_dir / "manifest.json").exists() and job.poll() is None:
        time.sleep(0.05)
    monitor = subprocess.run([sys.executable, "-m", "core", "monitor", str(run_dir), "--interval", "0.2",
                              "--max-s", "120"], cwd=REPO, capture_output=True, text=True, timeout=180)
    job.wait()
    assert monitor.returncode == 0, monitor.stderr
    found = rules(RunDir(run_dir))
    assert "non_finite_loss" in found and "process_died" not in found
    assert (run_dir / "system.jsonl").read_text().count("\n") >= 1
    assert count_alerts([run_dir / "alerts.jsonl"]).get("critical", 0) >= 1


def test_a_restarted_monitor_does_not_write_an_alert_twice(tmp_path):
    run = make_run(tmp_path, steady(10) + [{"step": 11, "loss": math.nan, "grad_norm": 1.0}], status="done")
    watch_once(run)
    watch_once(run)
    assert rules(run) == ["non_finite_loss"]
    run.update_manifest(resumed=1)  # a resumed run that fails again is reported again
    watch_once(run)
    assert rules(run) == ["non_finite_loss", "non_finite_loss"]


def test_system_sample_has_cpu_and_memory():
    s = system_sample()
    assert 0 <= s["cpu_percent"] <= 100 and 0 < s["mem_percent"] <= 100


def test_store_side_car_watches_each_running_run_until_it_ends(tmp_path):
    store = tmp_path / "store"
    sick = RunDir(store / "sick")
    sick.claim({"kind": "train"}, {"kind": "train"})  # running, pid = this process
    JsonlAppender(sick.file("metrics.jsonl")).append({"step": 1, "loss": float("nan")})
    finished = RunDir(store / "finished")
    finished.claim({"kind": "eval"}, {"kind": "eval"})
    finished.update_manifest(status="done")
    proc = subprocess.Popen([sys.executable, "-m", "core", "monitor", "--store", str(store), "--interval", "0.1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (sick.file("alerts.jsonl").exists() and sick.file("alerts.jsonl").read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "timeout"
            time.sleep(0.1)
        assert rules(sick) == ["non_finite_loss"]
        late = RunDir(store / "late")  # a job started after the side-car
        late.claim({"kind": "train"}, {"kind": "train"})
        JsonlAppender(late.file("metrics.jsonl")).append({"step": 1, "loss": float("inf")})
        while not (late.file("alerts.jsonl").exists() and late.file("alerts.jsonl").read_text()):
            assert time.monotonic() < deadline, "the side-car did not pick up a new run"
            time.sleep(0.1)
        sick.update_manifest(status="done")
        time.sleep(0.5)
        size = sick.file("system.jsonl").stat().st_size
        time.sleep(0.5)
        assert sick.file("system.jsonl").stat().st_size == size  # no longer watched once it ended
        assert late.file("system.jsonl").stat().st_size > 0 and not finished.file("alerts.jsonl").exists()
        assert proc.poll() is None  # a side-car does not stop by itself
    finally:
        proc.terminate()
        proc.wait(10)


def test_store_side_car_survives_broken_run_directories(tmp_path):
    """Issue 16: a manifest.json holding a JSON list made `monitor --store` exit (and the container stop)."""
    store = tmp_path / "store"
    (store / "listed").mkdir(parents=True)
    (store / "listed" / "manifest.json").write_text("[1, 2, 3]\n")
    (store / "truncated").mkdir()
    (store / "truncated" / "manifest.json").write_text('{"kind": "train", "status": "runn')
    watched = RunDir(store / "watched")  # watched, then its manifest breaks under the side-car
    watched.claim({"kind": "train"}, {"kind": "train"})
    JsonlAppender(watched.file("metrics.jsonl")).append({"step": 1, "loss": float("nan")})
    proc = subprocess.Popen([sys.executable, "-m", "core", "monitor", "--store", str(store), "--interval", "0.1"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (watched.file("alerts.jsonl").exists() and watched.file("alerts.jsonl").read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "timeout"
            time.sleep(0.1)
        watched.file("manifest.json").write_text("[]")
        late = RunDir(store / "late")
        late.claim({"kind": "train"}, {"kind": "train"})
        JsonlAppender(late.file("metrics.jsonl")).append({"step": 1, "loss": float("inf")})
        while not (late.file("alerts.jsonl").exists() and late.file("alerts.jsonl").read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "timeout"
            time.sleep(0.1)
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "stopped watching watched" in err
