"""Live W&B runs: a follower process beside a train or eval job logs its run directory as it is written.

`python -m core wandb-follow RUN_DIR --pid PID` creates the W&B run as soon as the job (process PID)
claims RUN_DIR, then every `poll_s` logs what the job appended since:

  metrics.jsonl   loss, lr, grad_norm, val_loss, tokens_per_s... against `train/step`
  samples.jsonl   `eval/samples_generated` as generation goes, against `system/elapsed_s`
  results.jsonl   the running pass@k over the tasks scored so far, against `eval/samples_scored`
  alerts.jsonl    the monitor's alerts: `alerts/critical`, `alerts/warning` counts as they come, and an
                  `alerts` table at the end
  (the machine)   core.lab.monitor.system_sample: `system/cpu_percent`, `system/mem_percent`, and
                  `system/temp_c_max`, `system/gpu0_util_percent`... where the machine exposes them,
                  against `system/elapsed_s`

It is a process of its own so that a killed job (kill -9 included) is still reported: its process
gone while the manifest says `running` ends the W&B run as crashed (summary `status` "crashed", exit
code 1). A job that ends by itself ends the W&B run with its run_summary.json, per-task table and
files (exit code 0 when done, 1 when failed or cancelled). RUN_DIR/wandb_run.json says where the
run went. The job itself (lab, evaluation) never imports W&B or this module.
"""
from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from pathlib import Path

from core.base.store import ENDED, RunDir, atomic_write_json, jsonl_rows, pid_alive, read_json
from core.evaluation.passk import pass_at_k_table
from core.publish.tracking import PROJECT, files_artifact, flat_summary, per_task_table, short_model, wandb_mode

log = logging.getLogger(__name__)
TAG_MAX = 64  # W&B refuses longer tags
INFO_FILE = "wandb_run.json"


def run_tags(manifest: dict, extra=()) -> list[str]:
    """model, dataset and protocol tags of a run, from its manifest."""
    ds = manifest.get("dataset") or {}
    p = manifest.get("protocol") or {}
    if manifest.get("kind") == "train":
        protocol = f"protocol:{p.get('prompt')} steps={p.get('steps')} lr={p.get('lr')}"
    else:
        protocol = f"protocol:{p.get('prompt')} n={p.get('n')} T={p.get('temperature')}"
    tags = [f"model:{short_model(manifest.get('model'))}", f"dataset:{ds.get('name')}/{ds.get('split')}",
            protocol, f"kind:{manifest.get('kind')}", *extra]
    return list(dict.fromkeys(t[:TAG_MAX] for t in tags))


class _Tail:
    """The complete lines appended to a JSONL file since the last read (a rewritten file is read again)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.inode = path, 0, None
        self.restarted = False  # the last read started the file over

    def new_rows(self) -> list[dict]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        self.restarted = st.st_ino != self.inode or st.st_size < self.offset
        if self.restarted:
            self.inode, self.offset = st.st_ino, 0
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
        self.offset += end
        return [row for _, row in jsonl_rows(chunk[:end].decode("utf-8", "replace").splitlines(), self.path)]


class Follower:
    def __init__(self, run_dir: str | Path, pid: int, setting: str = "auto", group: str | None = None,
                 name: str | None = None, tags=(), poll_s: float = 1.0, system_every_s: float = 5.0,
                 wait_claim_s: float = 3600.0):
        self.run = RunDir(run_dir)
        self.pid, self.setting, self.group, self.name, self.tags = pid, setting, group, name, list(tags)
        self.poll_s, self.system_every_s, self.wait_claim_s = poll_s, system_every_s, wait_claim_s
        self.metrics, self.samples, self.results, self.alerts = (
            _Tail(self.run.file(n)) for n in ("metrics.jsonl", "samples.jsonl", "results.jsonl", "alerts.jsonl"))
        self.generated = 0
        self.last_step = 0
        self.scored: dict[tuple, bool] = {}
        self.alert_rows: list[dict] = []
        self.started = time.monotonic()
        self.next_system = 0.0

    # ------------------------------------------------------------ the job's state
    def _claimed(self) -> dict | None:
        """The manifest once PID has claimed the directory (a leftover from an earlier attempt is not it)."""
        if not self.run.file("manifest.json").exists():
            return None
        m = self.run.manifest()
        return m if m.get("pid") == self.pid else None

    def _ended(self) -> str | None:
        """None while the job runs; else its final status, `crashed` when its process is gone mid-run."""
        m = self.run.manifest()
        if m.get("pid") == self.pid and m.get("status") in ENDED:
            return m["status"]
        return None if pid_alive(self.pid) else "crashed"

    # ------------------------------------------------------------ following
    def follow(self) -> dict | None:
        """Block until the job ends; returns {mode, id, dir, url, name, group, status} or None (off, or no run)."""
        mode = wandb_mode(self.setting)
        if mode is None:
            return None
        deadline = time.monotonic() + self.wait_claim_s
        manifest = self._claimed()
        while manifest is None:
            if not pid_alive(self.pid) or time.monotonic() > deadline:
                log.info("%s was never claimed by process %d: no W&B run", self.run.path, self.pid)
                return None
            time.sleep(self.poll_s / 4)
            manifest = self._claimed()
        import wandb
        from core.lab.monitor import system_sample
        kind = manifest.get("kind", "run")
        wb = wandb.init(project=PROJECT, mode=mode, dir=str(self.run.path), config=manifest, job_type=kind,
                        name=self.name or f"{kind} {short_model(manifest.get('model'))}", group=self.group,
                        tags=run_tags(manifest, self.tags), reinit="create_new",
                        settings=wandb.Settings(silent=True, console="off"))
        for x, family in (("train/step", ("loss", "lr", "grad_norm", "val_loss", "tokens_per_s", "seq_tokens_per_s",
                                          "rss_mb", "cuda_peak_mb")),
                          ("eval/samples_scored", ("pass_at_k/*", "eval/tasks_scored")),
                          ("system/elapsed_s", ("system/*", "alerts/*", "eval/samples_generated"))):
            wb.define_metric(x)
            for key in family:
                wb.define_metric(key, step_metric=x)
        info = {"mode": mode, "id": wb.id, "dir": wb.dir, "url": wb.url if mode == "online" else None,
                "name": wb.name, "group": self.group, "status": "running"}
        atomic_write_json(self.run.file(INFO_FILE), info)
        status, exit_code = "follower failed", 1
        try:
            system_sample()  # primes psutil's CPU counter: the first sample is a second later
            self.next_system = time.monotonic() + min(1.0, self.system_every_s)
            while True:
                ended = self._ended()  # read before draining, so the last lines are logged too
                self._drain(wb, manifest)
                if time.monotonic() >= self.next_system or ended:
                    self.next_system = time.monotonic() + self.system_every_s
                    sample = {f"system/{k}": v for k, v in system_sample().items() if isinstance(v, (int, float))}
                    wb.log({"system/elapsed_s": self._elapsed(), **sample})
                if ended:
                    status = ended
                    break
                time.sleep(self.poll_s)
            self._close(wb, status)
            exit_code = 0 if status == "done" else 1
        finally:
            wb.summary["status"] = status
            wb.finish(exit_code=exit_code)
        if mode == "offline":
            from core.publish.tracking import wait_for_exit_record
            wait_for_exit_record(self.run.path, info["id"])
        info["status"] = status
        atomic_write_json(self.run.file(INFO_FILE), info)
        return info

    def _drain(self, wb, manifest: dict) -> None:
        for row in self.metrics.new_rows():
            step = row.get("step")
            if not isinstance(step, int) or step <= self.last_step:  # a resumed trainer repeats no logged step
                continue
            self.last_step = step
            wb.log({"train/step": step, **{k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))
                                           and not isinstance(v, bool)}})
        generated = len(self.samples.new_rows())
        if generated:
            self.generated = generated + (0 if self.samples.restarted else self.generated)
            wb.log({"system/elapsed_s": self._elapsed(), "eval/samples_generated": self.generated})
        new = [r for r in self.results.new_rows() if (r.get("task_id"), r.get("sample_id")) not in self.scored]
        for r in new:
            self.scored[(r.get("task_id"), r.get("sample_id"))] = bool(r.get("passed"))
        if new:
            p = manifest.get("protocol") or {}
            counts: dict = defaultdict(lambda: [0, 0])
            for (task, _), passed in self.scored.items():
                counts[task][0] += 1
                counts[task][1] += passed
            want = p.get("n") or max(n for n, _ in counts.values())
            complete = {t: tuple(nc) for t, nc in counts.items() if nc[0] >= want}
            table = pass_at_k_table(complete, p.get("ks") or (1, 10))
            wb.log({"eval/samples_scored": len(self.scored), "eval/tasks_scored": len(complete),
                    **{f"pass_at_k/{k}": v for k, v in table.items()}})
        for row in self.alerts.new_rows():
            self.alert_rows.append(row)
            by = defaultdict(int)
            for a in self.alert_rows:
                by[a.get("severity", "info")] += 1
            wb.log({"system/elapsed_s": self._elapsed(),
                    **{f"alerts/{s}": by.get(s, 0) for s in ("critical", "warning", "info")}})

    def _elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def _close(self, wb, status: str) -> None:
        import wandb
        summary_file = self.run.file("run_summary.json")
        summary = read_json(summary_file) if summary_file.exists() and status == "done" else {}
        per_task = summary.pop("per_task", {})
        wb.summary.update(flat_summary(summary))
        if per_task:
            wb.log({"per_task": per_task_table(per_task)})
        if self.alert_rows:
            wb.log({"alerts": wandb.Table(columns=["time", "severity", "rule", "message", "run"],
                                          data=[[a.get(c) for c in ("time", "severity", "rule", "message", "run")]
                                                for a in self.alert_rows])})
        wb.log_artifact(files_artifact(self.run))


def follow(run_dir, pid: int, setting: str = "auto", **kwargs) -> dict | None:
    return Follower(run_dir, pid, setting, **kwargs).follow()


def start_follower(run_dir: str | Path, setting: str = "auto", group: str | None = None, name: str | None = None,
                   tags=(), pid: int | None = None):
    """Start `python -m core wandb-follow` for a job this process is about to run; returns the Popen."""
    import subprocess
    import sys
    argv = [sys.executable, "-m", "core", "wandb-follow", str(run_dir), "--pid", str(pid or os.getpid()),
            "--wandb", setting]
    if group:
        argv += ["--group", group]
    if name:
        argv += ["--name", name]
    for t in tags:
        argv += ["--tag", t]
    Path(run_dir).parent.mkdir(parents=True, exist_ok=True)
    # its own session: a Ctrl-C meant for the job must not stop the process that reports how the job ended
    return subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def wait_follower(proc, run_dir: str | Path, timeout_s: float = 180.0) -> None:
    """Wait for the follower to end its W&B run; one whose job never claimed the directory (it failed
    first) has no run to end and is stopped."""
    import subprocess
    run = RunDir(run_dir)
    if not run.file("manifest.json").exists() or run.manifest().get("pid") != os.getpid():
        proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("the W&B follower (process %d) has not finished after %.0f s; leaving it to end by itself",
                    proc.pid, timeout_s)
