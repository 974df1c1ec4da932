"""Sampling from our HRM: requests are taken `batch` at a time, their prompts left-padded into one
prefill, each request's KV cache copied for its n samples, then decoded token by token until every
sample hits a stop sequence, EOS or max_new_tokens. Each request draws from its own generator seeded
by its own seed, so a request's samples do not depend on what else is in its batch."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

from core.models.hrm import HRM, KVCache
from core.models.interface import Request, TextGenerator
from core.models.sampling import SamplingParams, fit_prompt, next_tokens
from core.models.tokenizer import Tokenizer
from core.tasks.completions import cut_at_stop


class HRMGenerator(TextGenerator):
    def __init__(self, model: HRM, tokenizer: Tokenizer, name: str, trained: bool, batch: int = 1):
        if tokenizer.vocab_size > model.cfg.vocab_size:
            raise ValueError(f"tokenizer {tokenizer.name} has {tokenizer.vocab_size} tokens, the model "
                             f"{model.cfg.vocab_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.trained = trained
        self.batch = batch

    @property
    def positions(self) -> int:
        return self.model.cfg.max_seq_len

    def prompt_tokens(self, prompt: str) -> int:
        return len(self.tokenizer.encode(prompt))

    def describe(self) -> dict:
        p = self.model.embed.weight
        return {"params": self.model.param_counts(), "config": self.model.cfg.__dict__,
                "tokenizer": self.tokenizer.name, "device": str(p.device), "dtype": str(p.dtype).removeprefix("torch.")}

    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        return self._batch([prompt], [params])[0]

    def generate_many(self, requests: Sequence[Request]) -> Iterator[tuple[int, list[str]]]:
        for start in range(0, len(requests), self.batch):
            chunk = requests[start:start + self.batch]
            outs = self._batch([r.prompt for r in chunk], [r.params for r in chunk])
            yield from ((start + i, texts) for i, texts in enumerate(outs))

    @torch.no_grad()
    def _batch(self, prompts: list[str], params: list[SamplingParams]) -> list[list[str]]:
        tok, model = self.tokenizer, self.model
        steps = max(p.max_new_tokens for p in params)
        device = model.embed.weight.device
        ids = [fit_prompt(tok.encode(text), p, self.positions)[0] or [tok.eos_id] for text, p in zip(prompts, params)]
        width = max(map(len, ids))
        pad = torch.tensor([width - len(x) for x in ids], device=device)
        batch = torch.tensor([[tok.eos_id] * (width - len(x)) + x for x in ids], device=device)
        cache = model.new_cache(len(ids), width + steps)
        logits = model(batch, cache, pad=pad)[:, -1]
        counts = [p.n for p in params]
        rows = torch.repeat_interleave(torch.arange(len(ids), device=device), torch.tensor(counts, device=device))
        if any(c != 1 for c in counts):
            cache, logits = _select(cache, rows), logits[rows]
        gens = [torch.Generator(device=device).manual_seed(p.seed) for p in params]
        owner = [i for i, c in enumerate(counts) for _ in range(c)]
        first = [sum(counts[:i]) for i in range(len(counts))]
        out: list[list[int]] = [[] for _ in owner]
        done = [False] * len(owner)
        for step in range(steps):
            nxt = torch.cat([next_tokens(logits[first[i]:first[i] + c], p.temperature, p.top_p, gens[i])
                             for i, (p, c) in enumerate(zip(params, counts))])
            for r, t in enumerate(nxt.tolist()):
                p = params[owner[r]]
                if done[r]:
                    continue
                if t == tok.eos_id or step >= p.max_new_tokens:
                    done[r] = True
                    continue
                out[r].append(t)
                if len(out[r]) >= p.max_new_tokens or (p.stop and cut_at_stop(tok.decode(out[r][-64:]), p.stop)[1]):
                    done[r] = True
            if all(done):
                break
            logits = model(nxt.unsqueeze(1), cache)[:, -1]
        texts = [cut_at_stop(tok.decode(o), params[owner[r]].stop)[0] for r, o in enumerate(out)]
        return [texts[first[i]:first[i] + c] for i, c in enumerate(counts)]


def _select(cache, rows):
    """The cache with its batch rows taken as `rows` says (a request's prefill copied for its n samples)."""
    out = KVCache.__new__(KVCache)
    out.k, out.v = cache.k[:, rows], cache.v[:, rows]
    out.length, out.capacity = cache.length, cache.capacity
    out.pad = None if cache.pad is None else cache.pad[rows]
    return out
