"""Model specs: parsed, never interpolated, then loaded by kind.

  hrm:27m | hrm:tiny | hrm:PATH   our HRM (preset or checkpoint)
  hf:NAME_OR_PATH                 a transformers causal or seq2seq LM
  hf-arch:NAME                    a transformers architecture with random weights (cost only)
  openai:URL[,URL...]#MODEL       an OpenAI-compatible completions server
  oracle                          the dataset's reference solutions (proves the harness)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.base.errors import ModelSpecError

KINDS = ("hrm", "hf", "hf-arch", "openai", "oracle")
_ARG = re.compile(r"[A-Za-z0-9._/~:@+=,#%-]+")


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    arg: str

    def __str__(self) -> str:
        return self.kind if not self.arg else f"{self.kind}:{self.arg}"


def parse_spec(spec: str) -> ModelSpec:
    spec = (spec or "").strip()
    if spec == "oracle":
        return ModelSpec("oracle", "")
    kind, sep, arg = spec.partition(":")
    if not sep or kind not in KINDS or kind == "oracle":
        raise ModelSpecError(f"unknown model spec {spec!r}; use one of hrm:27m, hrm:tiny, hrm:PATH, "
                             "hf:NAME_OR_PATH, hf-arch:NAME, openai:URL#MODEL, oracle")
    if not arg or not _ARG.fullmatch(arg):
        raise ModelSpecError(f"model spec {spec!r} has an empty or malformed argument after '{kind}:'")
    if kind == "openai" and "#" not in arg:
        raise ModelSpecError(f"model spec {spec!r} needs the model name after '#': openai:http://host:8000/v1#MODEL")
    return ModelSpec(kind, arg)


def load_generator(spec: ModelSpec, device: str = "cpu", dtype: str = "auto", batch: int = 1):
    """The Generator (core.models.interface) that turns prompts into completions for this spec; local models
    are moved to `device` in `dtype` (core.models.device) and generate `batch` requests at a time."""
    if spec.kind == "oracle":
        from core.models.oracle import OracleGenerator
        return OracleGenerator()
    if spec.kind == "openai":
        from core.models.openai_compat import OpenAICompatGenerator
        return OpenAICompatGenerator(spec.arg)
    from core.models.device import resolve_device, resolve_dtype
    where = resolve_device(device)
    precision = resolve_dtype(dtype, where)
    if spec.kind == "hrm":
        gen = load_hrm(spec.arg)
    else:
        from core.models.hf import HFGenerator
        gen = HFGenerator.from_spec(spec.kind, spec.arg)
    gen.model.to(device=where, dtype=precision)
    gen.batch = batch
    return gen


def load_hrm(arg: str):
    """hrm:27m / hrm:tiny (untrained, random weights seeded 0, the pinned tokenizer) or hrm:PATH (a checkpoint,
    with the tokenizer.json in its folder when there is one, else the tokenizer its config.json names)."""
    import torch

    from core.models.hrm import HRM, PRESETS, load_checkpoint, preset
    from core.models.hrm_generator import HRMGenerator
    from core.models.tokenizer import PINNED, load_tokenizer
    if arg in PRESETS:
        tok = load_tokenizer(PINNED)
        torch.manual_seed(0)
        model = HRM(preset(arg, vocab_size=tok.vocab_size))
        return HRMGenerator(model, tok, f"hrm:{arg}", trained=False)
    from pathlib import Path
    if not Path(arg).is_dir():
        raise ModelSpecError(f"hrm:{arg} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint directory")
    model, meta = load_checkpoint(arg)
    own = Path(arg) / "tokenizer.json"
    tok = load_tokenizer(str(own) if own.is_file() else meta.get("tokenizer"))
    return HRMGenerator(model, tok, f"hrm:{arg}", trained=checkpoint_trained(meta))


def checkpoint_trained(meta: dict) -> bool:
    """Whether an HRM checkpoint's config.json records training."""
    return bool(meta.get("trained", meta.get("trained_steps", 0)))


def is_trained(spec: ModelSpec) -> bool | None:
    """Whether a model's weights were trained, known without loading them: False for hf-arch and the HRM presets
    (random weights), an HRM checkpoint's own record, True for other transformers models; None where there are
    no weights here (the oracle, an endpoint) or a checkpoint cannot be read."""
    import json
    from pathlib import Path
    if spec.kind == "hf-arch":
        return False
    if spec.kind == "hf":
        return True
    if spec.kind != "hrm":
        return None
    from core.models.hrm import PRESETS
    if spec.arg in PRESETS:
        return False
    try:
        return checkpoint_trained(json.loads((Path(spec.arg) / "config.json").read_text()))
    except (OSError, ValueError):
        return None
