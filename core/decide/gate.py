"""The release gate: two runs (+ bench figures, training runs) -> KPI table and verdict.

Deciding returns a value, a GateResult whose `stats` is the stats.json document (the significance
test in the seed's shape with the verdict and every KPI filled in). Nothing here publishes:
core.publish reads that value (or the stats.json written from it) and never decides again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UsageError
from core.base.store import RunDir, atomic_write_json, read_json
from core.decide import comparable, kpi, provenance
from core.decide.stats import compare_many, stats_document
from core.evaluation.collect import load_counts


@dataclass
class GateResult:
    verdict: kpi.Verdict
    stats: dict
    text: str

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code


def model_of(run: str | Path) -> str | None:
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
    intersection: bool
    comparability: dict
    inputs: dict

    @property
    def pass_at_1(self):
        """The confirmatory comparison (whatever order the k's were given in)."""
        return next(c for c in self.comparisons if c.k == 1)

    def document(self) -> dict:
        doc = stats_document(self.comparisons, self.label_a, self.label_b, self.intersection)
        doc.update(comparability=self.comparability, inputs=self.inputs)
        return doc


def paired_comparisons(candidate: str, baseline: str, ks=(1, 10), resamples: int = 10_000, seed: int = 0,
                       intersection: bool = False, alpha: float | None = None, ci_method: str = "percentile",
                       require_pass_at_1: bool = True, allow_mismatch=(), kpis: str | None = None) -> Paired:
    """The paired bootstrap and permutation test: the one expensive step of deciding. Runs whose
    protocols differ, or that did not finish, are refused first (core.decide.comparable)."""
    a, label_a = load_counts(candidate)
    b, label_b = load_counts(baseline)
    comparability = comparable.check(candidate, baseline, allow_mismatch)
    min_n = min(n for counts in (a, b) for n, _ in counts.values())
    usable = [k for k in ks if k <= min_n]
    if require_pass_at_1 and 1 not in usable:
        raise UsageError("the gate needs pass@1: both runs must have at least one sample per task")
    if not usable:
        raise UsageError(f"no k of {list(ks)} has enough samples: the runs have {min_n} per task")
    extra = {"alpha": alpha} if alpha is not None else {}
    comparisons = compare_many(a, b, usable, resamples=resamples, seed=seed, intersection=intersection,
                               ci_method=ci_method, **extra)
    settings = {"ks": list(ks), "resamples": resamples, "seed": seed, "intersection": intersection,
                "ci_method": ci_method, "allow_mismatch": list(allow_mismatch or ())}
    return Paired(comparisons, label_a, label_b, min_n, [k for k in ks if k not in usable], intersection,
                  comparability, provenance.record(candidate, baseline, settings, kpis=kpis))


def decide(paired: Paired, candidate: str, baseline: str, bench: str | None = None, kpis: str | None = None,
           train_runs=None) -> GateResult:
    """Apply kpis.toml and the decision framework to a paired comparison already made."""
    cfg = kpi.load_kpis(kpis)
    by_k = {c.k: c for c in paired.comparisons}
    cand_bench = base_bench = bench_doc = None
    if bench:
        bench_doc = read_json(Path(bench))
        cand_bench = kpi.match_bench(bench_doc, model_of(candidate))
        base_bench = kpi.match_bench(bench_doc, model_of(baseline))
    rows = kpi.evaluate_kpis(cfg, by_k, cand_bench, base_bench, count_train_failures(train_runs))
    verdict = kpi.decide(cfg, rows)
    verdict.reasons += [f"pass@{k} not tested: the runs have only {paired.min_n} sample(s) per task; eval with "
                        f"--n {k} or more" for k in paired.untested]
    power = power_of(paired.pass_at_1, cfg)
    if power["underpowered"]:
        verdict.reasons.append(
            f"underpowered: with {power['n_tasks']} tasks this comparison detects a pass@1 difference of "
            f"{power['mde_pp']:.1f} pp with 80% power at alpha {power['alpha']:g}, more than the target delta of "
            f"{power['target_delta_pp']:g} pp; evaluate more tasks or more samples per task")
    doc = paired.document()
    doc["inputs"].update(bench=provenance.file_record(bench), kpis=provenance.file_record(kpis or kpi.DEFAULT_KPIS),
                         train_runs=list(train_runs) if train_runs else None)
    doc.update(verdict=verdict.verdict, gate=verdict.to_dict(), k_not_tested=paired.untested, power=power,
               bench_machine=(bench_doc or {}).get("machine"))
    first = paired.comparisons[0]
    header = (f"candidate {paired.label_a} vs baseline {paired.label_b}: {first.n_tasks} paired tasks, "
              f"{first.resamples} resamples, seed {first.seed}")
    return GateResult(verdict, doc, header + "\n\n" + kpi.format_table(verdict))


def power_of(c1, cfg: dict) -> dict:
    """The minimum detectable pass@1 difference (80% power, the gate's alpha) against the target delta."""
    target = cfg["accuracy"]["delta_pass_at_1_min_pp"]
    return {"n_tasks": c1.n_tasks, "alpha": c1.alpha, "power": 0.8, "mde_pp": round(100 * c1.mde, 2),
            "target_delta_pp": target, "underpowered": 100 * c1.mde > target, "method": c1.mde_method}


def describe_power(stats: dict) -> str:
    """The power line every surface shows beside the verdict."""
    p = stats.get("power")
    if not p:
        return "power: not computed"
    return (f"power: this comparison detects a pass@1 difference of {p['mde_pp']:.1f} pp with 80% power at alpha "
            f"{p['alpha']:g} ({p['n_tasks']} tasks); target delta {p['target_delta_pp']:g} pp: "
            + ("UNDERPOWERED" if p["underpowered"] else "adequately powered"))


def run_gate(candidate: str, baseline: str, bench: str | None = None, kpis: str | None = None,
             train_runs=None, ks=(1, 10), resamples: int = 10_000, seed: int = 0,
             intersection: bool = False, allow_mismatch=()) -> GateResult:
    """Compare and decide in one call. Writes nothing: save_stats writes the result where wanted."""
    alpha = kpi.load_kpis(kpis)["significance"]["alpha"]
    paired = paired_comparisons(candidate, baseline, ks, resamples, seed, intersection, alpha=alpha,
                                allow_mismatch=allow_mismatch, kpis=kpis)
    return decide(paired, candidate, baseline, bench, kpis, train_runs)


def default_stats_path(candidate: str) -> Path:
    return Path(candidate) / "stats.json" if Path(candidate).is_dir() else Path("stats.json")


def save_stats(doc: dict, path: str | Path) -> Path:
    """The one writer of a stats.json: the decided (or, from `stats`, the compared) document."""
    atomic_write_json(Path(path), doc)
    return Path(path)
