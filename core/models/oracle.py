"""The oracle: answers every task with the dataset's reference solution.

It needs no weights and proves the harness: on MBPP's test split it should pass every task
whose reference passes its own tests."""
from __future__ import annotations

from core.data import Task


class OracleGenerator:
    name = "oracle"
    trained = None  # no weights: neither trained nor untrained

    def complete(self, task: Task, prompt: str, n: int) -> list[str]:
        return [task.reference] * n
