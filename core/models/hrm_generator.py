"""Sampling from our HRM: prefill the prompt once, copy its KV cache for n samples, then decode
token by token until every sample hits a stop sequence, EOS or max_new_tokens."""
from __future__ import annotations

import torch

from core.models.hrm import HRM
from core.models.interface import TextGenerator
from core.models.sampling import SamplingParams, next_tokens
from core.tasks.completions import cut_at_stop
from core.models.tokenizer import Tokenizer


class HRMGenerator(TextGenerator):
    def __init__(self, model: HRM, tokenizer: Tokenizer, name: str, trained: bool):
        if tokenizer.vocab_size > model.cfg.vocab_size:
            raise ValueError(f"tokenizer {tokenizer.name} has {tokenizer.vocab_size} tokens, the model "
                             f"{model.cfg.vocab_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.trained = trained

    def describe(self) -> dict:
        return {"params": self.model.param_counts(), "config": self.model.cfg.__dict__,
                "tokenizer": self.tokenizer.name}

    @torch.no_grad()
    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        tok, model = self.tokenizer, self.model
        ids = tok.encode(prompt)
        room = model.cfg.max_seq_len - params.max_new_tokens
        if room < 1:
            raise ValueError(f"max_new_tokens {params.max_new_tokens} leaves no room in max_seq_len {model.cfg.max_seq_len}")
        ids = ids[-room:] or [tok.eos_id]
        gen = torch.Generator().manual_seed(params.seed)
        cache = model.new_cache(1, len(ids) + params.max_new_tokens)
        logits = model(torch.tensor([ids]), cache)[:, -1]
        cache = cache.repeat(params.n)
        logits = logits.expand(params.n, -1)
        out = [[] for _ in range(params.n)]
        done = [False] * params.n
        for _ in range(params.max_new_tokens):
            nxt = next_tokens(logits, params.temperature, params.top_p, gen)
            for i, t in enumerate(nxt.tolist()):
                if done[i]:
                    continue
                if t == tok.eos_id:
                    done[i] = True
                    continue
                out[i].append(t)
                if params.stop and cut_at_stop(tok.decode(out[i][-64:]), params.stop)[1]:
                    done[i] = True
            if all(done):
                break
            logits = model(nxt.unsqueeze(1), cache)[:, -1]
        return [cut_at_stop(tok.decode(o), params.stop)[0] for o in out]
