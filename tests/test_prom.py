"""A real Prometheus (Debian's package) scrapes our exporter on loopback; we read our values back
through its HTTP query API."""
import json
import os
import shutil
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
                                 "--store", str(store_dir), "--bench", str(bench), "--max-s", "120"], cwd=REPO)
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
        assert float(query(base, 'hrm_gate_alerts{severity="warning"}')[0]["value"][1]) == 2
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
    reg.register(GateCollector(store_dir, [bench]))
    text = generate_latest(reg).decode()
    assert 'hrm_gate_pass_at_k{k="1",model="hrm:27m",run="hrm-eval"} 0.125' in text
    assert 'hrm_gate_params{kind="non_embedding",model="hrm:27m"} 2.7262976e+07' in text
    assert 'hrm_gate_runs{status="done"} 1.0' in text
