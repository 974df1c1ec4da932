"""What a generator provides: the one interface generation (core.evaluation.generate) relies on.

A generator has a `name`, says whether its weights were `trained` (None where it has none),
describes itself for the manifest, and turns requests into completions with `generate_many`
(batched, concurrent or one by one: its choice). `cleanup` says whether its completions go through
the clean-up of core.tasks.completions (a model's do; the oracle's reference solutions are final).
Text models derive from TextGenerator and write only `generate(prompt, params)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol, Sequence, runtime_checkable

from core.models.sampling import SamplingParams
from core.tasks.data import Task


@dataclass(frozen=True)
class Request:
    prompt: str
    params: SamplingParams
    task: Task | None = None  # the task the prompt was rendered from (the oracle answers from it)


@runtime_checkable
class Generator(Protocol):
    name: str
    trained: bool | None
    cleanup: bool

    def describe(self) -> dict: ...

    def generate_many(self, requests: Sequence[Request]) -> Iterable[tuple[int, list[str]]]:
        """(index into requests, its params.n completions) for every request, in any order."""
        ...


class TextGenerator:
    """A model that continues a prompt: one request at a time unless it overrides generate_many."""
    name: str
    trained: bool | None
    cleanup = True

    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        raise NotImplementedError

    def generate_many(self, requests: Sequence[Request]) -> Iterator[tuple[int, list[str]]]:
        for i, r in enumerate(requests):
            yield i, self.generate(r.prompt, r.params)
