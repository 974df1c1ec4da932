"""Prometheus exporter: `python -m core prom-exporter --port P` (loopback unless --host says otherwise).

Every scrape reads the run store and the pipelines' out_dirs afresh (no task ids as labels, so the
series count stays bounded by the number of runs and pipelines):

  hrm_gate_pass_at_k{run, model, k}                   pass@k of each eval run
  hrm_gate_verdict{pipeline, verdict}                 1 for the pipeline's verdict, 0 for the others
  hrm_gate_p_value{pipeline}                          pass@1's decision p (stats.json)
  hrm_gate_alpha{pipeline}, hrm_gate_delta_pass_at_1{pipeline}, hrm_gate_mde_pass_at_1{pipeline}
  hrm_gate_run_step{run, kind}, hrm_gate_run_tokens_per_s{run, kind}   a training run's last metrics line
  hrm_gate_run_heartbeat_timestamp_seconds{run, kind} a running run's last write (any of its files but
                                                      the monitor's own), Unix seconds; only while it runs
  hrm_gate_run_diverged{run, kind}                    1 when the run's loss went non-finite (the monitor's
                                                      non_finite_loss alert), else 0; runs with metrics only
  hrm_gate_stall_seconds                              the stall threshold the rules compare against
  hrm_gate_latency_ms{model, source}, hrm_gate_throughput_tok_s{model, source},
  hrm_gate_peak_train_rss_mb{model, source}, hrm_gate_params{model, kind, source}
                                                      from the pipelines' own bench.json and the store's
                                                      bench runs (source names which); never the
                                                      committed results/bench.json unless --bench says so
  hrm_gate_cpu_percent, hrm_gate_mem_percent          this machine, now
  hrm_gate_alerts_total{severity, rule}               alerts.jsonl lines over all runs (a counter)
  hrm_gate_runs{status}                               runs by status

deploy/prometheus/rules.yml holds the alert rules written on these (promtool-checked in the tests).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from core.base.store import REPO_ROOT, RunDir, list_runs, read_json, read_jsonl, store_root
from core.lab.monitor import Thresholds

log = logging.getLogger(__name__)
PIPELINES_DIR = REPO_ROOT / "cache" / "pipeline"
VERDICTS = ("SUCCESS", "PARTIAL", "FAILURE")


MONITOR_FILES = ("system.jsonl", "alerts.jsonl", "alerts_sent.json")  # written by the side-car, not the job


def last_write(run: RunDir) -> float:
    """When the job last wrote into its run directory (the side-car's files do not count)."""
    return max((f.stat().st_mtime for f in run.path.iterdir() if f.is_file() and f.name not in MONITOR_FILES),
               default=0.0)


def _last_row(path: Path) -> dict:
    rows = read_jsonl(path) if path.exists() else []
    return rows[-1] if rows else {}


class GateCollector:
    def __init__(self, store: Path | None = None, bench_files: list[Path] | None = None,
                 pipelines: list[Path] | None = None, stall_s: float = Thresholds().stall_s):
        self.store = store
        self.bench_files = bench_files
        self.pipelines = pipelines
        self.stall_s = stall_s

    def _pipelines(self) -> list[Path]:
        if self.pipelines is not None:
            return [Path(p) for p in self.pipelines]
        return sorted(p for p in PIPELINES_DIR.glob("*") if p.is_dir()) if PIPELINES_DIR.is_dir() else []

    def _runs(self, pipelines) -> list[RunDir]:
        runs = list_runs(self.store or store_root())
        for p in pipelines:
            runs += [RunDir(d) for d in sorted(p.iterdir()) if (d / "manifest.json").exists()]
        return runs

    def _bench_files(self, runs, pipelines) -> list[tuple[str, Path]]:
        if self.bench_files is not None:
            return [(str(f), Path(f)) for f in self.bench_files]
        files = [(f"pipeline:{p.name}", p / "bench.json") for p in pipelines]
        files += [(f"run:{r.run_id}", r.file("bench.json")) for r in runs]
        return [(source, f) for source, f in files if f.exists()]

    def collect(self):
        pipelines = self._pipelines()
        runs = self._runs(pipelines)
        yield from self._runs_metrics(runs)
        yield from self._gate_metrics(pipelines)
        yield from self._bench_metrics(runs, pipelines)
        yield GaugeMetricFamily("hrm_gate_cpu_percent", "CPU utilisation of this machine", value=psutil.cpu_percent())
        yield GaugeMetricFamily("hrm_gate_mem_percent", "memory utilisation of this machine",
                                value=psutil.virtual_memory().percent)
        alerts = CounterMetricFamily("hrm_gate_alerts", "alerts written by the reliability monitor",
                                     labels=["severity", "rule"])
        counts: dict[tuple[str, str], int] = {}
        for r in runs:
            for row in read_jsonl(r.file("alerts.jsonl")) if r.file("alerts.jsonl").exists() else []:
                key = (str(row.get("severity", "unknown")), str(row.get("rule", "unknown")))
                counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            alerts.add_metric(list(key), n)
        yield alerts

    def _runs_metrics(self, runs):
        pass_at_k = GaugeMetricFamily("hrm_gate_pass_at_k", "pass@k of an eval run", labels=["run", "model", "k"])
        step = GaugeMetricFamily("hrm_gate_run_step", "a run's last training step", labels=["run", "kind"])
        tok_s = GaugeMetricFamily("hrm_gate_run_tokens_per_s", "a run's last training tokens/s", labels=["run", "kind"])
        diverged = GaugeMetricFamily("hrm_gate_run_diverged", "1 when the run's loss went non-finite",
                                     labels=["run", "kind"])
        beat = GaugeMetricFamily("hrm_gate_run_heartbeat_timestamp_seconds",
                                 "a running run's last write into its directory, Unix seconds",
                                 labels=["run", "kind"])
        statuses: dict[str, int] = {}
        for r in runs:
            status = r.status() if r.readable() else "unreadable"
            statuses[status] = statuses.get(status, 0) + 1
            if status == "unreadable":
                continue
            kind = str(r.manifest().get("kind", ""))
            summary_path = r.file("run_summary.json")
            if summary_path.exists():
                summary = read_json(summary_path)
                for k, v in summary.get("pass_at_k", {}).items():
                    pass_at_k.add_metric([r.run_id, str(summary.get("model", "")), k], v)
            metrics = r.file("metrics.jsonl")
            last = _last_row(metrics)
            if isinstance(last.get("step"), (int, float)):
                step.add_metric([r.run_id, kind], last["step"])
            if isinstance(last.get("tokens_per_s"), (int, float)):
                tok_s.add_metric([r.run_id, kind], last["tokens_per_s"])
            if metrics.exists():
                rows = read_jsonl(r.file("alerts.jsonl")) if r.file("alerts.jsonl").exists() else []
                diverged.add_metric([r.run_id, kind], float(any(a.get("rule") == "non_finite_loss" for a in rows)))
            if status == "running":
                beat.add_metric([r.run_id, kind], last_write(r))
        yield from (pass_at_k, step, tok_s, diverged, beat)
        yield GaugeMetricFamily("hrm_gate_stall_seconds", "seconds without a write that count as a stalled run",
                                value=self.stall_s)
        runs_g = GaugeMetricFamily("hrm_gate_runs", "runs in the store by status", labels=["status"])
        for status, n in statuses.items():
            runs_g.add_metric([status], n)
        yield runs_g

    def _gate_metrics(self, pipelines):
        verdict = GaugeMetricFamily("hrm_gate_verdict", "1 for the pipeline's verdict", labels=["pipeline", "verdict"])
        figures = {name: GaugeMetricFamily(f"hrm_gate_{name}", help_, labels=["pipeline"]) for name, help_ in (
            ("p_value", "pass@1's decision p-value (stats.json)"),
            ("alpha", "the gate's significance level"),
            ("delta_pass_at_1", "pass@1 candidate minus baseline (fraction)"),
            ("mde_pass_at_1", "minimum detectable pass@1 difference at 80% power (fraction)"))}
        for p in pipelines:
            if not (p / "stats.json").exists():
                continue
            stats = read_json(p / "stats.json")
            if stats.get("verdict"):
                for v in VERDICTS:
                    verdict.add_metric([p.name, v], float(stats["verdict"] == v))
            p1 = stats.get("pass_at_1") or {}
            values = {"p_value": p1.get("p_value_decision", p1.get("p_value")), "alpha": stats.get("alpha"),
                      "delta_pass_at_1": p1.get("delta"), "mde_pass_at_1": p1.get("mde")}
            for name, value in values.items():
                if isinstance(value, (int, float)):
                    figures[name].add_metric([p.name], value)
        yield verdict
        yield from figures.values()

    def _bench_metrics(self, runs, pipelines):
        gauges = {name: GaugeMetricFamily(f"hrm_gate_{name}", help_, labels=["model", "source"]) for name, help_ in (
            ("latency_ms", "512-token prefill latency at batch 1, median (bench.json)"),
            ("throughput_tok_s", "generated tokens/s at batch 8, 256 new tokens (bench.json)"),
            ("peak_train_rss_mb", "peak RSS of the training loop (bench.json)"))}
        params = GaugeMetricFamily("hrm_gate_params", "parameters (bench.json)", labels=["model", "kind", "source"])
        for source, f in self._bench_files(runs, pipelines):
            for model, fig in read_json(f).get("models", {}).items():
                for name, g in gauges.items():
                    if fig.get(name) is not None:
                        g.add_metric([model, source], fig[name])
                params.add_metric([model, "total", source], fig.get("params_total", 0))
                params.add_metric([model, "non_embedding", source], fig.get("params_nonembedding", 0))
        yield from gauges.values()
        yield params


def serve(port: int, host: str = "127.0.0.1", store: Path | None = None, bench_files=None, max_s: float | None = None,
          pipelines=None, stall_s: float = Thresholds().stall_s):
    from prometheus_client import start_http_server
    registry = CollectorRegistry()
    registry.register(GateCollector(store, bench_files, pipelines, stall_s))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("exporting metrics on http://%s:%d/metrics", host, port)
    started = time.monotonic()
    try:
        while max_s is None or time.monotonic() - started < max_s:
            time.sleep(0.5)
    finally:
        server.shutdown()
