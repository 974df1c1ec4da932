"""Sampling parameters and the pieces of a decoding loop shared by our local models: the one context
rule (a prompt too long for the window loses its oldest tokens, the same way for every model) and
the next-token choice (greedy, or pure nucleus sampling: no top-k for any model)."""
from __future__ import annotations

from dataclasses import dataclass

from core.base.errors import UsageError


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0
    context: int | None = None  # the protocol's window in tokens (prompt + new tokens); None: the model's own


def window_of(params: SamplingParams, model_positions: int | None) -> int | None:
    """The window a model works in: the protocol's, or the model's own where that is smaller."""
    limits = [w for w in (params.context, model_positions) if w]
    return min(limits) if limits else None


def fit_prompt(ids: list[int], params: SamplingParams, model_positions: int | None) -> tuple[list[int], bool]:
    """(ids kept, whether any were cut): when prompt + max_new_tokens exceeds the window, the prompt
    keeps its last window - max_new_tokens tokens."""
    window = window_of(params, model_positions)
    if window is None or len(ids) + params.max_new_tokens <= window:
        return ids, False
    room = window - params.max_new_tokens
    if room < 1:
        raise UsageError(f"max_new_tokens {params.max_new_tokens} leaves no room for a prompt in a window of "
                         f"{window} tokens; lower --max-new-tokens")
    return ids[-room:], True


def next_tokens(logits, temperature: float, top_p: float, gen):
    """One token per row of logits [batch, vocab]: greedy at temperature 0, else nucleus sampling."""
    import torch
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(dim=-1) - sorted_p < top_p  # always keeps the most likely token
        sorted_p = sorted_p * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)
