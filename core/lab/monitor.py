"""Reliability monitor: a side-car beside a job (`python -m core monitor RUN_DIR`).

Every interval it samples the machine (psutil: CPU%, memory%, temperatures where the OS
exposes them; NVIDIA GPU utilisation, memory and temperature through nvidia-ml-py where a GPU
is present) into system.jsonl, and checks the run for faults, each written once to
alerts.jsonl as {time, severity, rule, message, run}:

  non_finite_loss   a metrics line whose loss is NaN or infinite
  loss_spike        loss above spike_factor x the median of the previous `window` losses
  grad_explosion    grad_norm above grad_factor x the median of the previous `window` norms
  stalled           no new metrics line for stall_s seconds while the run is running
  process_died      the job's process is gone but its manifest still says running, or it
                    ended with status failed (a trainer's own divergence stop, manifest
                    failure "diverged", is non_finite_loss instead)
  memory_high       the job's RSS above mem_fraction of the machine's memory
  disk_full         less than disk_free_fraction of the run directory's disk free

It stops by itself once the run's manifest says it ended (after one last check).
watch_store (`python -m core monitor --store`) is the container's side-car: it gives every
running run in the store its own Monitor until that run ends, and never stops by itself.

What was reported survives a restart: each alerts.jsonl row carries its dedup key and the run's
life (the manifest's resume count), and a new Monitor starts from the keys of the current life
already in the file, so nothing is written twice. The store
side-car keeps STATE_FILE in the store (the runs it has seen to their end); a run that died or
failed while no side-car was up is checked once when one starts again, so its death is reported.
Sending alerts to people is publishing's job (core.publish.relay): both loops take an `on_tick`
callback, called with the alerts.jsonl files after every pass.
"""
from __future__ import annotations

import logging
import math
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.base.errors import GateError
from core.base.machine import now_iso
from core.base.store import (ENDED, JsonlAppender, RunDir, atomic_write_json, list_runs, pid_alive, read_json,
                             read_jsonl, store_root)

log = logging.getLogger(__name__)
STATE_FILE = "monitor_state.json"
DIED = ("failed", "interrupted")


@dataclass
class Thresholds:
    spike_factor: float = 3.0
    grad_factor: float = 10.0
    window: int = 20
    stall_s: float = 600.0
    mem_fraction: float = 0.9
    disk_free_fraction: float = 0.05


def system_sample() -> dict:
    row = {"time": now_iso(), "cpu_percent": psutil.cpu_percent(interval=None),
           "mem_percent": psutil.virtual_memory().percent}
    try:
        temps = psutil.sensors_temperatures()
        readings = [t.current for entries in temps.values() for t in entries if t.current]
        if readings:
            row["temp_c_max"] = max(readings)
    except (AttributeError, OSError):
        pass
    row.update(gpu_sample())
    return row


def gpu_sample() -> dict:
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library, no GPU: nothing to report
        return {}
    try:
        out = {}
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out[f"gpu{i}_util_percent"] = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
            out[f"gpu{i}_mem_percent"] = 100.0 * mem.used / mem.total
            out[f"gpu{i}_temp_c"] = pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
        return out
    finally:
        pynvml.nvmlShutdown()


class Monitor:
    def __init__(self, run_dir: str | Path, thresholds: Thresholds = Thresholds(), pid: int | None = None,
                 total_memory: int | None = None):
        self.run = RunDir(run_dir)
        self.t = thresholds
        self.pid = pid
        self.total_memory = total_memory or psutil.virtual_memory().total
        self.seen_lines = 0
        self.last_growth = time.monotonic()
        # keys reported by an earlier monitor of this life of the run (a restarted side-car): not written
        # again; a resumed run is a new life, whose faults are new
        self.life = self.run.manifest().get("resumed", 0) if self.run.exists() else 0
        self.fired: set[tuple] = {tuple(r["key"]) for r in read_jsonl(self.run.file("alerts.jsonl"))
                                  if isinstance(r.get("key"), list) and r.get("life", 0) == self.life}
        self.losses: list[float] = []
        self.norms: list[float] = []

    def _alert(self, out: JsonlAppender, key: tuple, severity: str, rule: str, message: str) -> None:
        if key in self.fired:
            return
        self.fired.add(key)
        row = {"time": now_iso(), "severity": severity, "rule": rule, "message": message, "run": self.run.run_id,
               "key": list(key), "life": self.life}
        out.append(row)
        log.warning("%s %s: %s", severity, rule, message)

    def check(self, alerts: JsonlAppender) -> None:
        rows = read_jsonl(self.run.file("metrics.jsonl"))
        if len(rows) > self.seen_lines:
            self.last_growth = time.monotonic()
        for row in rows[self.seen_lines:]:
            self._check_row(row, alerts)
        self.seen_lines = len(rows)
        manifest = self.run.manifest() if self.run.exists() else {}
        status = manifest.get("status")
        pid = self.pid or manifest.get("pid")
        if status == "running" and time.monotonic() - self.last_growth > self.t.stall_s:
            self._alert(alerts, ("stalled", self.seen_lines), "warning", "stalled",
                        f"no new metrics line for {time.monotonic() - self.last_growth:.0f} s (step {self.seen_lines})")
        if status == "running" and pid and not pid_alive(pid):
            self._alert(alerts, ("process_died",), "critical", "process_died",
                        f"the job's process {pid} is gone but the run was still running")
        if status == "failed" and manifest.get("failure") == "diverged":
            self._alert(alerts, ("non_finite_loss", "stop"), "critical", "non_finite_loss",
                        f"the trainer stopped on a non-finite loss: {manifest.get('error', 'no message')}")
        elif status == "failed":
            self._alert(alerts, ("process_died",), "critical", "process_died",
                        f"the job ended with status failed: {manifest.get('error', 'no message')}")
        if pid and pid_alive(pid):
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                rss = 0
            if rss > self.t.mem_fraction * self.total_memory:
                self._alert(alerts, ("memory_high",), "critical", "memory_high",
                            f"job RSS {rss / 2**30:.1f} GiB is above {100 * self.t.mem_fraction:.0f}% of "
                            f"{self.total_memory / 2**30:.1f} GiB")
        usage = shutil.disk_usage(self.run.path)
        if usage.free < self.t.disk_free_fraction * usage.total:
            self._alert(alerts, ("disk_full",), "critical", "disk_full",
                        f"only {usage.free / 2**30:.1f} GiB free on the run's disk")

    def _check_row(self, row: dict, alerts: JsonlAppender) -> None:
        step = row.get("step")
        loss = row.get("loss")
        if loss is not None and (not isinstance(loss, (int, float)) or not math.isfinite(loss)):
            self._alert(alerts, ("non_finite_loss", step), "critical", "non_finite_loss", f"loss is {loss} at step {step}")
        elif loss is not None:
            if len(self.losses) >= 5 and loss > self.t.spike_factor * statistics.median(self.losses[-self.t.window:]):
                self._alert(alerts, ("loss_spike", step), "warning", "loss_spike",
                            f"loss {loss:.4g} at step {step} is above {self.t.spike_factor:g}x the recent median "
                            f"{statistics.median(self.losses[-self.t.window:]):.4g}")
            self.losses.append(loss)
        norm = row.get("grad_norm")
        if isinstance(norm, (int, float)) and math.isfinite(norm):
            if len(self.norms) >= 5 and norm > self.t.grad_factor * statistics.median(self.norms[-self.t.window:]):
                self._alert(alerts, ("grad_explosion", step), "warning", "grad_explosion",
                            f"grad norm {norm:.4g} at step {step} is above {self.t.grad_factor:g}x the recent median")
            self.norms.append(norm)

    def run_forever(self, interval: float = 5.0, max_s: float | None = None, on_tick=None) -> int:
        """Watch until the run ends; returns the number of alerts reported (by this or an earlier monitor)."""
        started = time.monotonic()
        psutil.cpu_percent(interval=None)  # prime the CPU counter
        with JsonlAppender(self.run.file("alerts.jsonl")) as alerts, \
                JsonlAppender(self.run.file("system.jsonl")) as system:
            while True:
                system.append(system_sample())
                self.check(alerts)
                ended = self.run.exists() and self.run.manifest().get("status") in ENDED
                dead = self.run.exists() and self.run.status() == "interrupted"
                stop = ended or dead or (max_s is not None and time.monotonic() - started > max_s)
                if stop:
                    self.check(alerts)
                alerts.flush()
                if on_tick is not None:
                    on_tick([self.run.file("alerts.jsonl")])
                if stop:
                    return len(self.fired)
                time.sleep(interval)


def _incarnation(run: RunDir) -> str:
    """Which life of a run: a resumed run is watched again."""
    m = run.manifest()
    return f"{m.get('started_at', '')}#{m.get('resumed', 0)}"


def watch_store(store: str | Path | None, thresholds: Thresholds = Thresholds(), interval: float = 5.0,
                max_s: float | None = None, on_tick=None) -> int:
    """Monitor every run of the store while it runs, and once every run that died unwatched;
    returns the number of alerts reported for the runs it saw end."""
    root = Path(store) if store else store_root()
    state_path = root / STATE_FILE
    concluded: dict[str, str] = read_json(state_path).get("concluded", {}) if state_path.exists() else {}
    watched: dict[Path, tuple[Monitor, JsonlAppender, JsonlAppender]] = {}
    started, fired = time.monotonic(), 0
    psutil.cpu_percent(interval=None)

    def conclude(run: RunDir) -> None:
        concluded[run.run_id] = _incarnation(run)
        atomic_write_json(state_path, {"concluded": concluded})

    try:
        while max_s is None or time.monotonic() - started < max_s:
            sample = system_sample()
            runs = list_runs(root, readable_only=True)
            for run in runs:
                try:
                    if run.path in watched or concluded.get(run.run_id) == _incarnation(run):
                        continue
                    status = run.status()
                except (GateError, OSError):  # broken since it was listed
                    continue
                if status == "running":
                    log.info("watching %s", run.run_id)
                    watched[run.path] = (Monitor(run.path, thresholds), JsonlAppender(run.file("alerts.jsonl")),
                                         JsonlAppender(run.file("system.jsonl")))
                elif status in DIED:  # it died while no side-car watched it: check it once now
                    log.info("%s ended %s while unwatched: checking it once", run.run_id, status)
                    mon = Monitor(run.path, thresholds)
                    with JsonlAppender(run.file("alerts.jsonl")) as alerts:
                        mon.check(alerts)
                    fired += len(mon.fired)
                    conclude(run)
                else:  # ended cleanly before we looked: nothing to report
                    conclude(run)
            for path, (mon, alerts, system) in list(watched.items()):
                try:
                    system.append(sample)
                    mon.check(alerts)
                    alerts.flush()
                    over = mon.run.manifest().get("status") in ENDED or mon.run.status() == "interrupted"
                    if over:
                        mon.check(alerts)
                except (GateError, OSError) as exc:  # a broken run stops its own watch, never the side-car
                    log.warning("stopped watching %s: %s", path.name, exc)
                    over = True
                if over:
                    fired += len(mon.fired)
                    alerts.close()
                    system.close()
                    del watched[path]
                    try:
                        conclude(mon.run)
                    except (GateError, OSError):  # broken: it is listed as unreadable, not re-checked
                        pass
            if on_tick is not None:
                on_tick([r.file("alerts.jsonl") for r in runs if r.file("alerts.jsonl").exists()])
            time.sleep(interval)
    finally:
        for mon, alerts, system in watched.values():
            fired += len(mon.fired)
            alerts.close()
            system.close()
    return fired


def count_alerts(paths) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in paths:
        for row in read_jsonl(Path(p)):
            counts[row.get("severity", "unknown")] = counts.get(row.get("severity", "unknown"), 0) + 1
    return counts

