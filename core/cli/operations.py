"""Around the runs: monitor, alerts, fetch-results, prom-exporter, W&B, app jobs and timing."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.base.errors import UsageError
from core.base.settings import MBPP_PATH


def _add_monitor(sub) -> None:
    p = sub.add_parser("monitor", help="reliability monitor beside a job: system health + training faults",
                       description="Samples CPU, memory, temperatures and GPUs into RUN_DIR/system.jsonl and writes "
                                   "faults (non-finite loss, loss spike, grad-norm explosion, stall, dead process, "
                                   "memory, disk) to RUN_DIR/alerts.jsonl until the run ends. With --store instead of "
                                   "RUN_DIR: a side-car that watches every running run of the store, forever.")
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
    p.add_argument("--store", nargs="?", const="", metavar="DIR",
                   help="watch the whole run store (default cache/runs or $HRM_GATE_STORE)")
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--pid", type=int, help="the job's process (default: the manifest's)")
    p.add_argument("--stall-s", type=float, default=600.0, help="seconds without a metrics line that count as a stall")
    p.add_argument("--spike-factor", type=float, default=3.0)
    p.add_argument("--grad-factor", type=float, default=10.0)
    p.add_argument("--max-s", type=float, help="stop after this many seconds even if the run goes on")
    p.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for the run's manifest to appear")
    p.add_argument("--sinks", help="also send each alert as it happens: comma list of console, ci, github-issue, slack")
    p.add_argument("--repo", help="OWNER/NAME for the github-issue sink")
    p.add_argument("--min-interval-s", type=float, default=30.0, help="at most one message per sink this often")
    p.add_argument("--dedup-s", type=float, default=3600.0, help="a run's rule is sent again after this long at most")
    p.add_argument("--relay-state", metavar="FILE",
                   help="what was sent, kept across restarts (default alerts_sent.json in the store or RUN_DIR)")


def _cmd_monitor(args) -> int:
    import time as _time
    from core.lab.monitor import Monitor, Thresholds, watch_store
    from core.base.store import RunDir
    t = Thresholds(spike_factor=args.spike_factor, grad_factor=args.grad_factor, stall_s=args.stall_s)
    if (args.run_dir is None) == (args.store is None):
        raise UsageError("give RUN_DIR (one job) or --store [DIR] (every running job of the store)")
    relay = None
    if args.sinks:
        from core.base.store import store_root
        from core.publish.alerts import build_sinks
        from core.publish.relay import Relay
        where = (Path(args.store) if args.store else store_root()) if args.store is not None else Path(args.run_dir)
        relay = Relay(build_sinks(args.sinks.split(","), args.repo), args.relay_state or where / "alerts_sent.json",
                      args.min_interval_s, args.dedup_s)
    on_tick = relay.tick if relay else None
    if args.store is not None:
        n = watch_store(args.store or None, t, args.interval, args.max_s, on_tick=on_tick)
        if relay:
            from core.base.store import list_runs
            relay.tick([r.file("alerts.jsonl") for r in list_runs(Path(args.store) if args.store else None)], force=True)
        print(f"store monitor stopped: {n} alert(s) written" + (f", {relay.sent} message(s) sent" if relay else ""))
        return 0
    deadline = _time.monotonic() + args.wait_s
    while not RunDir(args.run_dir).exists():
        if _time.monotonic() > deadline:
            raise UsageError(f"{args.run_dir} has no manifest.json after {args.wait_s:g} s; is a job writing there?")
        _time.sleep(0.2)
    n = Monitor(args.run_dir, t, pid=args.pid).run_forever(args.interval, args.max_s, on_tick=on_tick)
    if relay:
        relay.tick([Path(args.run_dir) / "alerts.jsonl"], force=True)
    print(f"monitor stopped: {n} alert(s) in {args.run_dir}/alerts.jsonl"
          + (f", {relay.sent} message(s) sent" if relay else ""))
    return 0


def _add_alerts(sub) -> None:
    p = sub.add_parser("alerts", help="apply the alert rules to a gate's stats.json and send them to sinks")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stats", metavar="FILE", help="stats.json written by `gate`")
    src.add_argument("--pipeline-dir", metavar="DIR", help="a pipeline's out_dir (or its artifact): its stats.json, "
                                                           "the runs' alerts.jsonl and the W&B link")
    p.add_argument("--alerts-file", nargs="*", default=[], metavar="FILE", help="monitor alerts.jsonl files")
    p.add_argument("--sinks", default="console", help="comma list of console, ci, github, github-issue, slack")
    p.add_argument("--repo", help="OWNER/NAME for the github sinks")
    p.add_argument("--pr", type=int, help="pull request number for the sticky comment and labels")
    p.add_argument("--sha", help="commit for the status")
    p.add_argument("--run-url", help="a link to show in the comment (e.g. the W&B run)")


def _cmd_alerts(args) -> int:
    from core.publish.alerts import dispatch
    stats, files, url = args.stats, list(args.alerts_file), args.run_url
    if args.pipeline_dir:
        d = Path(args.pipeline_dir)
        stats = d / "stats.json"
        if not stats.is_file():
            raise UsageError(f"{d} has no stats.json; pass a pipeline's out_dir after its gate step ran")
        files += [str(f) for f in sorted(d.glob("*/alerts.jsonl"))]
        if url is None and (d / "wandb.json").is_file():
            from core.base.store import read_json
            url = (read_json(d / "wandb.json").get("candidate") or {}).get("url")
    out = dispatch(str(stats), files, args.sinks.split(","), args.repo, args.pr, args.sha, url)
    print(f"{len(out.alerts)} alert(s) sent to {args.sinks}; verdict {out.verdict}")
    return 0


def _add_fetch_results(sub) -> None:
    p = sub.add_parser("fetch-results", help="download a workflow's newest results artifact from GitHub (nightly monitor)",
                       description="Finds the newest completed run of WORKFLOW in REPO that kept ARTIFACT and unpacks it "
                                   "into --out. Needs GITHUB_TOKEN with actions: read; GITHUB_API_URL overrides the API.")
    p.add_argument("--repo", required=True, help="OWNER/NAME")
    p.add_argument("--workflow", default="benchmark.yml")
    p.add_argument("--artifact", default="gate-results")
    p.add_argument("--branch", help="only runs on this branch")
    p.add_argument("--out", required=True, metavar="DIR")


def _cmd_fetch_results(args) -> int:
    from core.publish.github import fetch_latest_artifact
    info = fetch_latest_artifact(args.repo, args.workflow, args.artifact, args.out, args.branch)
    print(f"fetched {args.artifact} of run {info['run_id']} (commit {(info['head_sha'] or '?')[:12]}, "
          f"{info['created_at']}): {len(info['files'])} file(s) in {args.out}")
    return 0


def _add_prom(sub) -> None:
    p = sub.add_parser("prom-exporter", help="Prometheus exporter: verdict, p, delta, MDE, runs' step and heartbeat, "
                                             "pass@k, efficiency, system, alert counters",
                       description="Rules on these metrics: deploy/prometheus/rules.yml.")
    p.add_argument("--port", type=int, default=9108)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--store", help="run store (default cache/runs or $HRM_GATE_STORE)")
    p.add_argument("--pipeline", nargs="*", metavar="DIR",
                   help="pipeline out_dirs: their stats.json, bench.json and runs (default every cache/pipeline/*)")
    p.add_argument("--bench", nargs="*", help="bench.json files (default the pipelines' and the store's own)")
    p.add_argument("--stall-s", type=float, default=600.0,
                   help="exported as hrm_gate_stall_seconds: the rules' stalled-run threshold")
    p.add_argument("--max-s", type=float, help="stop after this many seconds")


def _cmd_prom(args) -> int:
    from core.publish.prom import serve
    serve(args.port, args.host, Path(args.store) if args.store else None,
          [Path(b) for b in args.bench] if args.bench is not None else None, args.max_s,
          [Path(p) for p in args.pipeline] if args.pipeline is not None else None, args.stall_s)
    return 0


def _add_wandb_log(sub) -> None:
    p = sub.add_parser("wandb-log", help="log a finished run directory to W&B (offline unless WANDB_API_KEY)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--wandb", choices=("auto", "offline", "online"), default="auto")


def _cmd_wandb_log(args) -> int:
    from core.publish.tracking import log_run
    info = log_run(args.run_dir, args.wandb)
    where = info["url"] or f"{info['dir']} (offline: upload with `wandb sync {Path(info['dir']).parent}`)"
    print(f"logged {args.run_dir} to W&B project hrm-vs-gpt2: {where}")
    return 0


def _add_wandb_dashboard(sub) -> None:
    p = sub.add_parser("wandb-dashboard", help="build the W&B workspace (saved online; offline: its spec JSON)")
    p.add_argument("--entity", help="W&B entity (default $WANDB_ENTITY)")
    p.add_argument("--out", default="results/wandb_workspace.json", help="where the offline spec goes")
    p.add_argument("--model", action="append", default=[], metavar="SPEC",
                   help="the run selector's models (repeatable; default: every model)")


def _cmd_wandb_dashboard(args) -> int:
    from core.publish.tracking import save_workspace
    mode, where = save_workspace(args.out, args.entity, models=args.model)
    if mode == "online":
        print(f"saved the W&B workspace: {where}")
    else:
        print(f"offline (no WANDB_API_KEY): wrote the workspace spec to {where}; run this command again with "
              "WANDB_API_KEY set to save it to W&B")
    return 0


def _add_job(sub) -> None:
    p = sub.add_parser("job")  # internal: how the app launches jobs; no help, so not listed
    p.add_argument("run_dir")
    p.add_argument("argv", nargs=argparse.REMAINDER)


def _cmd_job(args) -> int:
    from core.views.jobs import run_job
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return run_job(args.run_dir, argv)


def _add_bench_app(sub) -> None:
    p = sub.add_parser("bench-app", help="time switching app pages with 100 runs in the store")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-path", default=MBPP_PATH)


def _cmd_bench_app(args) -> int:
    from core.selfcheck.bench_app import run_bench_app
    run_bench_app(args.runs, args.repeats, args.data_path)
    return 0


COMMANDS = {"monitor": (_add_monitor, _cmd_monitor), "alerts": (_add_alerts, _cmd_alerts), "fetch-results": (_add_fetch_results, _cmd_fetch_results), "prom-exporter": (_add_prom, _cmd_prom), "wandb-log": (_add_wandb_log, _cmd_wandb_log), "wandb-dashboard": (_add_wandb_dashboard, _cmd_wandb_dashboard), "job": (_add_job, _cmd_job), "bench-app": (_add_bench_app, _cmd_bench_app)}
