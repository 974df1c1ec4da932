"""The unbiased pass@k estimator (Chen et al. 2021) and its aggregation over tasks."""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), in the numerically stable product form."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if n < k:
        raise ValueError(f"pass@{k} needs n >= {k} samples, got n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def per_task_pass_at_k(counts: Mapping[object, tuple[int, int]], k: int) -> np.ndarray:
    """pass@k of every task, in the mapping's order (computed once per distinct (n, c))."""
    pairs = np.array(list(counts.values()), dtype=np.int64).reshape(-1, 2)
    if pairs.size == 0:
        return np.zeros(0)
    distinct, index = np.unique(pairs, axis=0, return_inverse=True)
    values = np.array([pass_at_k(int(n), int(c), k) for n, c in distinct])
    return values[index.reshape(-1)]


def pass_at_k_table(counts: Mapping[object, tuple[int, int]], ks: Iterable[int]) -> dict[str, float]:
    """Mean pass@k over tasks for each k that every task supports (n >= k); others are left out."""
    if not counts:
        return {}
    min_n = min(n for n, _ in counts.values())
    return {str(k): float(per_task_pass_at_k(counts, k).mean()) for k in ks if k <= min_n}
