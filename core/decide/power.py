"""Planning a comparison that can see the target difference: `python -m core plan --pilot RUN [--pilot RUN]`.

From pilot runs (a candidate and a baseline, paired by task; one run alone stands for both) it
estimates the two sources of noise in the paired pass@1 difference:
  within-task:  each task's pass rate is estimated from n samples: variance p(1-p)/n per side;
  between-task: the true per-task differences vary from task to task (what more samples cannot remove).
The standard error of the mean difference over T tasks with n samples each is
  sqrt((between + within_1 / n) / T),   within_1 = mean over tasks of pa(1-pa) + pb(1-pb),
so the tasks needed for 80% power at two-sided alpha are T = (z_{1-alpha/2} + z_{0.8})^2 (between +
within_1/n) / delta^2. `simulate_power` checks the prediction by running the gate's own test on
simulated runs drawn from the pilots' per-task pass rates with the target difference added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from core.base.errors import UsageError
from core.base.settings import ALPHA, POWER
from core.evaluation.collect import load_counts


@dataclass
class Variance:
    between: float  # variance of the true per-task differences
    within_1: float  # per-task sampling variance of the difference at n = 1
    tasks: int
    pilot_n: int
    pa: np.ndarray  # per-task pass rates, candidate pilot
    pb: np.ndarray  # per-task pass rates, baseline pilot
    paired: bool  # False: one pilot stood for both sides (no between-task variance of the difference known)


def estimate(pilots: list[str]) -> Variance:
    if not 1 <= len(pilots) <= 2:
        raise UsageError("plan takes one or two --pilot runs (candidate, then baseline)")
    counts = [load_counts(p)[0] for p in pilots]
    if len(counts) == 1:
        counts.append(counts[0])
    a, b = counts
    shared = [t for t in a if t in b]
    if len(shared) < 10:
        raise UsageError(f"the pilots share {len(shared)} tasks; plan needs at least 10 to estimate the variance")
    na = np.array([a[t][0] for t in shared], float)
    nb = np.array([b[t][0] for t in shared], float)
    pa = np.array([a[t][1] for t in shared], float) / na
    pb = np.array([b[t][1] for t in shared], float) / nb
    d = pa - pb
    # the noise the pilots' own sampling adds to each observed difference (unbiased where n > 1)
    noise = np.where(na > 1, pa * (1 - pa) / np.maximum(na - 1, 1), pa * (1 - pa)) + \
        np.where(nb > 1, pb * (1 - pb) / np.maximum(nb - 1, 1), pb * (1 - pb))
    paired = len(pilots) == 2
    between = max(0.0, float(d.var(ddof=1) - noise.mean())) if paired else 0.0
    within_1 = float(np.mean(pa * (1 - pa) + pb * (1 - pb)))
    if within_1 == 0 and between == 0:
        raise UsageError("the pilots pass every task or none: no variance to plan with; pilot with a model that "
                         "solves some tasks")
    return Variance(between, within_1, len(shared), int(min(na.min(), nb.min())), pa, pb, paired)


def z_sum(alpha: float, power: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def tasks_needed(v: Variance, n: int, delta: float, alpha: float = ALPHA, power: float = POWER) -> int:
    return math.ceil(z_sum(alpha, power) ** 2 * (v.between + v.within_1 / n) / delta ** 2)


def predicted_power(v: Variance, tasks: int, n: int, delta: float, alpha: float = ALPHA) -> float:
    se = math.sqrt((v.between + v.within_1 / n) / tasks)
    return float(sps.norm.cdf(delta / se - sps.norm.ppf(1 - alpha / 2)))


def simulate_power(v: Variance, tasks: int, n: int, delta: float, sims: int = 1000, alpha: float = ALPHA,
                   resamples: int = 400, seed: int = 0) -> float:
    """Fraction of simulated comparisons the gate's own test declares superior. Tasks are drawn from the
    baseline pilot's per-task rates; each task's true difference is delta plus the pilots' observed
    deviation from their mean difference, shrunk to the estimated between-task variance (the observed
    deviations also carry the pilots' own sampling noise)."""
    from core.decide.stats import compare
    rng = np.random.default_rng(seed)
    dev = (v.pa - v.pb) - (v.pa - v.pb).mean()
    scale = math.sqrt(v.between / dev.var()) if v.paired and dev.var() > 0 else 0.0
    wins = 0
    for i in range(sims):
        idx = rng.integers(0, v.pb.size, tasks)
        pb = v.pb[idx]
        pa = np.clip(pb + delta + scale * dev[idx], 0, 1)
        ca, cb = rng.binomial(n, pa), rng.binomial(n, pb)
        c = compare({t: (n, int(ca[t])) for t in range(tasks)}, {t: (n, int(cb[t])) for t in range(tasks)},
                    k=1, resamples=resamples, seed=i, alpha=alpha)
        wins += c.superior
    return wins / sims


def plan(pilots: list[str], delta: float, alpha: float = ALPHA, power: float = POWER, split_tasks: int = 500,
         ns=(1, 2, 5, 10, 20)) -> dict:
    v = estimate(pilots)
    rows = [{"samples_per_task": n, "tasks_needed": tasks_needed(v, n, delta, alpha, power),
             "power_with_split": round(predicted_power(v, split_tasks, n, delta, alpha), 3)} for n in ns]
    return {"pilots": list(pilots), "pilot_tasks": v.tasks, "pilot_samples_per_task": v.pilot_n,
            "between_task_variance": v.between, "within_task_variance_n1": v.within_1, "paired_pilots": v.paired,
            "delta": delta, "alpha": alpha, "power": power, "split_tasks": split_tasks, "rows": rows}
