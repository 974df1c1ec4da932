"""The oracle: answers every task with the dataset's reference solution.

It needs no weights and proves the harness: on MBPP's test split it should pass every task
whose reference passes its own tests."""
from __future__ import annotations

from core.tasks.data import Task


class OracleGenerator:
    name = "oracle"
    trained = None  # no weights: neither trained nor untrained
    needs_task = True

    def describe(self) -> dict:
        return {"source": "the dataset's reference solutions"}

    def generate_for_task(self, task: Task, n: int) -> list[str]:
        return [task.reference] * n
