"""The unbiased pass@k estimator (Chen et al. 2021) and its aggregation over tasks.

Plain Python: scoring a samples file should not pay for importing numpy; the statistics, which do
use numpy, turn per-task values into arrays themselves."""
from __future__ import annotations

from typing import Iterable, Mapping


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), in the numerically stable product form."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if n < k:
        raise ValueError(f"pass@{k} needs n >= {k} samples, got n={n}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def per_task_pass_at_k(counts: Mapping[object, tuple[int, int]], k: int) -> list[float]:
    """pass@k of every task, in the mapping's order (computed once per distinct (n, c))."""
    cache: dict[tuple[int, int], float] = {}
    return [cache[nc] if nc in cache else cache.setdefault(nc, pass_at_k(int(nc[0]), int(nc[1]), k))
            for nc in (tuple(v) for v in counts.values())]


def pass_at_k_table(counts: Mapping[object, tuple[int, int]], ks: Iterable[int]) -> dict[str, float]:
    """Mean pass@k over tasks for each k that every task supports (n >= k); others are left out."""
    if not counts:
        return {}
    min_n = min(n for n, _ in counts.values())
    return {str(k): sum(per_task_pass_at_k(counts, k)) / len(counts) for k in ks if k <= min_n}
