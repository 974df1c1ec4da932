from math import comb

import numpy as np
import pytest

from core.evaluation.passk import pass_at_k, pass_at_k_table


@pytest.mark.parametrize("n, c, k", [(10, 3, 1), (10, 3, 5), (20, 0, 10), (20, 20, 1), (200, 7, 100), (5, 4, 2)])
def test_matches_the_combinatorial_definition(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_stable_for_large_n():
    value = pass_at_k(2000, 3, 1000)
    assert 0 < value <= 1 and np.isfinite(value)
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0


def test_k_reported_only_where_every_task_has_n_at_least_k():
    table = pass_at_k_table({"a": (10, 5), "b": (3, 0)}, (1, 3, 10))
    assert set(table) == {"1", "3"}
    assert table["1"] == pytest.approx((0.5 + 0.0) / 2)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 10)
