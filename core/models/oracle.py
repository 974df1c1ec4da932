"""The oracle: answers every task with the dataset's reference solution.

It needs no weights and proves the harness: on MBPP's test split it should pass every task
whose reference passes its own tests."""
from __future__ import annotations

from typing import Iterator, Sequence

from core.models.interface import Request


class OracleGenerator:
    name = "oracle"
    trained = None  # no weights: neither trained nor untrained
    cleanup = False  # reference solutions are scored as they are

    def describe(self) -> dict:
        return {"source": "the dataset's reference solutions"}

    def generate_many(self, requests: Sequence[Request]) -> Iterator[tuple[int, list[str]]]:
        for i, r in enumerate(requests):
            yield i, [r.task.reference] * r.params.n
