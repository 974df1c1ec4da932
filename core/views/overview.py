"""The Overview screen's data: the verdict of a pair (decided in memory by core.decide, nothing written) or
of the committed gate (results/stats.json), its reasons in plain words, the KPI table as traffic lights
with the why of every "not measured", pass@1 and pass@10 of both models with CIs, the efficiency
ratios against their targets, and when and from which files it was computed."""
from __future__ import annotations

from pathlib import Path

from core.base.config import default_of, fields
from core.base.machine import now_iso
from core.base.settings import REPO_ROOT, RESULTS_DIR
from core.base.store import RunDir, read_json, store_root
from core.decide import kpi
from core.decide.gate import run_gate
from core.evaluation.collect import load_counts
from core.evaluation.config import EvalConfig, SampledConfig
from core.tasks.data import sha256_of
from core.evaluation.imported import check_labels, import_doc
from core.views import fmt
from core.views.dashboard import STAT_COLUMNS, bench_files, pass_at_k_with_ci, stats_rows

COLOURS = {"SUCCESS": "#1b7f3b", "PARTIAL": "#b26a00", "FAILURE": "#b3261e"}
LIGHTS = {True: "held ✓", False: "not held ✗", None: "not measured"}
LIGHT_COLOURS = {"held ✓": "#c8e6c9", "not held ✗": "#ffcdd2", "not measured": "#eeeeee"}
EFFICIENCY_KEYS = ("latency_ms", "latency_ratio", "peak_train_ram_gb", "peak_train_ram_ratio", "throughput",
                   "throughput_ratio", "params")


def task_overlap(a: str | Path, b: str | Path) -> dict:
    """Tasks both runs have, and how many each has alone (the intersection drops those)."""
    ca, _ = load_counts(a)
    cb, _ = load_counts(b)
    return {"common": len(set(ca) & set(cb)), "only_a": len(set(ca) - set(cb)), "only_b": len(set(cb) - set(ca))}


def matching_bench(candidate: str | Path, baseline: str | Path, store: Path | None = None) -> tuple[Path | None, list[Path]]:
    """The newest bench.json holding figures of both runs' models, and the bench files that do not (which
    a screen must not show as these runs' without saying so)."""
    ma, mb = RunDir(candidate).manifest().get("model"), RunDir(baseline).manifest().get("model")
    match, foreign = None, []
    for f in sorted(bench_files(store), key=lambda p: p.stat().st_mtime, reverse=True):
        doc = read_json(f)
        if kpi.match_bench(doc, ma) is not None and kpi.match_bench(doc, mb) is not None:
            match = match or f
        else:
            foreign.append(f)
    return match, foreign


def two_run(stats: dict) -> bool:
    """Whether a stats.json was decided on the two-run protocol (a sampled pair beside the main one)."""
    return "sampled" in (stats.get("pairs") or {})


def how_to_measure(k: int = 10) -> str:
    """Where pass@k comes from, in the app's words and the pipeline's (the settings' own defaults and labels)."""
    sampled = {f.name: default_of(f) for f in fields(SampledConfig)}
    form = {f.name: f.metadata["form"] for f in fields(EvalConfig)}
    n = max(k, sampled["n"])
    return (f"the pipeline's sampled pair ([sampled] n = {n}, temperature {sampled['temperature']:g}, "
            f"top_p {sampled['top_p']:g}; on by default at n = {sampled['n']}) measures it; in the app, launch both "
            f"models on the Runs screen with {form['n']} {n}, {form['temperature']} {sampled['temperature']:g} and "
            f"{form['top_p']} {sampled['top_p']:g}, and compare those two runs")


def screen_reasons(stats: dict) -> list[str]:
    """The gate's reasons as a screen says them: a pass@k that one pair could not test is said in the app's and
    the pipeline's words (the gate's own line names the eval command's flag)."""
    reasons = (stats.get("gate") or {}).get("reasons", [])
    if two_run(stats):  # the gate's line names the pipeline's [sampled] n already
        return list(reasons)
    untested = stats.get("k_not_tested") or []
    out = [r for r in reasons if not r.startswith(tuple(f"pass@{k} not tested" for k in untested))]
    return out + [f"pass@{k} not tested: it needs {k} or more samples per task at a temperature, and these runs "
                  f"have fewer; {how_to_measure(k)}." for k in untested]


def _why_not_measured(key: str, stats: dict, bench: Path | None) -> str:
    if key in ("pass_at_10", "delta_pass_at_10"):
        if two_run(stats):
            n = (stats.get("sampled") or {}).get("min_n")
            return (f"the sampled pair has {n} sample(s) per task and pass@10 needs 10: raise the pipeline's "
                    f"[sampled] n to 10 (its default)")
        return "one sample per task: pass@10 needs 10 or more samples per task at a temperature; " + how_to_measure()
    if key in EFFICIENCY_KEYS:  # the gate's own record of its bench: a committed gate's file may be gone here
        read = bench is not None or (stats.get("inputs") or {}).get("bench")
        return ("the bench did not measure this figure" if read
                else "no bench.json holds both models' figures: launch a bench run of the two (Runs screen, kind "
                     "bench, the candidate as Model and the other as Baseline), or the pipeline's [bench] step")
    if key == "train_failures":
        return "no training runs given to the gate (the pipeline passes them)"
    return "not computed"


def _baseline_of(key: str, stats: dict, cb: dict, bb: dict) -> str:
    p1, p10 = stats.get("pass_at_1") or {}, stats.get("pass_at_10") or {}
    base = stats.get("baseline")
    return {"pass_at_1": fmt.pct(p1.get(base)), "pass_at_10": fmt.pct(p10.get(base)),
            "latency_ms": fmt.ms(bb.get("latency_ms")),
            "peak_train_ram_gb": f"{bb['peak_train_rss_mb'] / 1024:.2f} GB" if bb.get("peak_train_rss_mb") else "–",
            "throughput": f"{fmt.thousands(bb.get('throughput_tok_s'))} tok/s" if bb.get("throughput_tok_s") else "–",
            "params": fmt.mparams(bb.get("params_nonembedding"))}.get(key, "")


def kpi_lights(stats: dict, bench: Path | None = None) -> list[dict]:
    """The seed's KPI table of a decided stats.json as traffic lights: target, measured, baseline, held."""
    bench_doc = read_json(bench) if bench else {}
    models = [(stats.get("inputs") or {}).get(side, {}).get("model") for side in ("candidate", "baseline")]
    cb = kpi.match_bench(bench_doc, models[0]) or {} if bench_doc else {}
    bb = kpi.match_bench(bench_doc, models[1]) or {} if bench_doc else {}
    rows = []
    for k in (stats.get("gate") or {}).get("kpis", []):
        rows.append({"KPI": k["label"], "target": k["target"], "measured": k["shown"],
                     "baseline": _baseline_of(k["key"], stats, cb, bb), "status": LIGHTS[k["held"]],
                     "why": _why_not_measured(k["key"], stats, bench) if k["held"] is None else ""})
    return rows


def plain_reasons(stats: dict) -> list[str]:
    """The verdict in plain words: the accuracy result, what was not measured here and why it counts, then
    the gate's own reasons."""
    verdict, gate = stats.get("verdict"), stats.get("gate") or {}
    rule = {"SUCCESS": "every SUCCESS condition held.",
            "PARTIAL": "the primary KPIs hold and one group of targets is met, but not everything SUCCESS needs.",
            "FAILURE": "at least one FAILURE rule matched (kpis.toml applies SUCCESS, then FAILURE, then PARTIAL)."}
    h = headline(stats)
    p1 = stats["pass_at_1"]
    alpha = stats.get("alpha", 0.05)
    significant = p1.get("superior")
    out = [f"{verdict}: {rule.get(verdict, '')}",
           f"Accuracy: the candidate solves {h['candidate']} of the tasks, the baseline {h['baseline']}: {h['delta']} "
           f"(95% CI {h['ci']}), p = {h['p']}: "
           + ("a significant improvement" if significant else "not a significant improvement")
           + f" at alpha {alpha:g}."]
    unmeasured = {k["key"] for k in gate.get("kpis", []) if k["held"] is None}
    parts = []
    if unmeasured & {"pass_at_10", "delta_pass_at_10"}:
        parts.append(f"pass@10 (the sampled pair has {(stats.get('sampled') or {}).get('min_n')} sample(s) per task)"
                     if two_run(stats) else "pass@10 (one sample per task)")
    if unmeasured & set(EFFICIENCY_KEYS):
        parts.append("efficiency (no bench of these two models)")
    if "train_failures" in unmeasured:
        parts.append("training stability (no training runs given)")
    if parts:
        out.append("Not measured for this pair, so counted as not met: " + "; ".join(parts) + ".")
    return out + [r for r in screen_reasons(stats) if not r.startswith("not measured (counts as not met)")]


def short_path(path) -> str:
    """A file as people read it: relative to the run store or the repository where it is inside, else its
    name (never a whole path)."""
    p = Path(path).resolve()
    for root in (store_root(), REPO_ROOT):
        try:
            return str(p.relative_to(Path(root).resolve()))
        except ValueError:
            continue
    return p.name


def sources(stats: dict, computed_at: str, in_memory: bool) -> list[dict]:
    inputs = stats.get("inputs") or {}
    rows = [{"what": "computed", "value": f"{computed_at} ({'in memory, nothing written' if in_memory else 'committed'})"}]
    runs = [(side, inputs.get(side)) for side in ("candidate", "baseline")]
    runs += [(f"sampled {side}", (inputs.get("sampled") or {}).get(side)) for side in ("candidate", "baseline")]
    for what, r in runs:
        if r:
            rows.append({"what": f"{what} results", "value": f"{short_path(r.get('path', '?'))}/results.jsonl "
                                                             f"(sha256 {str(r.get('results_sha256', ''))[:12]}…)"})
    for key in ("bench", "kpis"):
        r = inputs.get(key)
        rows.append({"what": key, "value": f"{short_path(r['path'])} (sha256 {r['sha256'][:12]}…)" if r else "none"})
    if inputs.get("git_commit"):
        rows.append({"what": "code", "value": f"git {inputs['git_commit'][:12]}, tool {inputs.get('tool_version')}"})
    return rows


def pair_overview(candidate: str | Path, baseline: str | Path, store: Path | None = None, resamples: int = 2000,
                  intersection: bool = False, tz: str | None = None) -> dict:
    """Decide the pair in memory and gather what the Overview shows (times in the viewer's time zone `tz`)."""
    bench, foreign = matching_bench(candidate, baseline, store)
    result = run_gate(str(candidate), str(baseline), bench=str(bench) if bench else None, ks=(1, 10),
                      resamples=resamples, intersection=intersection)
    stats = result.stats
    accuracy = []
    for run in (candidate, baseline):
        spec = RunDir(run).manifest().get("model")
        for r in pass_at_k_with_ci(RunDir(run), ks=(1, 10), resamples=resamples):
            accuracy.append({"model": fmt.model_name(spec), "spec": spec, "metric": r["k"], "value": fmt.pct(r["value"]),
                             "95% CI": f"{fmt.pct(r['ci_low'])} – {fmt.pct(r['ci_high'])}", "tasks": r["n_tasks"]})
    labels = []
    for run in (candidate, baseline):
        doc = import_doc(run)
        if doc and doc.get("authors_labels"):
            labels.append({"run": RunDir(run).run_id, "name": fmt.model_name(RunDir(run).manifest().get("model")),
                           **check_labels(doc, run)})
    return {"stats": stats, "verdict": stats["verdict"], "colour": COLOURS[stats["verdict"]],
            "candidate": RunDir(candidate).run_id, "baseline": RunDir(baseline).run_id,
            "candidate_name": fmt.model_name(RunDir(candidate).manifest().get("model")),
            "baseline_name": fmt.model_name(RunDir(baseline).manifest().get("model")),
            "reasons": plain_reasons(stats), "kpis": kpi_lights(stats, bench), "accuracy": accuracy,
            "headline": headline(stats), "figures": pair_figures(stats), "bench": short_path(bench) if bench else None,
            "foreign_bench": [short_path(f) for f in foreign], "labels": labels,
            "sources": sources(stats, fmt.when(now_iso(), tz), in_memory=True)}


FIGURE_COLUMNS = ("delta", "95% CI", "role", "p (decides)")


def pair_figures(stats: dict) -> list[dict]:
    """pass@1, pass@10 and the sampled runs' pass@1 of both models, each named with the pair it came from and
    its role (the sampled pass@1 is descriptive, outside the verdict); [] for a stats.json of one pair, whose
    figures the screen shows as before."""
    if not two_run(stats):
        return []
    rows = stats_rows(stats)
    heads = [k for k in rows[0] if k not in ("metric",) + STAT_COLUMNS] if rows else []
    return [{"figure": r["metric"], **{h: r[h] for h in heads}, **{c: r[c] for c in FIGURE_COLUMNS}} for r in rows]


def headline(stats: dict) -> dict:
    """pass@1 of both, their difference, its CI and p, in the one format of each."""
    p1 = stats["pass_at_1"]
    a, b = stats["candidate"], stats["baseline"]
    return {"candidate": fmt.pct(p1[a]), "baseline": fmt.pct(p1[b]), "delta": fmt.pp(p1["delta"]),
            "ci": f"[{fmt.pp(p1['ci95'][0])}, {fmt.pp(p1['ci95'][1])}]",
            "p": fmt.p_value(p1.get("p_value_decision", p1["p_value"]), stats.get("resamples"),
                             p1.get("p_decision_method", "")),
            "p_method": p1.get("p_decision_method", ""), "n_tasks": p1.get("n_tasks")}


def next_step(store: Path | None = None) -> str | None:
    """What the Overview asks of someone with no pair to compare yet: "first run" (an empty store: the Runs
    screen offers the first run), "under way" (jobs are running), "another run" (fewer than two evaluated
    runs, nothing running); None once two evaluated runs are there."""
    from core.views.dashboard import eval_runs, runs_table
    from core.views.jobs import running_jobs
    root = Path(store or store_root())
    if len(eval_runs(root)) >= 2:
        return None
    if running_jobs(root):
        return "under way"
    return "another run" if runs_table(root) else "first run"


def committed_overview(results_dir: Path | None = None) -> dict | None:
    """The committed gate (results/stats.json, the one the README's badge shows), as decided then."""
    results_dir = Path(results_dir or RESULTS_DIR)
    path = results_dir / "stats.json"
    if not path.exists():
        return None
    stats = read_json(path)
    bench = (stats.get("inputs") or {}).get("bench")
    bench_path = None  # the bench the gate read, found by its sha256 where it was, or in results/
    for candidate in ([Path(bench["path"]), results_dir / "bench.json"] if bench else []):
        if candidate.is_file() and sha256_of(candidate) == bench.get("sha256"):
            bench_path = candidate
            break
    return {"stats": stats, "verdict": stats["verdict"], "colour": COLOURS[stats["verdict"]],
            "candidate": stats.get("candidate"), "baseline": stats.get("baseline"), "reasons": plain_reasons(stats),
            "candidate_name": fmt.model_name((stats.get("inputs") or {}).get("candidate", {}).get("model")),
            "baseline_name": fmt.model_name((stats.get("inputs") or {}).get("baseline", {}).get("model")),
            "kpis": kpi_lights(stats, bench_path), "accuracy": [],
            "headline": headline(stats), "figures": pair_figures(stats),
            "bench": short_path(bench["path"]) if bench else None, "foreign_bench": [],
            "labels": [], "sources": sources(stats, f"{short_path(path)} as committed", in_memory=False)}
