"""The release gate: two runs (+ bench figures, training runs) -> KPI table and verdict.

The standard two-run protocol adds a second, sampled pair of the same two models (decide's `sampled`):
pass@1, its delta (the primary KPI), p, CI and power come from the main pair (greedy, n = 1), pass@k for
every k > 1 from the sampled pair (e.g. T = 0.8, n = 10), whose own pass@1 is kept in stats.json as
"sampled_pass_at_1", labelled and not used for the verdict. "pairs" and "sources" say which runs, under
which sampling, each figure came from.

Deciding returns a value, a GateResult whose `stats` is the stats.json document (the significance
test in the seed's shape with the verdict and every KPI filled in). Nothing here publishes:
core.publish reads that value (or the stats.json written from it) and never decides again.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from core.base.errors import UsageError
from core.base.store import RunDir, atomic_write_json, read_json
from core.decide import comparable, kpi, provenance
from core.decide.stats import Comparison, compare_many, holm, stats_document
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


SAMPLED_ROLE = "descriptive: the sampled pair's pass@1, not used for the verdict"


def sampling(record: dict) -> dict:
    """n, temperature and top_p of a run, from its provenance record (None where unknown: a samples file)."""
    p = record.get("protocol") or {}
    return {k: p.get(k) for k in ("n", "temperature", "top_p")}


def describe_sampling(pair: dict) -> str:
    """A pair's sampling for people: 'greedy, n 1' or 'T 0.8, top_p 0.95, n 10'."""
    t = pair.get("temperature")
    if t is None:
        return "sampling unknown (samples file)"
    return f"greedy, n {pair.get('n')}" if t == 0 else f"T {t:g}, top_p {pair.get('top_p'):g}, n {pair.get('n')}"


def metric_label(stats: dict, key: str) -> str:
    """A statistics row's name with the pair it came from: 'pass@10 (sampled pair: T 0.8, top_p 0.95, n 10)'."""
    pairs, source = stats.get("pairs") or {}, (stats.get("sources") or {}).get(key)
    name = "pass@1 of the sampled runs" if key == "sampled_pass_at_1" else key.replace("_at_", "@")
    if "sampled" not in pairs or source not in pairs:
        return name
    note = "; not used for the verdict" if key == "sampled_pass_at_1" else ""
    return f"{name} ({source} pair: {describe_sampling(pairs[source])}{note})"


def two_run_note(stats: dict) -> str:
    """How a two-run stats.json splits its figures between its pairs, in one sentence for people."""
    pairs = stats["pairs"]
    return (f"Two-run protocol: pass@1, its delta, p, CI and power from the main pair ({describe_sampling(pairs['main'])}); "
            f"pass@k for k > 1 from the sampled pair ({describe_sampling(pairs['sampled'])}), whose own pass@1 is shown "
            "for reference and does not enter the verdict. Both pairs: the same models, prompts and data.")


def combine(main: Paired, sampled: Paired) -> list[Comparison]:
    """pass@1 from the main pair, every k > 1 from the sampled pair, Holm applied again over the k's so chosen
    (the family that decides; the sampled pass@1 is descriptive and outside it)."""
    chosen = [replace(c) for c in main.comparisons if c.k == 1] + [replace(c) for c in sampled.comparisons if c.k > 1]
    adjusted = holm([c.p_value for c in chosen]) if len(chosen) > 1 else [None] * len(chosen)
    for c, adj in zip(chosen, adjusted):
        c.p_value_holm = adj
    return chosen


def _pairs(main: Paired, sampled: Paired | None, ks) -> tuple[dict, dict]:
    """stats.json's "pairs" (each pair's runs and sampling) and "sources" (the pair each figure came from)."""
    pairs = {"main": {"candidate": main.inputs["candidate"]["path"], "baseline": main.inputs["baseline"]["path"],
                      **sampling(main.inputs["candidate"])}}
    sources = {f"pass_at_{c.k}": "main" for c in main.comparisons}
    if sampled is not None:
        pairs["sampled"] = {"candidate": sampled.inputs["candidate"]["path"],
                            "baseline": sampled.inputs["baseline"]["path"], **sampling(sampled.inputs["candidate"])}
        sources = {f"pass_at_{k}": "main" if k == 1 else "sampled" for k in ks
                   if any(c.k == k for c in (main.comparisons if k == 1 else sampled.comparisons))}
        if any(c.k == 1 for c in sampled.comparisons):
            sources["sampled_pass_at_1"] = "sampled"
    return pairs, sources


def decide(paired: Paired, candidate: str, baseline: str, bench: str | None = None, kpis: str | None = None,
           train_runs=None, sampled: Paired | None = None) -> GateResult:
    """Apply kpis.toml and the decision framework to a paired comparison already made; `sampled`: the
    two-run protocol's sampled pair, compared already too (it gives every k > 1)."""
    cfg = kpi.load_kpis(kpis)
    comparisons, untested = paired.comparisons, paired.untested
    ks = paired.inputs["settings"]["ks"]
    if sampled is not None:
        comparisons = combine(paired, sampled)
        untested = [k for k in ks if k not in {c.k for c in comparisons}]
    by_k = {c.k: c for c in comparisons}
    cand_bench = base_bench = bench_doc = None
    if bench:
        bench_doc = read_json(Path(bench))
        cand_bench = kpi.match_bench(bench_doc, model_of(candidate))
        base_bench = kpi.match_bench(bench_doc, model_of(baseline))
    rows = kpi.evaluate_kpis(cfg, by_k, cand_bench, base_bench, count_train_failures(train_runs))
    if sampled is not None:  # every surface that shows the KPI table shows where pass@10 came from
        how = describe_sampling(sampling(sampled.inputs["candidate"]))
        for row in rows:
            if row.key in ("pass_at_10", "delta_pass_at_10"):
                row.label += f" [sampled pair: {how}]"
    verdict = kpi.decide(cfg, rows)
    if sampled is None:
        verdict.reasons += [f"pass@{k} not tested: the runs have only {paired.min_n} sample(s) per task; eval with "
                            f"--n {k} or more" for k in untested]
    else:
        verdict.reasons += [f"pass@{k} not tested: the sampled runs have only {sampled.min_n} sample(s) per task; "
                            f"raise [sampled] n to {k} or more" for k in untested]
    power = power_of(paired.pass_at_1, cfg)
    if power["underpowered"]:
        verdict.reasons.append(
            f"underpowered: with {power['n_tasks']} tasks this comparison detects a pass@1 difference of "
            f"{power['mde_pp']:.1f} pp with 80% power at alpha {power['alpha']:g}, more than the target delta of "
            f"{power['target_delta_pp']:g} pp; evaluate more tasks or more samples per task")
    doc = stats_document(comparisons, paired.label_a, paired.label_b, paired.intersection)
    doc.update(comparability=paired.comparability, inputs=dict(paired.inputs))
    doc["inputs"].update(bench=provenance.file_record(bench), kpis=provenance.file_record(kpis or kpi.DEFAULT_KPIS),
                         train_runs=list(train_runs) if train_runs else None)
    if sampled is not None:
        _add_sampled(doc, sampled)
    doc["pairs"], doc["sources"] = _pairs(paired, sampled, ks)
    doc.update(verdict=verdict.verdict, gate=verdict.to_dict(), k_not_tested=untested, power=power,
               bench_machine=(bench_doc or {}).get("machine"))
    first = paired.comparisons[0]
    header = (f"candidate {paired.label_a} vs baseline {paired.label_b}: {first.n_tasks} paired tasks, "
              f"{first.resamples} resamples, seed {first.seed}")
    return GateResult(verdict, doc, header + "\n\n" + kpi.format_table(verdict))


def _add_sampled(doc: dict, sampled: Paired) -> None:
    """The sampled pair's own record in stats.json: its pass@1 (labelled, in the main pair's names), its
    comparability, McNemar and MDE, and its runs' provenance."""
    s1 = next((c for c in sampled.comparisons if c.k == 1), None)
    if s1 is not None:
        entry = stats_document([replace(s1, p_value_holm=None)], doc["candidate"], doc["baseline"])["pass_at_1"]
        doc["sampled_pass_at_1"] = {**entry, "role": SAMPLED_ROLE}
    doc["mcnemar"].update({"sampled_pass_at_1": s1.mcnemar} if s1 is not None and s1.mcnemar else {})
    doc["sampled"] = {"candidate": sampled.label_a, "baseline": sampled.label_b, "n_tasks": sampled.comparisons[0].n_tasks,
                      "min_n": sampled.min_n, "comparability": sampled.comparability,
                      "mde_sampled_pass_at_1": s1.mde if s1 is not None else None}
    doc["inputs"]["sampled"] = {side: sampled.inputs[side] for side in ("candidate", "baseline")}


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


def compare_sampled(candidate: str, baseline: str, sampled: tuple[str, str], ks=(1, 10), resamples: int = 10_000,
                    seed: int = 0, intersection: bool = False, alpha: float | None = None, allow_mismatch=(),
                    kpis: str | None = None) -> Paired:
    """The two-run protocol's sampled pair, compared once (comparable.check on the pair itself, and each side
    checked against its main run: the same model and protocol but for the sampling)."""
    comparable.check_pairs((candidate, baseline), sampled, allow_mismatch)
    return paired_comparisons(sampled[0], sampled[1], ks, resamples, seed, intersection, alpha=alpha,
                              require_pass_at_1=False, allow_mismatch=allow_mismatch, kpis=kpis)


def run_gate(candidate: str, baseline: str, bench: str | None = None, kpis: str | None = None,
             train_runs=None, ks=(1, 10), resamples: int = 10_000, seed: int = 0,
             intersection: bool = False, allow_mismatch=(), sampled: tuple[str, str] | None = None) -> GateResult:
    """Compare and decide in one call; `sampled` (candidate, baseline): the two-run protocol's sampled pair.
    Writes nothing: save_stats writes the result where wanted."""
    alpha = kpi.load_kpis(kpis)["significance"]["alpha"]
    paired = paired_comparisons(candidate, baseline, ks, resamples, seed, intersection, alpha=alpha,
                                allow_mismatch=allow_mismatch, kpis=kpis)
    pair = None
    if sampled:
        pair = compare_sampled(candidate, baseline, sampled, ks, resamples, seed, intersection, alpha,
                               allow_mismatch, kpis)
    return decide(paired, candidate, baseline, bench, kpis, train_runs, sampled=pair)


def default_stats_path(candidate: str) -> Path:
    return Path(candidate) / "stats.json" if Path(candidate).is_dir() else Path("stats.json")


def save_stats(doc: dict, path: str | Path) -> Path:
    """The one writer of a stats.json: the decided (or, from `stats`, the compared) document."""
    atomic_write_json(Path(path), doc)
    return Path(path)
