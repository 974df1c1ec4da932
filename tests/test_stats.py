import warnings

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from core.selfcheck.calibration import simulate
from core.decide.stats import StatsError, compare, compare_many, holm, stats_document


def random_counts(seed, n_tasks=500, n=1, shift=0.0):
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 1.4, n_tasks)
    pa = np.clip(p + shift, 0, 1)
    return ({t: (n, int(c)) for t, c in enumerate(rng.binomial(n, pa))},
            {t: (n, int(c)) for t, c in enumerate(rng.binomial(n, p))})


@pytest.mark.parametrize("samples_per_task", [1, 10])
def test_calibrated_under_the_null(samples_per_task):
    r = simulate(sims=1000, n_tasks=500, samples_per_task=samples_per_task, shift=0.0, resamples=1000, seed=1)
    assert 0.03 <= r.significant_rate <= 0.07, r
    assert r.superior_rate <= r.significant_rate / 2 + 0.005, r


@pytest.mark.parametrize("samples_per_task", [1, 10])
def test_ci_covers_a_real_effect(samples_per_task):
    r = simulate(sims=1000, n_tasks=500, samples_per_task=samples_per_task, shift=0.4, resamples=1000, seed=2)
    assert r.true_delta > 0.03
    assert 0.93 <= r.coverage <= 0.97, r


def test_ci_matches_scipy_paired_percentile_bootstrap():
    a, b = random_counts(3, shift=0.05)
    ours = compare(a, b, resamples=20_000, seed=0)
    xa = np.array([a[t][1] for t in a], float)
    xb = np.array([b[t][1] for t in b], float)
    ref = sps.bootstrap((xa, xb), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), paired=True,
                        vectorized=True, n_resamples=20_000, method="percentile", random_state=1).confidence_interval
    assert ours.delta == pytest.approx(xa.mean() - xb.mean())
    assert ours.ci95[0] == pytest.approx(ref.low, abs=0.004)
    assert ours.ci95[1] == pytest.approx(ref.high, abs=0.004)


@pytest.mark.parametrize("shift", [0.0, 0.03, 0.06])
def test_p_value_matches_scipy_permutation_test(shift):
    a, b = random_counts(4, n=5, shift=shift)
    ours = compare(a, b, resamples=20_000, seed=0)
    sa = np.array([a[t][1] / 5 for t in a])
    sb = np.array([b[t][1] / 5 for t in b])
    ref = sps.permutation_test((sa, sb), lambda x, y, axis=-1: np.mean(x - y, axis=axis), permutation_type="samples",
                               n_resamples=20_000, alternative="two-sided", random_state=2).pvalue
    tolerance = 4 * np.sqrt(max(ref, 1e-3) * (1 - ref) / 20_000) + 2e-4
    assert ours.p_value == pytest.approx(ref, abs=tolerance)


def test_mcnemar_matches_statsmodels():
    a, b = random_counts(5, n_tasks=200, shift=0.08)
    ours = compare(a, b, resamples=1000).mcnemar
    table = np.zeros((2, 2), int)
    for t in a:
        table[1 - a[t][1], 1 - b[t][1]] += 1
    ref = sm_mcnemar(table, exact=True)
    assert ours["a_only"] == table[0, 1] and ours["b_only"] == table[1, 0]
    assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_identical_inputs_are_exactly_null():
    a, _ = random_counts(6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = compare(a, dict(a), resamples=10_000)
        c_bca = compare(a, dict(a), resamples=1000, ci_method="bca")
    assert c.delta == 0 and c.ci95 == (0.0, 0.0) and c.p_value == 1.0 and not c.superior
    assert c_bca.ci95 == (0.0, 0.0)
    assert c.mcnemar["p_value"] == 1.0 and np.isfinite(c.mde) and c.mde > 0
    doc = stats_document([c], "x", "x")
    assert not any(isinstance(v, float) and np.isnan(v) for v in doc["pass_at_1"].values())


def test_p_is_never_zero_and_sign_is_right():
    a = {t: (1, 1) for t in range(300)}
    b = {t: (1, 0) for t in range(300)}
    c = compare(a, b, resamples=5000)
    assert c.p_value == pytest.approx(1 / 5001) and c.delta == 1.0 and c.superior
    c_rev = compare(b, a, resamples=5000)
    assert c_rev.delta == -1.0 and not c_rev.superior and c_rev.ci95[1] < 0


def test_bca_option_runs_and_brackets_delta():
    a, b = random_counts(7, shift=0.05)
    c = compare(a, b, resamples=2000, ci_method="bca")
    assert c.ci95[0] < c.delta < c.ci95[1] and "bca" in c.ci_method


def test_mismatched_task_sets():
    a = {1: (1, 1), 2: (1, 0), 3: (1, 1)}
    b = {2: (1, 1), 3: (1, 0), 4: (1, 0)}
    with pytest.raises(StatsError, match="1 only in A, 1 only in B"):
        compare(a, b)
    c = compare(a, b, intersection=True, resamples=200)
    assert c.n_tasks == 2 and c.tasks_dropped == {"only_a": 1, "only_b": 1}


def test_k_needs_enough_samples():
    with pytest.raises(StatsError, match="pass@10 needs at least 10 samples"):
        compare({1: (5, 1)}, {1: (5, 2)}, k=10)


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    many = compare_many(*random_counts(8, n=10, shift=0.05), ks=(1, 10), resamples=500)
    assert all(c.p_value_holm >= c.p_value for c in many)


def test_pass_at_1_is_confirmatory_unadjusted_and_other_k_are_holm_adjusted():
    """Before: the gate decided on a Holm-adjusted pass@1 p while the PDF showed the raw one."""
    rng = np.random.default_rng(3)
    a = {t: (10, int(rng.binomial(10, 0.45))) for t in range(300)}
    b = {t: (10, int(rng.binomial(10, 0.40))) for t in range(300)}
    c1, c10 = compare_many(a, b, (1, 10), resamples=2000, seed=0)
    assert c1.role == "confirmatory" and c1.p_for_decision == c1.p_value and c1.p_value_holm >= c1.p_value
    assert c10.role == "secondary" and c10.p_for_decision == c10.p_value_holm
    doc = stats_document([c1, c10], "A", "B")
    assert doc["pass_at_1"]["p_value_decision"] == c1.p_value and doc["pass_at_10"]["p_value_decision"] == c10.p_value_holm


def test_one_sample_per_task_decides_on_the_exact_mcnemar():
    a = {t: (1, int(t < 30)) for t in range(100)}
    b = {t: (1, int(t < 20)) for t in range(100)}
    c = compare(a, b, k=1, resamples=2000, seed=0)
    assert c.mcnemar["discordant"] == 10 and c.p_for_decision == c.mcnemar["p_value"] == pytest.approx(2 / 2 ** 10)
    assert "McNemar" in c.p_decision_method


def test_alpha_comes_from_the_caller_everywhere():
    """Before: with alpha 0.01 in kpis.toml the gate said PARTIAL while stats.json said superior."""
    a = {t: (1, int(t < 30)) for t in range(100)}
    b = {t: (1, int(t < 20)) for t in range(100)}  # McNemar p = 0.00195
    assert compare(a, b, resamples=2000, alpha=0.05).superior
    strict = compare(a, b, resamples=2000, alpha=0.001)
    assert not strict.superior and stats_document([strict], "A", "B")["alpha"] == 0.001


def test_p_at_its_monte_carlo_floor_is_shown_as_a_bound():
    from core.decide.stats import show_p
    assert show_p(1 / 10_001, 10_000, "sign-flip permutation") == "< 9.999e-05 (1/(B+1), B = 10,000)"
    assert show_p(0.02912, 10_000, "sign-flip permutation") == "0.02912" and show_p(None) == "not tested"
