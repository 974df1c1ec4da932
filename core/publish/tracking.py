"""Weights & Biases tracking: what goes to project `hrm-vs-gpt2`, and the saved workspace.

Offline by default: WANDB_MODE=offline unless WANDB_API_KEY is set (or `--wandb off` skips W&B
altogether). An offline run is written under the run directory (RUN_DIR/wandb/) and uploaded
later with `wandb sync RUN_DIR/wandb/offline-run-*`. Runs are logged live by core.publish.live;
here: `log_run` (a run directory after the fact: `wandb-log`), `log_bench` (bench.json, both
models' figures side by side), `log_gate` (stats.json's evidence: delta, CI, p, MDE, verdict,
reasons, as summary keys and tables, and the alerts as a table), reading an offline .wandb file
back, and the workspace: PANELS, the seed's seven panels with the keys each reads.
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


def short_model(spec: str | None) -> str:
    """A model spec as people read it: a checkpoint path shortened to its last two parts."""
    if not spec:
        return "unknown model"
    kind, _, arg = spec.partition(":")
    if "/" in arg:
        parts = Path(arg).parts
        arg = "/".join(parts[-2:])
    return f"{kind}:{arg}" if arg else kind


def flat_summary(summary: dict) -> dict:
    """run_summary.json as W&B summary keys: one level of nesting flattened to `outer/inner`."""
    flat = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, (int, float, str, bool)):
                    flat[f"{key}/{k}"] = v
        elif isinstance(value, (int, float, str, bool)):
            flat[key] = value
    return flat


def per_task_table(per_task: dict):
    import wandb
    return wandb.Table(columns=["task_id", "n", "c", "pass_at_1"],
                       data=[[t, v["n"], v["c"], v["c"] / v["n"]] for t, v in per_task.items()])


def files_artifact(run: RunDir, extra_files=()):
    import wandb
    artifact = wandb.Artifact(f"{run.run_id}-files", type="run-files")
    for name in ("manifest.json", "run_summary.json", "stats.json", "bench.json", "alerts.jsonl", *extra_files):
        if run.file(name).exists():
            artifact.add_file(str(run.file(name)))
    return artifact


def exit_of(status: str) -> tuple[str, int]:
    """The W&B status and exit code of a run directory's status: a run whose process died mid-run
    (`interrupted`) is crashed, not a clean exit; one still running (its process alive) says so."""
    status = "crashed" if status == "interrupted" else status
    return status, 0 if status in ("done", "running") else 1


def log_run(run_dir: str | Path, setting: str = "auto", extra_files=(), group: str | None = None,
            name: str | None = None, tags=()) -> dict | None:
    """Log one run directory to W&B after the fact (`wandb-log`); returns {mode, id, dir, url, status} or
    None when off. Live runs are core.publish.live's; this one serves runs made without it."""
    mode = wandb_mode(setting)
    if mode is None:
        return None
    import wandb
    run = RunDir(run_dir)
    manifest = run.manifest()
    status, exit_code = exit_of(run.status())
    summary = read_json(run.file("run_summary.json")) if run.file("run_summary.json").exists() else {}
    per_task = summary.pop("per_task", {})
    wb = wandb.init(project=PROJECT, name=name or run.run_id, job_type=manifest.get("kind", "run"), mode=mode,
                    dir=str(run.path), config=manifest, reinit="create_new", group=group, tags=list(tags) or None,
                    settings=wandb.Settings(silent=True, console="off"))
    try:
        for row in read_jsonl(run.file("metrics.jsonl")):
            step = row.get("step")
            values = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
            wb.log(values, step=step)
        wb.summary.update(flat_summary(summary))
        if per_task:
            wb.log({"per_task": per_task_table(per_task)})
        wb.log_artifact(files_artifact(run, extra_files))
        info = {"mode": mode, "id": wb.id, "dir": wb.dir, "url": wb.url if mode == "online" else None,
                "status": status}
    finally:
        wb.summary["status"] = status
        wb.finish(exit_code=exit_code)
    if mode == "offline":
        wait_for_exit_record(run.path, wb.id)
    return info


def wait_for_exit_record(run_dir: Path, run_id: str, timeout_s: float = 30.0) -> None:
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


EFFICIENCY = ("latency_ms", "throughput_tok_s", "params_total", "peak_train_rss_mb")


def log_bench(report: dict, setting: str = "auto", directory: str | Path = ".", group: str | None = None,
              name: str | None = None, tags=()) -> dict | None:
    """Log a bench.json report: machine and protocol as config, every model's figures as summary, and
    `candidate/KEY` beside `baseline/KEY` so that the efficiency bars show both models."""
    mode = wandb_mode(setting)
    if mode is None:
        return None
    import wandb
    cand, base = short_model(report["candidate"]), short_model(report["baseline"])
    wb = wandb.init(project=PROJECT, name=name or f"bench {cand} vs {base}",
                    job_type="bench", mode=mode, dir=str(directory), group=group,
                    tags=list(dict.fromkeys([f"model:{cand}"[:64], f"model:{base}"[:64],
                                             "kind:bench", *tags])),
                    config={**{k: report[k] for k in ("machine", "protocol", "torch_threads", "device")},
                            "model": report["candidate"], "baseline_model": report["baseline"]},
                    reinit="create_new", settings=wandb.Settings(silent=True, console="off"))
    try:
        wb.summary.update({f"{model}/{k}": v for model, fig in report["models"].items() for k, v in fig.items()
                           if isinstance(v, (int, float, bool))})
        rows = []
        for role in ("candidate", "baseline"):
            fig = report["models"][report[role]]
            for k, v in fig.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    wb.summary[f"{role}/{k}"] = v
            rows.append([role, report[role], *[fig.get(k) for k in EFFICIENCY]])
        wb.log({"efficiency": wandb.Table(columns=["role", "model", *EFFICIENCY], data=rows)})
        info = {"mode": mode, "id": wb.id, "dir": wb.dir, "url": wb.url if mode == "online" else None}
    finally:
        wb.finish()
    if mode == "offline":
        wait_for_exit_record(Path(directory), info["id"])
    return info


def gate_evidence(stats: dict) -> dict:
    """stats.json's evidence as W&B summary keys: delta, CI, p, MDE, verdict and reasons."""
    p1 = stats.get("pass_at_1") or {}
    gate = stats.get("gate") or {}
    power = stats.get("power") or {}
    ci = p1.get("ci95") or [None, None]
    out = {"gate/verdict": stats.get("verdict"), "gate/delta_pass_at_1": p1.get("delta"),
           "gate/ci95_low": ci[0], "gate/ci95_high": ci[1],
           "gate/p_value": p1.get("p_value_decision", p1.get("p_value")), "gate/p_method": p1.get("p_decision_method"),
           "gate/mde": p1.get("mde"), "gate/underpowered": power.get("underpowered"), "gate/alpha": stats.get("alpha"),
           "gate/n_tasks": stats.get("n_tasks"), "gate/pass_at_1_candidate": p1.get("candidate"),
           "gate/pass_at_1_baseline": p1.get("baseline"), "gate/reasons": "; ".join(gate.get("reasons") or [])}
    out.update(two_run_evidence(stats))
    return {k: v for k, v in out.items() if v is not None}


def two_run_evidence(stats: dict) -> dict:
    """pass@10 and the sampled pass@1 with the pair each came from (the two-run protocol: pass@10 from the
    sampled runs, their pass@1 labelled and outside the verdict)."""
    from core.decide.gate import describe_sampling
    pairs, sources = stats.get("pairs") or {}, stats.get("sources") or {}
    cand, base = stats.get("candidate"), stats.get("baseline")
    out = {}
    for key, prefix in (("pass_at_10", "gate/pass_at_10"), ("sampled_pass_at_1", "gate/sampled_pass_at_1")):
        entry = stats.get(key)
        if not isinstance(entry, dict):
            continue
        pair = pairs.get(sources.get(key)) or {}
        out.update({f"{prefix}_candidate": entry.get(cand), f"{prefix}_baseline": entry.get(base),
                    f"{prefix}_delta": entry.get("delta"),
                    f"{prefix}_pair": f"{sources.get(key)}: {describe_sampling(pair)}" if pair else None,
                    f"{prefix}_temperature": pair.get("temperature")})
    return out


EVIDENCE_COLUMNS = ["k", "role", "candidate", "baseline", "delta", "ci95_low", "ci95_high", "p_value", "p_value_holm",
                    "p_decision", "p_method", "mde", "superior", "pair"]
ALERT_COLUMNS = ["time", "severity", "rule", "message", "run"]


def log_gate(stats: dict, monitor_alerts=(), setting: str = "auto", directory: str | Path = ".",
             group: str | None = None, name: str | None = None, tags=()) -> dict | None:
    """The gate's evidence as a W&B run: summary keys (gate_evidence), a `gate/evidence` table (one row
    per k), `gate/kpis`, `gate/reasons`, and an `alerts` table: the monitors' alerts and the gate's own
    (core.publish.alerts.evaluate_rules), with `alerts/SEVERITY` counts."""
    mode = wandb_mode(setting)
    if mode is None:
        return None
    import wandb

    from core.publish.alerts import evaluate_rules
    rows = []
    keys = sorted((k for k in stats if k.startswith("pass_at_") and isinstance(stats[k], dict)),
                  key=lambda k: int(k.rsplit("_", 1)[1]))
    for key in keys + (["sampled_pass_at_1"] if isinstance(stats.get("sampled_pass_at_1"), dict) else []):
        c = stats[key]
        ci = c.get("ci95") or [None, None]
        k = 1 if key == "sampled_pass_at_1" else int(key.rsplit("_", 1)[1])
        rows.append([k, c.get("role"), c.get("candidate"), c.get("baseline"), c.get("delta"),
                     ci[0], ci[1], c.get("p_value"), c.get("p_value_holm"), c.get("p_value_decision"),
                     c.get("p_decision_method"), c.get("mde"), c.get("superior"),
                     (stats.get("sources") or {}).get(key, "main")])
    gate = stats.get("gate") or {}
    kpis = [[k.get("label"), k.get("shown"), str(k.get("target")), k.get("held"), k.get("group")]
            for k in gate.get("kpis", [])]
    outcome = evaluate_rules(stats, list(monitor_alerts))
    alerts = [[a.get("time"), a.get("severity"), a.get("rule"), a.get("message"), a.get("run")] for a in monitor_alerts]
    alerts += [[None, a.severity, a.rule, "; ".join([a.message, *a.details]), "gate"] for a in outcome.alerts]
    counts = {f"alerts/{s}": sum(a[1] == s for a in alerts) for s in ("critical", "error", "warning", "info")}
    inputs = stats.get("inputs") or {}
    model = (inputs.get("candidate") or {}).get("model") or stats.get("candidate")
    wb = wandb.init(project=PROJECT, name=name or f"gate {stats.get('verdict')}", job_type="gate", mode=mode,
                    dir=str(directory), group=group, reinit="create_new",
                    tags=list(dict.fromkeys([f"model:{short_model(model)}"[:64], f"verdict:{stats.get('verdict')}",
                                             "kind:gate",
                                             *tags])),
                    config={"model": model, "baseline_model": (inputs.get("baseline") or {}).get("model"),
                            "method": stats.get("method"), "resamples": stats.get("resamples"),
                            "seed": stats.get("seed"), "alpha": stats.get("alpha"),
                            "comparability": stats.get("comparability")},
                    settings=wandb.Settings(silent=True, console="off"))
    try:
        wb.summary.update({**gate_evidence(stats), **counts})
        wb.log({"gate/evidence": wandb.Table(columns=EVIDENCE_COLUMNS, data=rows),
                "gate/kpis": wandb.Table(columns=["kpi", "value", "target", "held", "group"], data=kpis),
                "gate/reasons": wandb.Table(columns=["reason"], data=[[r] for r in gate.get("reasons") or []]),
                "alerts": wandb.Table(columns=ALERT_COLUMNS, data=alerts)})
        info = {"mode": mode, "id": wb.id, "dir": wb.dir, "url": wb.url if mode == "online" else None}
    finally:
        wb.finish()
    if mode == "offline":
        wait_for_exit_record(Path(directory), info["id"])
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
        if pos + 7 + length > len(data):
            break  # the writer (another process) is mid-record: what follows is not there yet
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
    """An offline run read back from its .wandb file: history rows, summary, config, the run record
    (name, group, tags, job_type) and the exit code (None: the file has no exit record)."""
    import json

    from wandb.proto import wandb_internal_pb2
    history, summary, config, run, exit_code = [], {}, {}, {}, None
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
            if kind == "run":
                run = {"name": rec.run.display_name, "group": rec.run.run_group, "tags": list(rec.run.tags),
                       "job_type": rec.run.job_type, "id": rec.run.run_id}
            for item in (rec.run.config if kind == "run" else rec.config).update:
                config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "exit":
            exit_code = rec.exit.exit_code
    return {"history": history, "summary": summary, "config": config, "run": run, "exit_code": exit_code}


def read_table(wandb_file: str | Path, key: str) -> dict | None:
    """The last W&B Table logged under `key` in an offline run: {columns, data}, or None."""
    import json
    data = read_offline_run(wandb_file)
    path = data["summary"].get(f"{key}/path")
    if path is None:
        return None
    return json.loads((Path(wandb_file).parent / "files" / path).read_text(encoding="utf-8"))


def offline_files(run_dir: str | Path) -> list[Path]:
    return sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))


# The seed's seven panels and the keys each reads (where: config, history, summary or a table in the
# summary). tests/test_tracking.py checks that every key is written by a real offline pipeline run.
PANELS = {
    "Run selector": [("runset", "filter and group by model", "config", ["model"])],
    "Accuracy": [("line", "pass@1 and pass@10 vs step (samples scored)", "eval/samples_scored",
                  ["pass_at_k/1", "pass_at_k/10"])],
    "Stat summary": [("table", "delta, 95% CI, p, MDE per k", None, ["gate/evidence"]),
                     ("table", "KPIs", None, ["gate/kpis"]),
                     ("bar", "verdict evidence: delta and CI of pass@1", None,
                      ["gate/delta_pass_at_1", "gate/ci95_low", "gate/ci95_high", "gate/p_value", "gate/mde"])],
    "Efficiency vs baseline": [
        ("bar", "Latency, 512-token prefill (ms)", None, ["candidate/latency_ms", "baseline/latency_ms"]),
        ("bar", "Throughput (tok/s)", None, ["candidate/throughput_tok_s", "baseline/throughput_tok_s"]),
        ("table", "Both models' figures", None, ["efficiency"])],
    "Training curves": [("line", "Loss", "train/step", ["loss"]), ("line", "Learning rate", "train/step", ["lr"]),
                        ("line", "Gradient norm", "train/step", ["grad_norm"])],
    "System health": [("line", "CPU and memory (%)", "system/elapsed_s", ["system/cpu_percent", "system/mem_percent"]),
                      ("line", "Temperature (C)", "system/elapsed_s", ["system/temp_c_max"]),
                      ("line", "GPU utilisation (%)", "system/elapsed_s", ["system/gpu0_util_percent"])],
    "Alert feed": [("table", "Alerts (monitors and gate)", None, ["alerts"]),
                   ("bar", "Alerts by severity", None, ["alerts/critical", "alerts/error", "alerts/warning"])],
}
# keys only a machine with the hardware writes (core.lab.monitor.system_sample)
HARDWARE_KEYS = {"system/temp_c_max": "temperature sensors the OS exposes",
                 "system/gpu0_util_percent": "an NVIDIA GPU"}


def panel_keys() -> dict[str, list[str]]:
    return {title: [k for *_, keys in panels for k in keys] for title, panels in PANELS.items()}


def build_workspace(entity: str, project: str = PROJECT, models=()):
    """The seed's dashboard as a W&B workspace (PANELS): the run selector is the runset's filter by
    model (the given models; all when none) and its grouping by model."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    sections = []
    for title, panels in PANELS.items():
        made = []
        for kind, name, x, keys in panels:
            if kind == "line":
                made.append(wr.LinePlot(title=name, x=x, y=keys))
            elif kind == "bar":
                made.append(wr.BarPlot(title=name, metrics=keys))
            elif kind == "table":
                made += [wr.WeavePanelSummaryTable(table_name=k) for k in keys]
            elif kind == "runset":
                made.append(wr.MarkdownPanel(markdown="Runs are filtered and grouped by `config.model` (the run "
                                                      "selector): edit the filter above the runs table."))
        sections.append(ws.Section(name=title, is_open=True, panels=made))
    model = ws.Config("model")
    runset = ws.RunsetSettings(filters=ws.And(model.isin(list(models))) if models else "", groupby=[model],
                               pinned_columns=["config:model"])
    return ws.Workspace(entity=entity, project=project, name="HRM vs GPT-2 release gate", sections=sections,
                        runset_settings=runset)


def save_workspace(out: str | Path, entity: str | None = None, models=()) -> tuple[str, str]:
    """Online (WANDB_API_KEY set): save the workspace to W&B and return its URL. Offline: write the
    workspace spec JSON to `out` and say so."""
    entity = entity or os.environ.get("WANDB_ENTITY") or "offline"
    workspace = build_workspace(entity, models=models)
    if os.environ.get("WANDB_API_KEY"):
        workspace.save()
        return "online", workspace.url
    from core.base.store import atomic_write_text
    atomic_write_text(Path(out), workspace._to_model().model_dump_json(indent=2))
    return "offline", str(out)
