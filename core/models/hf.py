"""Any transformers causal LM (gpt2) or seq2seq LM (Salesforce/codet5-small), by local directory
or hub name, and `hf-arch:NAME`: an architecture with random weights, for cost benchmarks only.

Hub names behave as transformers users expect: downloaded and cached where the hub is reachable;
HF_HUB_OFFLINE=1 (the ecosystem's switch) keeps everything to the local cache.

Greedy requests are generated `batch` tasks at a time (left padding, positions from the attention
mask, so a row's output is the one it gets alone); sampled requests one task at a time (its n
samples are one batch), so that each task's samples depend on its own seed only.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch

from core.base.errors import ModelSpecError
from core.models.interface import Request, TextGenerator
from core.models.sampling import SamplingParams, fit_prompt
from core.tasks.completions import cut_at_stop

log = logging.getLogger(__name__)


def offline() -> bool:
    """HF_HUB_OFFLINE, read as huggingface_hub reads it."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _not_available(name: str, exc: Exception) -> ModelSpecError:
    where = "in the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline() else "on the hub or in the local cache"
    return ModelSpecError(
        f"hf:{name} is neither a local directory nor {where} ({type(exc).__name__}); download it "
        f"where the hub is reachable (huggingface-cli download {name} --local-dir DIR) and pass hf:DIR")


def check_available(name: str) -> None:
    """Fail now, with the fix, when hf:NAME could not be loaded later (offline and not cached)."""
    if Path(name).is_dir() or not offline():
        return
    from transformers import AutoConfig
    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise _not_available(name, exc) from None


def arch_config(name: str):
    """The configuration of a named architecture, without touching the hub."""
    from transformers import AutoConfig, GPT2Config, T5Config
    if Path(name).is_dir():
        return AutoConfig.from_pretrained(name, local_files_only=True)
    known = {
        "gpt2": GPT2Config,  # defaults are GPT-2 small: 124,439,808 parameters
        # smaller GPT-2s for compute-matched pretraining at CPU scale (hrm:tiny has hidden 64, 2 blocks)
        "gpt2-tiny": lambda: GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=1024),
        "gpt2-mini": lambda: GPT2Config(n_embd=256, n_layer=4, n_head=4, n_positions=1024),
        "t5-small": lambda: T5Config(),
        "codet5-small": lambda: T5Config(vocab_size=32100, d_model=512, d_ff=2048, num_layers=6, num_heads=8,
                                         decoder_start_token_id=0, pad_token_id=0, eos_token_id=2),
    }
    key = name.split("/")[-1].lower()
    if key not in known:
        raise ModelSpecError(f"hf-arch:{name}: unknown architecture; use one of {', '.join(known)} or a directory "
                             "holding a config.json")
    return known[key]()


class HFGenerator(TextGenerator):
    def __init__(self, model, tokenizer, name: str, trained: bool, batch: int = 1):
        self.model = model.eval()
        self.batch = batch
        self.tok = tokenizer
        self.name = name
        self.trained = trained
        self.seq2seq = bool(model.config.is_encoder_decoder)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "left"

    @classmethod
    def from_spec(cls, kind: str, arg: str) -> "HFGenerator":
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
        if kind == "hf-arch":
            cfg = arch_config(arg)
            auto = AutoModelForSeq2SeqLM if cfg.is_encoder_decoder else AutoModelForCausalLM
            torch.manual_seed(0)
            model = auto.from_config(cfg)
            from core.models.tokenizer import load_tokenizer
            tok = load_tokenizer("hrm-bpe-16k").fast
            return cls(model, tok, f"hf-arch:{arg}", trained=False)
        local = Path(arg).is_dir()
        try:
            cfg = AutoConfig.from_pretrained(arg)
            auto = AutoModelForSeq2SeqLM if cfg.is_encoder_decoder else AutoModelForCausalLM
            model = auto.from_pretrained(arg)
            tok = AutoTokenizer.from_pretrained(arg)
        except (OSError, ValueError) as exc:
            if local:
                raise ModelSpecError(f"hf:{arg}: cannot load a transformers model from this directory ({exc})") from None
            raise _not_available(arg, exc) from None
        return cls(model, tok, f"hf:{arg}", trained=True)

    @property
    def positions(self) -> int | None:
        if self.seq2seq:
            return None
        cfg = self.model.config
        return getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)

    def prompt_tokens(self, prompt: str) -> int:
        return len(self.tok(prompt)["input_ids"])

    def describe(self) -> dict:
        total = sum(p.numel() for p in self.model.parameters())
        emb = self.model.get_input_embeddings().weight.numel()
        p = next(self.model.parameters())
        return {"params": {"total": total, "embedding": emb, "non_embedding": total - emb},
                "architecture": self.model.config.model_type, "device": str(p.device),
                "dtype": str(p.dtype).removeprefix("torch.")}

    def generate(self, prompt: str, params: SamplingParams) -> list[str]:
        return self._batch([prompt], params)[0]

    def generate_many(self, requests: Sequence[Request]) -> Iterator[tuple[int, list[str]]]:
        greedy = [i for i, r in enumerate(requests) if r.params.temperature <= 0]
        for start in range(0, len(greedy), self.batch):
            chunk = greedy[start:start + self.batch]
            by_params: dict[SamplingParams, list[int]] = {}
            for i in chunk:  # seeds differ per task and mean nothing at T=0: group on the rest
                by_params.setdefault(_unseeded(requests[i].params), []).append(i)
            for params, idx in by_params.items():
                outs = self._batch([requests[i].prompt for i in idx], params)
                yield from zip(idx, outs)
        for i, r in enumerate(requests):
            if r.params.temperature > 0:
                yield i, self._batch([r.prompt], r.params)[0]

    @torch.no_grad()
    def _batch(self, prompts: list[str], params: SamplingParams) -> list[list[str]]:
        device = next(self.model.parameters()).device
        ids = [fit_prompt(self.tok(p)["input_ids"], params, self.positions)[0] for p in prompts]
        enc = self.tok.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items()}
        torch.manual_seed(params.seed)
        kwargs = dict(max_new_tokens=params.max_new_tokens, num_return_sequences=params.n, use_cache=True,
                      pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id)
        if params.temperature > 0:
            # top_k=0: pure nucleus sampling, as for every other model (transformers adds top-k 50 when unset)
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tok)
        out = self.model.generate(**enc, **kwargs)
        new = out if self.seq2seq else out[:, enc["input_ids"].shape[1]:]
        texts = self.tok.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        texts = [cut_at_stop(t, params.stop)[0] for t in texts]
        return [texts[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]


def _unseeded(params: SamplingParams) -> SamplingParams:
    from dataclasses import replace
    return replace(params, seed=0)
