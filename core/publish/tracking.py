"""Weights & Biases tracking: every eval, bench and train run can be logged to project `hrm-vs-gpt2`.

Offline by default: WANDB_MODE=offline unless WANDB_API_KEY is set (or `--wandb off` skips W&B
altogether). An offline run is written under the run directory (RUN_DIR/wandb/) and uploaded
later with `wandb sync RUN_DIR/wandb/offline-run-*`. What is logged: the manifest as config,
metrics.jsonl as history (one step per line), run_summary.json as summary, a per-task
wandb.Table (n, c, pass@1) and the run's JSON files as an artifact.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from core.base.store import RunDir, read_json, read_jsonl

log = logging.getLogger(__name__)
PROJECT = "hrm-vs-gpt2"


def wandb_mode(setting: str = "auto") -> str | None:
    """None when tracking is off; else the W&B mode to use."""
    if setting == "off" or os.environ.get("WANDB_MODE") == "disabled":
        return None
    try:
        import wandb  # noqa: F401
    except ImportError:
        log.warning("wandb is not installed; skipping W&B logging (make setup installs it)")
        return None
    if setting == "online" or (setting == "auto" and os.environ.get("WANDB_API_KEY")):
        return "online"
    return "offline"


def log_run(run_dir: str | Path, setting: str = "auto", extra_files=()) -> dict | None:
    """Log one finished run directory to W&B; returns {mode, id, dir, url} or None when off."""
    mode = wandb_mode(setting)
    if mode is None:
        return None
    import wandb
    run = RunDir(run_dir)
    manifest = run.manifest()
    summary = read_json(run.file("run_summary.json")) if run.file("run_summary.json").exists() else {}
    per_task = summary.pop("per_task", {})
    wb = wandb.init(project=PROJECT, name=run.run_id, job_type=manifest.get("kind", "run"), mode=mode,
                    dir=str(run.path), config=manifest, reinit="create_new",
                    settings=wandb.Settings(silent=True, console="off"))
    try:
        for row in read_jsonl(run.file("metrics.jsonl")):
            step = row.get("step")
            values = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
            wb.log(values, step=step)
        flat = {}
        for key, value in summary.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, (int, float, str, bool)):
                        flat[f"{key}/{k}"] = v
            elif isinstance(value, (int, float, str, bool)):
                flat[key] = value
        wb.summary.update(flat)
        if per_task:
            table = wandb.Table(columns=["task_id", "n", "c", "pass_at_1"],
                                data=[[t, v["n"], v["c"], v["c"] / v["n"]] for t, v in per_task.items()])
            wb.log({"per_task": table})
        artifact = wandb.Artifact(f"{run.run_id}-files", type="run-files")
        for name in ("manifest.json", "run_summary.json", "stats.json", "bench.json", *extra_files):
            if run.file(name).exists():
                artifact.add_file(str(run.file(name)))
        wb.log_artifact(artifact)
        info = {"mode": mode, "id": wb.id, "dir": wb.dir, "url": wb.url if mode == "online" else None}
    finally:
        wb.finish()
    if mode == "offline":
        _wait_for_exit_record(run.path, wb.id)
    return info


def _wait_for_exit_record(run_dir: Path, run_id: str, timeout_s: float = 30.0) -> None:
    """W&B's writer is another process: under load, finish() can return before the offline file holds
    the run's last records. Wait (bounded) until its closing exit record is there."""
    import time

    from wandb.proto import wandb_internal_pb2
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for f in Path(run_dir).glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"):
            try:
                payloads = list(_wandb_records(f))
            except (OSError, ValueError):
                payloads = []
            if payloads:
                rec = wandb_internal_pb2.Record()
                rec.ParseFromString(payloads[-1])
                if rec.WhichOneof("record_type") == "exit":
                    return
        time.sleep(0.1)
    log.warning("W&B's offline file for run %s has no exit record after %.0f s", run_id, timeout_s)


def log_bench(report: dict, setting: str = "auto", directory: str | Path = ".") -> dict | None:
    """Log a bench.json report: machine and protocol as config, every model's figures as summary."""
    mode = wandb_mode(setting)
    if mode is None:
        return None
    import wandb
    wb = wandb.init(project=PROJECT, name=f"bench-{report['candidate']}-vs-{report['baseline']}", job_type="bench",
                    mode=mode, dir=str(directory), config={k: report[k] for k in ("machine", "protocol", "torch_threads",
                                                                                  "device")},
                    reinit="create_new", settings=wandb.Settings(silent=True, console="off"))
    try:
        wb.summary.update({f"{model}/{k}": v for model, fig in report["models"].items() for k, v in fig.items()
                           if isinstance(v, (int, float, bool))})
        for role in ("candidate", "baseline"):
            for k, v in report["models"][report[role]].items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    wb.summary[k if role == "candidate" else f"baseline/{k}"] = v
        info = {"mode": mode, "id": wb.id, "dir": wb.dir, "url": wb.url if mode == "online" else None}
    finally:
        wb.finish()
    return info


WANDB_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of framed records
WANDB_HEADER = 7  # ":W&B", magic 0xBEE1, version


def _wandb_records(path: Path):
    """The protobuf payloads of a .wandb file, reassembling records split across blocks."""
    import struct
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos, pending = WANDB_HEADER, b""
    while pos + 7 <= len(data):
        left = WANDB_BLOCK - pos % WANDB_BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero padding up to the end of the block
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # full
            yield chunk
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            yield pending + chunk


def read_offline_run(wandb_file: str | Path) -> dict:
    """History rows, summary and config read back from an offline run's .wandb file."""
    import json

    from wandb.proto import wandb_internal_pb2
    history, summary, config = [], {}, {}
    for payload in _wandb_records(Path(wandb_file)):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in rec.history.item})
        elif kind == "summary":
            for item in rec.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind in ("run", "config"):
            for item in (rec.run.config if kind == "run" else rec.config).update:
                config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return {"history": history, "summary": summary, "config": config}


def offline_files(run_dir: str | Path) -> list[Path]:
    return sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))


def build_workspace(entity: str, project: str = PROJECT):
    """The seed's dashboard as a W&B workspace: run selector, accuracy, statistics, efficiency,
    training curves, system health, alerts."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    sections = [
        ws.Section(name="Accuracy", is_open=True, panels=[
            wr.LinePlot(title="Pass@1 vs step (validation)", x="Step", y=["pass_at_1"]),
            wr.BarPlot(title="Final Pass@k per run", metrics=["pass_at_k/1", "pass_at_k/10"]),
        ]),
        ws.Section(name="Statistics", panels=[
            wr.RunComparer(),
            wr.MarkdownPanel(markdown="Paired bootstrap CI and sign-flip permutation p-value per k: see each "
                                      "eval run's `stats.json` artifact and the gate's KPI table."),
        ]),
        ws.Section(name="Efficiency", panels=[
            wr.BarPlot(title="Latency, 512-token prefill (ms)", metrics=["latency_ms"]),
            wr.BarPlot(title="Throughput, batch 8 (tok/s)", metrics=["throughput_tok_s"]),
            wr.BarPlot(title="Peak training RSS (MB)", metrics=["peak_train_rss_mb"]),
        ]),
        ws.Section(name="Training", panels=[
            wr.LinePlot(title="Loss", x="Step", y=["loss", "val_loss"]),
            wr.LinePlot(title="Learning rate", x="Step", y=["lr"]),
            wr.LinePlot(title="Gradient norm", x="Step", y=["grad_norm"]),
        ]),
        ws.Section(name="System health", panels=[
            wr.LinePlot(title="CPU and memory (%)", x="Step", y=["rss_mb", "tokens_per_s"]),
        ]),
        ws.Section(name="Alerts", panels=[
            wr.BarPlot(title="Alerts by severity", metrics=["alerts/critical", "alerts/warning"]),
        ]),
    ]
    return ws.Workspace(entity=entity, project=project, name="HRM vs GPT-2 release gate", sections=sections)


def save_workspace(out: str | Path, entity: str | None = None) -> tuple[str, str]:
    """Online (WANDB_API_KEY set): save the workspace to W&B and return its URL. Offline: write the
    workspace spec JSON to `out` and say so."""
    entity = entity or os.environ.get("WANDB_ENTITY") or "offline"
    workspace = build_workspace(entity)
    if os.environ.get("WANDB_API_KEY"):
        workspace.save()
        return "online", workspace.url
    from core.base.store import atomic_write_text
    atomic_write_text(Path(out), workspace._to_model().model_dump_json(indent=2))
    return "offline", str(out)
