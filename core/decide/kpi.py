"""KPI thresholds (kpis.toml) and the decision framework -> SUCCESS | PARTIAL | FAILURE.

The precedence of the overlapping rules is written in kpis.toml's header; `decide` applies it
and lists every condition with its measured value and whether it held. Anything not measured
counts as not met, and says so.
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from core.base.errors import UsageError
from core.base.settings import EXIT_CODES, KPIS_PATH
from core.decide.stats import Comparison, show_p

DEFAULT_KPIS = KPIS_PATH


@dataclass
class Kpi:
    key: str
    label: str
    target: str
    measured: float | None
    shown: str
    held: bool | None  # None: not measured (counts as not met)
    group: str

    @property
    def met(self) -> bool:
        return bool(self.held)


@dataclass
class Verdict:
    verdict: str
    reasons: list[str]
    kpis: list[Kpi]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "reasons": self.reasons,
                "kpis": [{**asdict(k), "met": k.met} for k in self.kpis]}


def load_kpis(path: str | Path | None = None) -> dict:
    p = Path(path) if path else DEFAULT_KPIS
    try:
        with open(p, "rb") as fh:
            cfg = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"KPI file not found: {p}; pass --kpis FILE or restore kpis.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: not valid TOML ({exc})") from None
    for section in ("accuracy", "efficiency", "significance", "stability", "decision"):
        if section not in cfg:
            raise UsageError(f"{p}: missing section [{section}]; see the repository's kpis.toml")
    return cfg


def _pct(x):
    return "not measured" if x is None else f"{100 * x:.1f}%"


def _kpi(key, label, target, value, held_fn, shown, group) -> Kpi:
    held = None if value is None else bool(held_fn(value))
    return Kpi(key, label, target, value, shown if value is not None else "not measured", held, group)


def evaluate_kpis(cfg: dict, comparisons: dict[int, Comparison], candidate_bench: dict | None = None,
                  baseline_bench: dict | None = None, train_failures: int | None = None) -> list[Kpi]:
    acc, eff, sig = cfg["accuracy"], cfg["efficiency"], cfg["significance"]
    c1, c10 = comparisons.get(1), comparisons.get(10)
    cb, bb = candidate_bench or {}, baseline_bench or {}

    def ratio(key):
        a, b = cb.get(key), bb.get(key)
        return a / b if a is not None and b else None

    ram_c = cb.get("peak_train_rss_mb")
    kpis = [
        _kpi("pass_at_1", "Pass@1 (candidate)", f">= {_pct(acc['pass_at_1_min'])}", c1 and c1.a,
             lambda v: v >= acc["pass_at_1_min"], _pct(c1 and c1.a), "accuracy"),
        _kpi("pass_at_10", "Pass@10 (candidate)", f">= {_pct(acc['pass_at_10_min'])}", c10 and c10.a,
             lambda v: v >= acc["pass_at_10_min"], _pct(c10 and c10.a), "accuracy"),
        _kpi("delta_pass_at_1", "delta Pass@1 vs baseline", f">= {acc['delta_pass_at_1_min_pp']:g} pp",
             c1 and 100 * c1.delta, lambda v: v >= acc["delta_pass_at_1_min_pp"],
             c1 and f"{100 * c1.delta:+.1f} pp (baseline {_pct(c1.b)})", "accuracy"),
        _kpi("delta_pass_at_10", "delta Pass@10 vs baseline", f">= {acc['delta_pass_at_10_min_pp']:g} pp",
             c10 and 100 * c10.delta, lambda v: v >= acc["delta_pass_at_10_min_pp"],
             c10 and f"{100 * c10.delta:+.1f} pp (baseline {_pct(c10.b)})", "accuracy (reported)"),
        _kpi("ci_lower", "95% CI lower bound of delta Pass@1", "> 0", c1 and c1.ci95[0], lambda v: v > 0,
             c1 and f"[{100 * c1.ci95[0]:+.1f}, {100 * c1.ci95[1]:+.1f}] pp", "significance"),
        _kpi("p_value", "p-value of delta Pass@1", f"< {sig['alpha']:g}", c1 and c1.p_for_decision,
             lambda v: v < sig["alpha"], c1 and f"{show_p(c1.p_for_decision, c1.resamples, c1.p_decision_method)} "
                                                 f"({c1.p_decision_method})", "significance"),
        _kpi("latency_ms", "Latency, 512-token prefill", f"<= {eff['latency_ms_max']:g} ms", cb.get("latency_ms"),
             lambda v: v <= eff["latency_ms_max"], f"{cb.get('latency_ms') or 0:.1f} ms", "efficiency"),
        _kpi("latency_ratio", "Latency vs baseline", f"<= {100 * eff['latency_ratio_max']:.0f}%", ratio("latency_ms"),
             lambda v: v <= eff["latency_ratio_max"], f"{100 * (ratio('latency_ms') or 0):.0f}%", "efficiency"),
        _kpi("peak_train_ram_gb", "Peak training RAM", f"<= {eff['peak_train_ram_gb_max']:g} GB",
             ram_c and ram_c / 1024, lambda v: v <= eff["peak_train_ram_gb_max"], f"{(ram_c or 0) / 1024:.2f} GB",
             "efficiency"),
        _kpi("peak_train_ram_ratio", "Peak training RAM vs baseline", f"<= {100 * eff['peak_train_ram_ratio_max']:.0f}%",
             ratio("peak_train_rss_mb"), lambda v: v <= eff["peak_train_ram_ratio_max"],
             f"{100 * (ratio('peak_train_rss_mb') or 0):.0f}%", "efficiency"),
        _kpi("throughput", "Throughput (batch 8, 256 new tokens)", f">= {eff['throughput_tok_s_min']:g} tok/s",
             cb.get("throughput_tok_s"), lambda v: v >= eff["throughput_tok_s_min"],
             f"{cb.get('throughput_tok_s') or 0:.0f} tok/s", "efficiency (reported)"),
        _kpi("throughput_ratio", "Throughput vs baseline", f">= {eff['throughput_ratio_min']:g}x",
             ratio("throughput_tok_s"), lambda v: v >= eff["throughput_ratio_min"],
             f"{ratio('throughput_tok_s') or 0:.2f}x", "efficiency (reported)"),
        _kpi("params", "Parameters (non-embedding)", f"<= {eff['params_nonembedding_max'] / 1e6:g}M",
             cb.get("params_nonembedding"), lambda v: v <= eff["params_nonembedding_max"],
             f"{(cb.get('params_nonembedding') or 0) / 1e6:.2f}M", "efficiency (reported)"),
        _kpi("train_failures", "Failed training runs", f"<= {cfg['stability']['train_failures_max']}", train_failures,
             lambda v: v <= cfg["stability"]["train_failures_max"], f"{train_failures}", "stability"),
    ]
    return kpis


def decide(cfg: dict, kpis: list[Kpi]) -> Verdict:
    by = {k.key: k for k in kpis}
    dec, sig = cfg["decision"], cfg["significance"]
    success_keys = (list(dec["accuracy_group"]) + list(dec["efficiency_group"]) +
                    ["ci_lower", "p_value", "train_failures"])
    unmeasured = [by[key].label for key in success_keys if by[key].held is None]
    group_met = {g: all(by[key].met for key in dec[f"{g}_group"]) for g in ("accuracy", "efficiency")}
    notes = [f"not measured (counts as not met): {', '.join(unmeasured)}"] if unmeasured else []

    if all(by[key].met for key in success_keys):
        return Verdict("SUCCESS", ["every SUCCESS condition held"] + notes, kpis)
    failure = []
    if by["train_failures"].held is False:
        failure.append(f"training unstable: {by['train_failures'].shown} failed training run(s)")
    p = by["p_value"].measured
    if p is None:
        failure.append("no p-value: the significance test could not run")
    elif p >= sig["failure_p"]:
        failure.append(f"p = {p:.4g} >= {sig['failure_p']:g}")
    failure += [f"primary KPI below target: {by[key].label} {by[key].shown} (target {by[key].target})"
                for key in dec["primary"] if not by[key].met]
    if not any(group_met.values()):
        failure.append("neither the accuracy targets nor the efficiency targets are all met")
    if failure:
        return Verdict("FAILURE", failure + notes, kpis)
    missing = [f"{by[key].label}: {by[key].shown} (target {by[key].target})" for key in success_keys if not by[key].met]
    met = " and ".join(g for g, ok in group_met.items() if ok)
    return Verdict("PARTIAL", [f"{met} targets met, but not: " + "; ".join(missing)] + notes, kpis)


def match_bench(bench: dict, model: str | None) -> dict | None:
    """A model's figures in bench.json: the same spec, or the same architecture (hf:X <-> hf-arch:X)."""
    models = bench.get("models", {})
    if not model:
        return None
    if model in models:
        return models[model]
    arg = model.split(":", 1)[-1]
    for spec, figures in models.items():
        if spec.split(":", 1)[-1] == arg and spec.split(":", 1)[0] in ("hf", "hf-arch"):
            return figures
    return None


def format_table(verdict: Verdict) -> str:
    rows = [("KPI", "target", "measured", "held")]
    for k in verdict.kpis:
        rows.append((k.label, k.target, k.shown, "not measured" if k.held is None else ("yes" if k.held else "NO")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"verdict: {verdict.verdict}")
    lines += [f"  - {r}" for r in verdict.reasons]
    return "\n".join(lines)


def format_efficiency(bench: dict, kpis: str | None = None) -> str:
    """The seed's efficiency rows of a bench.json: its first model (candidate) against its last (baseline)."""
    cand, base = bench["candidate"], bench["baseline"]
    if cand == base:
        return ""
    rows = [k for k in evaluate_kpis(load_kpis(kpis), {}, bench["models"][cand], bench["models"][base], None)
            if k.group.startswith("efficiency")]
    width = max(len(k.label) for k in rows)
    lines = [f"{cand} (candidate) vs {base} (baseline), measured side by side in this run:"]
    for k in rows:
        held = "not measured" if k.held is None else ("held" if k.held else "NOT held")
        lines.append(f"  {k.label:{width}s}  target {k.target:>14s}  measured {k.shown:>12s}  {held}")
    return "\n".join(lines)
