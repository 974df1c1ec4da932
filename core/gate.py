"""The release gate: two runs (+ bench figures, training runs) -> KPI table and verdict.

Writes stats.json (the significance test in the seed's shape) with the verdict and every KPI
filled in. release_outputs publishes it (badge, copies) and, for Gate C7, writes the summary PDF
and tags the release on SUCCESS only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import kpi
from core.collect import load_counts
from core.errors import UsageError
from core.stats import compare_many, stats_document
from core.store import RunDir, atomic_write_json, read_json


@dataclass
class GateResult:
    verdict: kpi.Verdict
    stats: dict
    stats_path: Path
    text: str


def _model_of(run: str) -> str | None:
    r = RunDir(run)
    return r.manifest().get("model") if r.path.is_dir() and r.exists() else None


def count_train_failures(train_runs) -> int | None:
    if train_runs is None:
        return None
    failures = 0
    for path in train_runs:
        r = RunDir(path)
        if not r.exists():
            raise UsageError(f"{path} is not a run directory (no manifest.json)")
        failures += r.status() in ("failed", "interrupted")
    return failures


@dataclass
class Paired:
    """Candidate vs baseline, paired by task, for every k both runs have samples enough for."""
    comparisons: list
    label_a: str
    label_b: str
    min_n: int
    untested: list[int]

    def document(self, intersection: bool = False) -> dict:
        return stats_document(self.comparisons, self.label_a, self.label_b, intersection)


def paired_comparisons(candidate: str, baseline: str, ks=(1, 10), resamples: int = 10_000, seed: int = 0,
                       intersection: bool = False) -> Paired:
    a, label_a = load_counts(candidate)
    b, label_b = load_counts(baseline)
    min_n = min(n for counts in (a, b) for n, _ in counts.values())
    usable = [k for k in ks if k <= min_n]
    if 1 not in usable:
        raise UsageError("the gate needs pass@1: both runs must have at least one sample per task")
    comparisons = compare_many(a, b, usable, resamples=resamples, seed=seed, intersection=intersection)
    return Paired(comparisons, label_a, label_b, min_n, [k for k in ks if k not in usable])


def run_gate(candidate: str, baseline: str, bench: str | None = None, kpis: str | None = None,
             train_runs=None, ks=(1, 10), resamples: int = 10_000, seed: int = 0, intersection: bool = False,
             out: str | None = None, write: bool = True) -> GateResult:
    """The verdict; written into stats.json (`out`, default the candidate's) unless write is False."""
    cfg = kpi.load_kpis(kpis)
    paired = paired_comparisons(candidate, baseline, ks, resamples, seed, intersection)
    comparisons, label_a, label_b = paired.comparisons, paired.label_a, paired.label_b
    by_k = {c.k: c for c in comparisons}
    cand_bench = base_bench = None
    bench_doc = None
    if bench:
        bench_doc = read_json(Path(bench))
        cand_bench = kpi.match_bench(bench_doc, _model_of(candidate))
        base_bench = kpi.match_bench(bench_doc, _model_of(baseline))
    kpis_rows = kpi.evaluate_kpis(cfg, by_k, cand_bench, base_bench, count_train_failures(train_runs))
    verdict = kpi.decide(cfg, kpis_rows)
    verdict.reasons += [f"pass@{k} not tested: the runs have only {paired.min_n} sample(s) per task; eval with "
                        f"--n {k} or more" for k in paired.untested]
    doc = paired.document(intersection)
    doc.update(verdict=verdict.verdict, gate=verdict.to_dict(), k_not_tested=paired.untested,
               bench_machine=(bench_doc or {}).get("machine"))
    stats_path = Path(out) if out else (Path(candidate) / "stats.json" if Path(candidate).is_dir() else Path("stats.json"))
    if write:
        atomic_write_json(stats_path, doc)
    header = (f"candidate {label_a} vs baseline {label_b}: {comparisons[0].n_tasks} paired tasks, "
              f"{resamples} resamples, seed {seed}")
    return GateResult(verdict, doc, stats_path, header + "\n\n" + kpi.format_table(verdict))


def release_outputs(result: GateResult, candidate: str, baseline: str, results_dir: str, bench: str | None = None,
                    kpis: str | None = None, train_runs=None, release: bool = False, tag: str = "v0.3.0",
                    repo_dir: str = ".", run_url: str | None = None) -> list[str]:
    """Publish the gate's outcome into results_dir (and the README's badge block beside it); with release,
    also the summary PDF and (SUCCESS only) the tag. Returns one line per thing done, for the CLI and pipeline."""
    from core import release as rel
    target = kpi.load_kpis(kpis)["accuracy"]["pass_at_1_min"]
    written = rel.publish(results_dir, result.stats, candidate, target)
    lines = [f"published {', '.join(str(p) for p in written)}"]
    readme = Path(results_dir).resolve().parent / "README.md"
    if rel.update_readme(readme, Path(results_dir).resolve(), result.stats, run_url,
                         (_model_of(candidate), _model_of(baseline))):
        lines.append(f"updated the badge block of {readme}")
    if not release:
        return lines
    from core.report import build_report
    pdf = build_report(candidate, baseline, Path(results_dir) / "summary.pdf", bench=bench,
                       train_run=(train_runs or [None])[0], gate=result)
    lines.append(f"wrote {pdf}")
    if result.verdict.verdict != "SUCCESS":
        lines.append(f"not tagged: the verdict is {result.verdict.verdict}; only SUCCESS makes release {tag}")
        return lines
    summary = rel.candidate_pass_at_1(result.stats)
    message = (f"HRM-CodeGen Gate SUCCESS: candidate {result.stats.get('candidate')} pass@1 "
               f"{100 * (summary or 0):.1f}% vs baseline {result.stats.get('baseline')}, "
               f"delta {100 * result.stats['pass_at_1']['delta']:+.1f} pp, p {result.stats['pass_at_1']['p_value']:.4g}")
    t = rel.tag_release(repo_dir, tag, message)
    lines.append(f"tagged {t.tag} at {t.commit[:12]}" + ("" if t.created else " (already there)")
                 + f"; push it with: git push origin {t.tag}")
    return lines
