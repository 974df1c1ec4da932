"""Calibration of core.decide.stats by simulation, and its speed beside scipy's bootstrap.

Two models with the same per-task success probability (tasks differ a lot in difficulty,
and both models share each task's difficulty: the correlation a paired test must handle)
should be declared different in about 5% of comparisons, and "superior" in about half of
that. With a real effect, the 95% CI should cover the true delta about 95% of the time.
`python -m core bench-stats` runs the full version; tests run a quicker one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from core.base.settings import ALPHA
from core.decide.stats import compare

BETA_A, BETA_B = 0.6, 1.4  # per-task difficulty: mean pass rate 0.3, most tasks near 0 or 1


@dataclass
class CalibrationResult:
    sims: int
    n_tasks: int
    samples_per_task: int
    shift: float
    true_delta: float
    significant_rate: float
    superior_rate: float
    coverage: float


def _pass_probs(rng, n_tasks, shift):
    base = rng.beta(BETA_A, BETA_B, n_tasks)
    if shift == 0:
        return base, base
    logit = np.log(np.clip(base, 1e-9, 1 - 1e-9) / np.clip(1 - base, 1e-9, 1))
    return 1 / (1 + np.exp(-(logit + shift))), base


def true_delta(shift: float, draws: int = 2_000_000, seed: int = 12345) -> float:
    """E over tasks of pA - pB: the population delta of pass@1 that the CI targets."""
    pa, pb = _pass_probs(np.random.default_rng(seed), draws, shift)
    return float(np.mean(pa - pb))


def simulate(sims: int = 1000, n_tasks: int = 500, samples_per_task: int = 1, shift: float = 0.0,
             resamples: int = 1000, seed: int = 0) -> CalibrationResult:
    rng = np.random.default_rng(seed)
    truth = true_delta(shift)
    significant = superior = covered = 0
    for i in range(sims):
        pa, pb = _pass_probs(rng, n_tasks, shift)
        ca = rng.binomial(samples_per_task, pa)
        cb = rng.binomial(samples_per_task, pb)
        a = {t: (samples_per_task, int(c)) for t, c in enumerate(ca)}
        b = {t: (samples_per_task, int(c)) for t, c in enumerate(cb)}
        c = compare(a, b, k=1, resamples=resamples, seed=seed * 100_003 + i)
        significant += c.p_value < ALPHA
        superior += c.superior
        covered += c.ci95[0] <= truth <= c.ci95[1]
    return CalibrationResult(sims, n_tasks, samples_per_task, shift, truth, significant / sims, superior / sims,
                             covered / sims)


def speed(n_tasks: int = 500, resamples: int = 10_000, repeats: int = 5, seed: int = 0) -> dict:
    """Median wall time of our paired bootstrap and of scipy.stats.bootstrap on the same work."""
    rng = np.random.default_rng(seed)
    p = rng.beta(BETA_A, BETA_B, n_tasks)
    a = {t: (1, int(c)) for t, c in enumerate(rng.binomial(1, p))}
    b = {t: (1, int(c)) for t, c in enumerate(rng.binomial(1, p))}
    xa = np.array([a[t][1] for t in a], float)
    xb = np.array([b[t][1] for t in b], float)
    from core.decide.stats import bootstrap_means

    def ours_bootstrap():
        means = bootstrap_means(xa - xb, resamples, np.random.default_rng(seed))
        return np.percentile(means, [2.5, 97.5])

    def ours_compare():
        return compare(a, b, k=1, resamples=resamples, seed=seed)

    def scipy_bootstrap():
        return sps.bootstrap((xa, xb), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), paired=True,
                             vectorized=True, n_resamples=resamples, method="percentile",
                             random_state=np.random.default_rng(seed)).confidence_interval

    def timed(fn):
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    return {"n_tasks": n_tasks, "resamples": resamples, "ours_bootstrap_s": timed(ours_bootstrap),
            "ours_full_compare_s": timed(ours_compare), "scipy_bootstrap_s": timed(scipy_bootstrap)}


def run_bench_stats(sims: int = 2000, resamples: int = 2000, seed: int = 0) -> list[CalibrationResult]:
    s = speed()
    print(f"speed, {s['resamples']} paired resamples over {s['n_tasks']} tasks (median of 5): "
          f"ours {1000 * s['ours_bootstrap_s']:.1f} ms (whole compare() with the permutation test: "
          f"{1000 * s['ours_full_compare_s']:.1f} ms), scipy.stats.bootstrap {1000 * s['scipy_bootstrap_s']:.1f} ms, "
          f"ratio {s['scipy_bootstrap_s'] / s['ours_bootstrap_s']:.1f}x")
    results = []
    for n in (1, 10):
        for shift in (0.0, 0.4):
            r = simulate(sims, 500, n, shift, resamples, seed)
            results.append(r)
            what = ("null (equal models)" if shift == 0 else f"effect (true delta {r.true_delta:+.4f})")
            print(f"n_tasks 500, {n:2d} sample(s)/task, {what:32s}: significant {100 * r.significant_rate:5.1f}%, "
                  f"superior {100 * r.superior_rate:5.1f}%, CI coverage {100 * r.coverage:5.1f}%  ({sims} sims, "
                  f"{resamples} resamples)")
    return results
