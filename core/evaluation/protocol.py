"""The protocol of an evaluation: everything that decides what a pass@k figure means, in one value.

Both sides of a comparison get the same Protocol (the pipeline and the app build it once from the
shared settings), each run writes it whole into its manifest ("protocol"), and
core.decide.comparable refuses two runs whose protocols differ. It holds the prompt template and
its stop sequences, the sampling (n, temperature, top_p; top_k is none for every model), the
token budget and the context rule, the seed, the execution settings (timeout, challenge tests)
and the data set (name, split, sha256).

The context rule is one for every model: a model works in min(context_window, its own positions)
tokens; when prompt + max_new_tokens exceeds that, the prompt keeps its last tokens
(core.models.sampling.fit_prompt), and the run records how many prompts were cut.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from core.evaluation.config import EvalConfig
from core.models.sampling import SamplingParams
from core.tasks.data import Dataset
from core.tasks.prompts import Template

CONTEXT_POLICY = "keep-last: a prompt longer than window - max_new_tokens keeps its last tokens"


@dataclass(frozen=True)
class Protocol:
    prompt: str
    stop: tuple[str, ...]
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    context_window: int
    seed: int
    timeout_s: float
    challenge_tests: bool
    dataset: dict  # name, split, sha256
    top_k: None = None  # no top-k for any model: pure nucleus sampling
    context_policy: str = CONTEXT_POLICY

    @classmethod
    def of(cls, cfg: EvalConfig, dataset: Dataset, template: Template) -> "Protocol":
        return cls(prompt=template.name, stop=tuple(template.stop), n=cfg.n, temperature=cfg.temperature,
                   top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, context_window=cfg.context_window,
                   seed=cfg.seed, timeout_s=cfg.timeout, challenge_tests=cfg.challenge_tests,
                   dataset={"name": dataset.name, "split": dataset.split, "sha256": dataset.sha256})

    def params(self) -> SamplingParams:
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.max_new_tokens, stop=self.stop, seed=self.seed,
                              context=self.context_window)

    def manifest(self) -> dict:
        """The manifest's "protocol" entry (stop as a list, as JSON keeps it)."""
        return {**asdict(self), "stop": list(self.stop)}


SAMPLED = ("prompt", "n", "temperature", "top_p", "top_k", "max_new_tokens", "stop", "context_window",
           "context_policy", "seed")  # unknown for a run scored from a samples file or the oracle


def settings(cfg: EvalConfig) -> dict:
    """The EvalConfig settings a protocol is made of (what both sides of a comparison must share)."""
    return {k: getattr(cfg, k) for k in ("dataset", "data_path", "split", "limit", "prompt", "n", "temperature",
                                         "top_p", "max_new_tokens", "context_window", "seed", "timeout",
                                         "challenge_tests")}
