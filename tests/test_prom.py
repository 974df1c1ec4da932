"""A real Prometheus (Debian's package) scrapes our exporter on loopback; we read our values back
through its HTTP query API."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from core.base.store import JsonlAppender, RunDir, atomic_write_json
from tests.conftest import REPO

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def query(base: str, q: str) -> list:
    with urllib.request.urlopen(f"{base}/api/v1/query?query={urllib.parse.quote(q)}", timeout=5) as resp:
        return json.loads(resp.read())["data"]["result"]


@pytest.fixture
def store(tmp_path):
    run = RunDir(tmp_path / "store" / "hrm-eval")
    run.claim({"kind": "eval"}, {"kind": "eval", "model": "hrm:27m"})
    run.update_manifest(status="done")
    atomic_write_json(run.file("run_summary.json"), {"model": "hrm:27m", "pass_at_k": {"1": 0.125, "10": 0.5},
                                                     "per_task": {"11": {"n": 10, "c": 1}}})
    with JsonlAppender(run.file("alerts.jsonl")) as out:
        out.append({"severity": "critical", "rule": "disk_full", "message": "x", "run": "hrm-eval"})
        out.append({"severity": "warning", "rule": "loss_spike", "message": "y", "run": "hrm-eval"})
        out.append({"severity": "warning", "rule": "loss_spike", "message": "z", "run": "hrm-eval"})
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"models": {"hrm:27m": {"latency_ms": 812.5, "throughput_tok_s": 61.0,
                                                        "peak_train_rss_mb": 3000.0, "params_total": 35651584,
                                                        "params_nonembedding": 27262976}}}))
    return tmp_path / "store", bench


@pytest.mark.skipif(PROMETHEUS is None and not os.environ.get("CI"),
                    reason="prometheus is installed by `make test` (apt-get, as root)")
def test_prometheus_scrapes_our_exporter(store, tmp_path):
    assert PROMETHEUS, "CI must have prometheus: `make test` installs it with apt-get"
    store_dir, bench = store
    exporter_port, prom_port = free_port(), free_port()
    exporter = subprocess.Popen([sys.executable, "-m", "core", "prom-exporter", "--port", str(exporter_port),
                                 "--store", str(store_dir), "--bench", str(bench), "--pipeline", "--max-s", "120"],
                                cwd=REPO)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hrm-gate\n"
                      f"    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{prom_port}"
    try:
        wait_http(f"http://127.0.0.1:{exporter_port}/metrics")
        wait_http(f"{base}/-/ready")
        deadline = time.monotonic() + 60
        result = []
        while time.monotonic() < deadline and not result:
            result = query(base, 'hrm_gate_pass_at_k{run="hrm-eval",k="1"}')
            time.sleep(0.5)
        assert result and float(result[0]["value"][1]) == 0.125
        assert result[0]["metric"]["model"] == "hrm:27m"
        assert float(query(base, 'hrm_gate_pass_at_k{k="10"}')[0]["value"][1]) == 0.5
        assert float(query(base, 'hrm_gate_latency_ms{model="hrm:27m"}')[0]["value"][1]) == 812.5
        assert float(query(base, 'sum(hrm_gate_alerts_total{severity="warning"})')[0]["value"][1]) == 2
        assert 0 <= float(query(base, "hrm_gate_cpu_percent")[0]["value"][1]) <= 100
        assert not any("task" in k for r in query(base, '{__name__=~"hrm_gate_.*"}') for k in r["metric"])
    finally:
        prom.terminate()
        exporter.terminate()
        prom.wait(timeout=30)
        exporter.wait(timeout=30)


def test_exporter_text_without_prometheus(store):
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from core.publish.prom import GateCollector
    store_dir, bench = store
    reg = CollectorRegistry()
    reg.register(GateCollector(store_dir, [bench], pipelines=[]))
    text = generate_latest(reg).decode()
    assert 'hrm_gate_pass_at_k{k="1",model="hrm:27m",run="hrm-eval"} 0.125' in text
    assert f'hrm_gate_params{{kind="non_embedding",model="hrm:27m",source="{bench}"}} 2.7262976e+07' in text
    assert 'hrm_gate_runs{status="done"} 1.0' in text
    # alert counts are counters, one series per severity and rule
    assert "# TYPE hrm_gate_alerts_total counter" in text or "# TYPE hrm_gate_alerts counter" in text
    assert 'hrm_gate_alerts_total{rule="loss_spike",severity="warning"} 2.0' in text


def collect_text(**kw) -> str:
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from core.publish.prom import GateCollector
    reg = CollectorRegistry()
    reg.register(GateCollector(**kw))
    return generate_latest(reg).decode()


def make_pipeline(tmp_path, verdict="FAILURE", p=0.2, latency=123.0):
    out = tmp_path / "pipe"
    out.mkdir()
    atomic_write_json(out / "stats.json", {"verdict": verdict, "alpha": 0.05, "pass_at_1": {
        "delta": 0.03, "p_value": p, "p_value_decision": p, "mde": 0.27}})
    atomic_write_json(out / "bench.json", {"models": {"hrm:27m": {"latency_ms": latency, "throughput_tok_s": 50.0}}})
    train = RunDir(out / "train")
    train.claim({"kind": "train"}, {"kind": "train"})  # running, pid = this process
    with JsonlAppender(train.file("metrics.jsonl")) as m:
        m.append({"step": 1, "loss": 3.0, "tokens_per_s": 900.0})
        m.append({"step": 2, "loss": float("nan"), "tokens_per_s": 950.0})
    with JsonlAppender(train.file("alerts.jsonl")) as a:
        a.append({"severity": "critical", "rule": "non_finite_loss", "message": "nan", "run": "train"})
    return out


def test_the_exporter_reads_the_pipelines_own_bench_not_the_committed_one(tmp_path):
    """Before: results/bench.json (committed, from another machine and time) was exported beside the pipeline's own."""
    committed = json.loads((REPO / "results" / "bench.json").read_text())["models"]
    pipe = make_pipeline(tmp_path, latency=123.0)
    text = collect_text(store=tmp_path / "empty-store", pipelines=[pipe])
    latency = [line for line in text.splitlines() if line.startswith("hrm_gate_latency_ms{")]
    assert latency == ['hrm_gate_latency_ms{model="hrm:27m",source="pipeline:pipe"} 123.0']
    assert all(f'model="{m}"' not in "\n".join(latency) for m in committed if m != "hrm:27m")


def test_verdict_p_delta_mde_step_and_heartbeat(tmp_path):
    pipe = make_pipeline(tmp_path)
    before = time.time()
    text = collect_text(store=tmp_path / "empty-store", pipelines=[pipe], stall_s=3)
    assert 'hrm_gate_verdict{pipeline="pipe",verdict="FAILURE"} 1.0' in text
    assert 'hrm_gate_verdict{pipeline="pipe",verdict="SUCCESS"} 0.0' in text
    assert 'hrm_gate_p_value{pipeline="pipe"} 0.2' in text and 'hrm_gate_alpha{pipeline="pipe"} 0.05' in text
    assert 'hrm_gate_delta_pass_at_1{pipeline="pipe"} 0.03' in text
    assert 'hrm_gate_mde_pass_at_1{pipeline="pipe"} 0.27' in text
    assert 'hrm_gate_run_step{kind="train",run="train"} 2.0' in text
    assert 'hrm_gate_run_tokens_per_s{kind="train",run="train"} 950.0' in text
    assert 'hrm_gate_run_diverged{kind="train",run="train"} 1.0' in text
    assert "hrm_gate_stall_seconds 3.0" in text
    beat = next(line for line in text.splitlines() if line.startswith("hrm_gate_run_heartbeat_timestamp_seconds{"))
    assert before - 60 < float(beat.split()[-1]) <= time.time()


RULES = REPO / "deploy" / "prometheus" / "rules.yml"
PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None and not os.environ.get("CI"), reason="promtool comes with `make sysdeps`")
def test_promtool_checks_the_shipped_rules(tmp_path):
    ok = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert ok.returncode == 0 and "SUCCESS: 4 rules found" in ok.stdout, ok.stdout + ok.stderr
    names = {line.split(":", 1)[1].strip() for line in RULES.read_text().splitlines() if "- alert:" in line}
    assert names == {"HrmGateRunStalled", "HrmGateVerdictFailure", "HrmGateInconclusive", "HrmGateTrainingDiverged"}
    broken = tmp_path / "rules.yml"
    broken.write_text(RULES.read_text().replace("hrm_gate_run_diverged == 1", "hrm_gate_run_diverged =="))
    bad = subprocess.run([PROMTOOL, "check", "rules", str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0


def alerts_firing(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5) as resp:
        return [a for a in json.loads(resp.read())["data"]["alerts"] if a["state"] == "firing"]


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None and not os.environ.get("CI"),
                    reason="prometheus is installed by `make test` (apt-get, as root)")
def test_prometheus_fires_the_stalled_run_rule_when_training_is_sigstopped(tmp_path, mbpp_path):
    """A real training run, a real Prometheus evaluating the shipped rules.yml unchanged; the exporter's
    --stall-s 3 sets the threshold. SIGSTOP freezes the trainer: the rule fires within seconds."""
    assert PROMETHEUS, "CI must have prometheus: `make test` installs it with apt-get"
    store = tmp_path / "store"
    run_dir = store / "train"
    exporter_port, prom_port = free_port(), free_port()
    job = subprocess.Popen([sys.executable, "-m", "core", "train", "--model", "hrm:tiny", "--steps", "100000",
                            "--batch", "2", "--seq-len", "32", "--threads", "1", "--checkpoint-every", "0",
                            "--data-path", str(mbpp_path), "--run-dir", str(run_dir)], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exporter = subprocess.Popen([sys.executable, "-m", "core", "prom-exporter", "--port", str(exporter_port),
                                 "--store", str(store), "--pipeline", "--stall-s", "3", "--max-s", "120"], cwd=REPO)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{RULES}']\n"
                      f"scrape_configs:\n  - job_name: hrm-gate\n"
                      f"    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n")
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{prom_port}"
    try:
        wait_http(f"http://127.0.0.1:{exporter_port}/metrics")
        wait_http(f"{base}/-/ready")
        deadline = time.monotonic() + 90
        step = []
        while not step or float(step[0]["value"][1]) < 3:  # training, and Prometheus has seen it
            assert time.monotonic() < deadline and job.poll() is None, "training did not get going"
            step = query(base, 'hrm_gate_run_step{run="train"}')
            time.sleep(0.5)
        assert not [a for a in alerts_firing(base) if a["labels"]["alertname"] == "HrmGateRunStalled"]
        os.kill(job.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        fired = []
        while not fired:
            assert time.monotonic() - stopped < 30, "the stalled-run rule did not fire"
            fired = [a for a in alerts_firing(base) if a["labels"]["alertname"] == "HrmGateRunStalled"]
            time.sleep(0.5)
        print(f"stalled-run rule fired {time.monotonic() - stopped:.1f} s after SIGSTOP")
        assert fired[0]["labels"]["run"] == "train" and fired[0]["labels"]["severity"] == "warning"
    finally:
        os.kill(job.pid, signal.SIGCONT)
        job.kill()
        for proc in (prom, exporter):
            proc.terminate()
        for proc in (job, prom, exporter):
            proc.wait(timeout=30)
