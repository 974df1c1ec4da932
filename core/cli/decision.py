"""Deciding: stats, gate, report, pipeline, bench-stats."""
from __future__ import annotations

from pathlib import Path

from core.cli.common import k_values
from core.base.errors import GateError, UsageError
from core.base.settings import EXIT_CODES, EXIT_STEP_FAILED, RELEASE_TAG


def _add_stats(sub) -> None:
    p = sub.add_parser("stats", help="paired significance test of two runs (bootstrap CI, permutation p)",
                       description="Compare candidate A with baseline B task by task: delta pass@k, 95%% CI (paired "
                                   "bootstrap), two-sided sign-flip permutation p-value, McNemar where n = 1, minimum "
                                   "detectable effect. A and B are run directories or results.jsonl files.")
    p.add_argument("--a", required=True, metavar="RUN", help="candidate run (directory or results.jsonl)")
    p.add_argument("--b", required=True, metavar="RUN", help="baseline run (directory or results.jsonl)")
    p.add_argument("--k", type=k_values, default=(1,), help="k values, e.g. 1,10 (Holm-adjusted when several)")
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ci", choices=("percentile", "bca"), default="percentile")
    p.add_argument("--intersection", action="store_true", help="compare only the tasks both runs have (reported)")
    p.add_argument("--kpis", metavar="FILE", help="KPI file whose [significance].alpha decides superiority "
                                                  "(default kpis.toml)")
    _add_allow_mismatch(p)
    p.add_argument("--out", required=True, metavar="FILE", help="where to write stats.json")


def show_p(*args):
    """core.decide.stats.show_p, imported when called: that module brings scipy, which `--help` need not load."""
    from core.decide.stats import show_p as show
    return show(*args)


def _add_allow_mismatch(p) -> None:
    p.add_argument("--allow-mismatch", action="append", default=[], metavar="FIELD",
                   help="compare although the runs differ in FIELD (e.g. temperature, sha256, a group: dataset, "
                        "sampling, execution; status for an unfinished run); recorded in stats.json. Repeatable")


def _print_comparisons(comparisons, label_a, label_b) -> None:
    for c in comparisons:
        p = show_p(c.p_for_decision, c.resamples, c.p_decision_method)
        print(f"pass@{c.k} ({c.role}): {label_a} {c.a:.3f} vs {label_b} {c.b:.3f}; delta {c.delta:+.3f}, "
              f"95% CI [{c.ci95[0]:+.3f}, {c.ci95[1]:+.3f}], p = {p} ({c.p_decision_method}); "
              f"{'superior' if c.superior else 'not shown superior'} ({c.n_tasks} tasks, MDE {c.mde:.3f})")
        if c.mcnemar:
            m = c.mcnemar
            print(f"  McNemar exact: {m['a_only']} tasks only A passes, {m['b_only']} only B, p = {m['p_value']:.4g}")


def _cmd_stats(args) -> int:
    from core.decide.gate import paired_comparisons, save_stats
    from core.decide.kpi import load_kpis
    paired = paired_comparisons(args.a, args.b, args.k, args.resamples, args.seed, args.intersection,
                                alpha=load_kpis(args.kpis)["significance"]["alpha"], ci_method=args.ci,
                                require_pass_at_1=False, allow_mismatch=args.allow_mismatch, kpis=args.kpis)
    _print_comparisons(paired.comparisons, paired.label_a, paired.label_b)
    print(f"wrote {save_stats(paired.document(), args.out)}")
    return 0


def _add_gate(sub) -> None:
    p = sub.add_parser("gate", help="KPIs + stats -> SUCCESS | PARTIAL | FAILURE (exit 0 | 3 | 4)",
                       description="Applies kpis.toml and the decision framework to a candidate and a baseline run "
                                   "and prints every KPI with target, measured value and whether it held. Exit 0 "
                                   "SUCCESS, 3 PARTIAL, 4 FAILURE, 2 bad usage. Writes the verdict into stats.json.")
    p.add_argument("--candidate", required=True, metavar="RUN")
    p.add_argument("--baseline", required=True, metavar="RUN")
    p.add_argument("--sampled-candidate", metavar="RUN", help="the two-run protocol: the candidate's sampled run (e.g. "
                                                              "T 0.8, n 10); pass@1 then comes from --candidate/--baseline "
                                                              "and every k > 1 from the sampled pair")
    p.add_argument("--sampled-baseline", metavar="RUN", help="the baseline's sampled run (with --sampled-candidate)")
    p.add_argument("--bench", metavar="FILE", help="bench.json with both models' efficiency figures")
    p.add_argument("--kpis", metavar="FILE", help="KPI thresholds (default kpis.toml)")
    p.add_argument("--train-runs", nargs="*", metavar="RUN_DIR", help="training runs whose failures count")
    p.add_argument("--k", type=k_values, default=(1, 10), help="k values to test (those with enough samples)")
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--intersection", action="store_true")
    _add_allow_mismatch(p)
    p.add_argument("--out", metavar="FILE", help="stats.json to write (default: the candidate run's stats.json)")
    p.add_argument("--publish", metavar="DIR", help="also write stats.json, run_summary.json (with a sampled pair, "
                                                     "run_summary_sampled.json too) and badge.svg (Pass@1, green at "
                                                     "the KPI target) into DIR, e.g. results")
    p.add_argument("--release", action="store_true", help="Gate C7: publish (default REPO_DIR/results), write summary.pdf "
                                                          "there, and on SUCCESS only tag the release in the git repository")
    p.add_argument("--tag", default=RELEASE_TAG, help=f"release tag made by --release on SUCCESS (default {RELEASE_TAG})")
    p.add_argument("--repo-dir", default=".", metavar="DIR", help="git repository to tag (default: here)")


def _cmd_gate(args) -> int:
    from core.decide.gate import default_stats_path, model_of, run_gate, save_stats
    from core.decide.kpi import load_kpis
    from core.publish.release import publish_gate
    if bool(args.sampled_candidate) != bool(args.sampled_baseline):
        raise UsageError("give both --sampled-candidate and --sampled-baseline (the sampled pair), or neither")
    sampled = (args.sampled_candidate, args.sampled_baseline) if args.sampled_candidate else None
    try:
        result = run_gate(args.candidate, args.baseline, bench=args.bench, kpis=args.kpis, train_runs=args.train_runs,
                          ks=args.k, resamples=args.resamples, seed=args.seed, intersection=args.intersection,
                          allow_mismatch=args.allow_mismatch, sampled=sampled)
    except GateError as exc:
        raise UsageError(str(exc)) from None
    print(result.text)
    print(f"wrote {save_stats(result.stats, args.out or default_stats_path(args.candidate))}")
    publish_dir = args.publish or (str(Path(args.repo_dir) / "results") if args.release else None)
    if publish_dir:
        for line in publish_gate(result.stats, args.candidate, args.baseline, publish_dir,
                                 target=load_kpis(args.kpis)["accuracy"]["pass_at_1_min"],
                                 models=(model_of(args.candidate), model_of(args.baseline)), bench=args.bench,
                                 train_run=(args.train_runs or [None])[0], release=args.release,
                                 tag=args.tag, repo_dir=args.repo_dir):
            print(line)
    return result.exit_code


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="check that a stats.json still follows from the files it names",
                       description="Re-reads the results.jsonl, bench.json and kpis.toml a stats.json names (their "
                                   "sha256 must be unchanged), recomputes the comparison and the verdict with the "
                                   "recorded settings, and fails (exit 1) on any difference.")
    p.add_argument("stats", metavar="STATS_JSON")


def _cmd_verify(args) -> int:
    from core.decide.verify import verify
    for line in verify(args.stats):
        print(line)
    print(f"{args.stats}: verified")
    return 0


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="tasks x samples needed to detect the target difference, from pilot runs",
                       description="Estimates the between-task and within-task variance of the paired pass@1 "
                                   "difference from pilot runs (candidate, then baseline; one run stands for both) "
                                   "and prints, for several samples per task, the tasks needed to detect the target "
                                   "delta with 80%% power at kpis.toml's alpha, and the power with the whole split. "
                                   "--check N simulates N comparisons with the gate's own test to check a prediction.")
    p.add_argument("--pilot", action="append", required=True, metavar="RUN", help="pilot run (repeat for the baseline)")
    p.add_argument("--delta-pp", type=float, help="difference to detect, in points (default kpis.toml's target)")
    p.add_argument("--kpis", metavar="FILE", help="KPI file (alpha, target delta; default kpis.toml)")
    p.add_argument("--tasks", type=int, default=500, help="tasks the split has (default 500, MBPP's test split)")
    p.add_argument("--check", type=int, default=0, metavar="SIMS", help="simulate this many comparisons to check "
                                                                        "the predicted power with the whole split")
    p.add_argument("--out", metavar="FILE", help="write the plan as JSON")


def _cmd_plan(args) -> int:
    from core.base.store import atomic_write_json
    from core.decide.kpi import load_kpis
    from core.decide.power import estimate, plan, predicted_power, simulate_power
    cfg = load_kpis(args.kpis)
    delta = (args.delta_pp if args.delta_pp is not None else cfg["accuracy"]["delta_pass_at_1_min_pp"]) / 100
    if delta <= 0 or args.tasks < 1 or args.check < 0:
        raise UsageError("--delta-pp must be > 0, --tasks >= 1 and --check >= 0")
    alpha = cfg["significance"]["alpha"]
    doc = plan(args.pilot, delta, alpha, split_tasks=args.tasks)
    print(f"pilots: {', '.join(args.pilot)} ({doc['pilot_tasks']} shared tasks, {doc['pilot_samples_per_task']}+ "
          f"samples each); between-task variance {doc['between_task_variance']:.4f}, within-task (n=1) "
          f"{doc['within_task_variance_n1']:.4f}" + ("" if doc["paired_pilots"] else
                                                     " (one pilot: between-task variance of the difference unknown, taken as 0)"))
    print(f"to detect {100 * delta:g} pp with 80% power at alpha {alpha:g}:")
    print(f"  {'samples/task':>12}  {'tasks needed':>12}  {f'power with {args.tasks} tasks':>22}")
    for r in doc["rows"]:
        print(f"  {r['samples_per_task']:>12}  {r['tasks_needed']:>12,}  {r['power_with_split']:>22.1%}")
    if args.check:
        v = estimate(args.pilot)
        n = next((r["samples_per_task"] for r in doc["rows"] if r["tasks_needed"] <= args.tasks),
                 doc["rows"][-1]["samples_per_task"])
        want, got = predicted_power(v, args.tasks, n, delta, alpha), simulate_power(v, args.tasks, n, delta, args.check,
                                                                                     alpha)
        doc["check"] = {"samples_per_task": n, "tasks": args.tasks, "predicted": want, "simulated": got, "sims": args.check}
        print(f"check: {args.tasks} tasks x {n} samples: predicted power {want:.1%}, simulated {got:.1%} "
              f"({args.check} comparisons with the gate's test)")
    if args.out:
        atomic_write_json(Path(args.out), doc)
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="the summary PDF: verdict, KPIs, stats, efficiency, training, protocol")
    p.add_argument("--candidate", required=True, metavar="RUN")
    p.add_argument("--baseline", required=True, metavar="RUN")
    p.add_argument("--bench", metavar="FILE")
    p.add_argument("--train-run", metavar="RUN_DIR")
    p.add_argument("--stats", metavar="FILE", help="render this decided stats.json (from `gate` or the pipeline) "
                                                   "instead of deciding here with the default settings")
    p.add_argument("--kpis", metavar="FILE", help="KPI thresholds (default kpis.toml)")
    _add_allow_mismatch(p)
    p.add_argument("--out", required=True, metavar="FILE")


def _cmd_report(args) -> int:
    from core.base.store import read_json
    from core.decide.gate import run_gate
    from core.publish.report import build_report
    if args.stats:
        stats = read_json(Path(args.stats))
    else:
        stats = run_gate(args.candidate, args.baseline, bench=args.bench, kpis=args.kpis,
                         train_runs=[args.train_run] if args.train_run else None,
                         allow_mismatch=args.allow_mismatch).stats
    out = build_report(stats, args.candidate, args.baseline, args.out, args.bench, args.train_run)
    print(f"wrote {out}")
    return 0


def _add_pipeline(sub) -> None:
    p = sub.add_parser("pipeline", help="the whole gate in one command: train? -> eval (greedy pair, sampled pair) -> bench -> collect -> stats "
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
    from core.flow.pipeline import Pipeline, PipelineError, format_summary, load_config, parse_redo
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
    return EXIT_CODES.get(pipe.verdict(), EXIT_STEP_FAILED)


def _add_bench_stats(sub) -> None:
    p = sub.add_parser("bench-stats", help="calibrate the significance test by simulation; time it beside scipy")
    p.add_argument("--sims", type=int, default=2000)
    p.add_argument("--resamples", type=int, default=2000, help="resamples inside each simulated comparison")
    p.add_argument("--seed", type=int, default=0)


def _cmd_bench_stats(args) -> int:
    from core.selfcheck.calibration import run_bench_stats
    run_bench_stats(args.sims, args.resamples, args.seed)
    return 0


COMMANDS = {"stats": (_add_stats, _cmd_stats), "gate": (_add_gate, _cmd_gate), "verify": (_add_verify, _cmd_verify), "plan": (_add_plan, _cmd_plan), "report": (_add_report, _cmd_report), "pipeline": (_add_pipeline, _cmd_pipeline), "bench-stats": (_add_bench_stats, _cmd_bench_stats)}
