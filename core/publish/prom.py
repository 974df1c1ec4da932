"""Prometheus exporter: `python -m core prom-exporter --port P` (loopback unless --host says otherwise).

Every scrape reads the run store afresh and exports gauges (no task ids as labels, so the
series count stays bounded by the number of runs):

  hrm_gate_pass_at_k{run, model, k}                   pass@k of each eval run
  hrm_gate_latency_ms{model}, hrm_gate_throughput_tok_s{model},
  hrm_gate_peak_train_rss_mb{model}, hrm_gate_params{model, kind}   from bench.json
  hrm_gate_cpu_percent, hrm_gate_mem_percent                         this machine, now
  hrm_gate_alerts{severity}                                          alerts.jsonl lines over all runs
  hrm_gate_runs{status}                                              runs by status
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from core.lab.monitor import count_alerts
from core.base.store import REPO_ROOT, list_runs, read_json, store_root

log = logging.getLogger(__name__)


class GateCollector:
    def __init__(self, store: Path | None = None, bench_files: list[Path] | None = None):
        self.store = store
        self.bench_files = bench_files

    def _bench_files(self, runs) -> list[Path]:
        if self.bench_files is not None:
            return self.bench_files
        files = [REPO_ROOT / "results" / "bench.json"] + [r.file("bench.json") for r in runs]
        return [f for f in files if f.exists()]

    def collect(self):
        runs = list_runs(self.store or store_root())
        pass_at_k = GaugeMetricFamily("hrm_gate_pass_at_k", "pass@k of an eval run", labels=["run", "model", "k"])
        statuses: dict[str, int] = {}
        for r in runs:
            status = r.status() if r.readable() else "unreadable"
            statuses[status] = statuses.get(status, 0) + 1
            if status == "unreadable":
                continue
            summary_path = r.file("run_summary.json")
            if summary_path.exists():
                summary = read_json(summary_path)
                for k, v in summary.get("pass_at_k", {}).items():
                    pass_at_k.add_metric([r.run_id, str(summary.get("model", "")), k], v)
        yield pass_at_k
        runs_g = GaugeMetricFamily("hrm_gate_runs", "runs in the store by status", labels=["status"])
        for status, n in statuses.items():
            runs_g.add_metric([status], n)
        yield runs_g
        gauges = {name: GaugeMetricFamily(f"hrm_gate_{name}", help_, labels=["model"]) for name, help_ in (
            ("latency_ms", "512-token prefill latency at batch 1, median (bench.json)"),
            ("throughput_tok_s", "generated tokens/s at batch 8, 256 new tokens (bench.json)"),
            ("peak_train_rss_mb", "peak RSS of the training loop (bench.json)"))}
        params = GaugeMetricFamily("hrm_gate_params", "parameters (bench.json)", labels=["model", "kind"])
        for f in self._bench_files(runs):
            for model, fig in read_json(f).get("models", {}).items():
                for name, g in gauges.items():
                    if fig.get(name) is not None:
                        g.add_metric([model], fig[name])
                params.add_metric([model, "total"], fig.get("params_total", 0))
                params.add_metric([model, "non_embedding"], fig.get("params_nonembedding", 0))
        yield from gauges.values()
        yield params
        yield GaugeMetricFamily("hrm_gate_cpu_percent", "CPU utilisation of this machine", value=psutil.cpu_percent())
        yield GaugeMetricFamily("hrm_gate_mem_percent", "memory utilisation of this machine",
                                value=psutil.virtual_memory().percent)
        alerts = GaugeMetricFamily("hrm_gate_alerts", "alerts written by the reliability monitor", labels=["severity"])
        for severity, n in count_alerts([r.file("alerts.jsonl") for r in runs if r.file("alerts.jsonl").exists()]).items():
            alerts.add_metric([severity], n)
        yield alerts


def serve(port: int, host: str = "127.0.0.1", store: Path | None = None, bench_files=None, max_s: float | None = None):
    from prometheus_client import start_http_server
    registry = CollectorRegistry()
    registry.register(GateCollector(store, bench_files))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("exporting metrics on http://%s:%d/metrics", host, port)
    started = time.monotonic()
    try:
        while max_s is None or time.monotonic() - started < max_s:
            time.sleep(0.5)
    finally:
        server.shutdown()
