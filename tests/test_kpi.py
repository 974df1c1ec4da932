"""Every branch of the decision framework, with the precedence written in kpis.toml."""
import pytest

from core.decide import kpi
from core.decide.stats import Comparison

CFG = kpi.load_kpis()
GOOD_BENCH = ({"latency_ms": 40.0, "peak_train_rss_mb": 3000.0, "throughput_tok_s": 1500.0, "params_nonembedding": 27_262_976},
              {"latency_ms": 100.0, "peak_train_rss_mb": 8000.0, "throughput_tok_s": 500.0})
SLOW_BENCH = ({"latency_ms": 200.0, "peak_train_rss_mb": 9000.0, "throughput_tok_s": 300.0},
              {"latency_ms": 100.0, "peak_train_rss_mb": 8000.0, "throughput_tok_s": 500.0})


def comp(k, a, b, lo, hi, p):
    return Comparison(k=k, n_tasks=500, a=a, b=b, delta=a - b, ci95=(lo, hi), ci_method="t", p_value=p,
                      p_method="t", resamples=1000, seed=0, mde=0.05, mde_method="t", mcnemar=None, tasks_dropped={})


def verdict(c1, c10=None, bench=GOOD_BENCH, train_failures=0):
    comps = {1: c1, **({10: c10} if c10 else {})}
    rows = kpi.evaluate_kpis(CFG, comps, bench[0] if bench else None, bench[1] if bench else None, train_failures)
    return kpi.decide(CFG, rows)


STRONG = comp(1, 0.40, 0.30, 0.05, 0.15, 0.001)
STRONG10 = comp(10, 0.60, 0.50, 0.04, 0.16, 0.002)


def test_success_when_every_condition_holds():
    v = verdict(STRONG, STRONG10)
    assert v.verdict == "SUCCESS" and v.exit_code == 0


def test_partial_when_only_significance_is_missing():
    v = verdict(comp(1, 0.40, 0.34, -0.01, 0.13, 0.07), STRONG10)
    assert v.verdict == "PARTIAL" and v.exit_code == 3
    assert "p-value" in v.reasons[0] and "CI lower bound" in v.reasons[0]


def test_partial_when_accuracy_holds_but_efficiency_does_not():
    v = verdict(STRONG, STRONG10, bench=SLOW_BENCH)
    assert v.verdict == "PARTIAL" and v.reasons[0].startswith("accuracy targets met")


def test_partial_when_efficiency_holds_but_pass_at_10_does_not():
    v = verdict(STRONG, comp(10, 0.44, 0.40, -0.02, 0.1, 0.2))
    assert v.verdict == "PARTIAL" and v.reasons[0].startswith("efficiency targets met")


def test_failure_when_training_unstable():
    v = verdict(STRONG, STRONG10, train_failures=1)
    assert v.verdict == "FAILURE" and v.exit_code == 4 and "training unstable" in v.reasons[0]


def test_failure_when_p_at_least_0_1():
    v = verdict(comp(1, 0.40, 0.35, -0.03, 0.12, 0.12), STRONG10)
    assert v.verdict == "FAILURE" and any("p = 0.12" in r for r in v.reasons)


def test_failure_when_a_primary_kpi_is_below_target():
    untrained = comp(1, 0.0, 0.10, -0.13, -0.07, 0.0001)  # significant, but the wrong way
    v = verdict(untrained, bench=GOOD_BENCH)
    assert v.verdict == "FAILURE"
    assert any("Pass@1 (candidate)" in r for r in v.reasons)


def test_failure_when_neither_group_is_met():
    v = verdict(STRONG, comp(10, 0.44, 0.40, -0.02, 0.1, 0.2), bench=SLOW_BENCH)
    assert v.verdict == "FAILURE" and any("neither" in r for r in v.reasons)


def test_unmeasured_efficiency_counts_as_not_met_and_says_so():
    v = verdict(STRONG, STRONG10, bench=None, train_failures=None)
    assert v.verdict == "PARTIAL"
    assert any("not measured (counts as not met)" in r and "Latency" in r for r in v.reasons)
    rows = {k.key: k for k in v.kpis}
    assert rows["latency_ms"].held is None and rows["latency_ms"].shown == "not measured"


def test_kpi_rows_carry_measured_values():
    rows = {k.key: k for k in verdict(STRONG, STRONG10).kpis}
    assert rows["latency_ratio"].measured == pytest.approx(0.4) and rows["latency_ratio"].held
    assert rows["delta_pass_at_1"].measured == pytest.approx(10.0)
    assert rows["throughput_ratio"].measured == pytest.approx(3.0)


def test_bad_kpi_file(tmp_path):
    bad = tmp_path / "k.toml"
    bad.write_text("[accuracy\n")
    with pytest.raises(kpi.UsageError, match="not valid TOML"):
        kpi.load_kpis(bad)
    with pytest.raises(kpi.UsageError, match="KPI file not found"):
        kpi.load_kpis(tmp_path / "missing.toml")


def test_bench_matching():
    bench = {"models": {"hrm:27m": {"latency_ms": 1}, "hf-arch:gpt2": {"latency_ms": 2}}}
    assert kpi.match_bench(bench, "hrm:27m") == {"latency_ms": 1}
    assert kpi.match_bench(bench, "hf:gpt2") == {"latency_ms": 2}
    assert kpi.match_bench(bench, "oracle") is None
