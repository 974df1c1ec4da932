"""Import a checkpoint of the reference HRM code (sapientinc/HRM, models/hrm/hrm_act_v1.py) as ours.

The reference saves `torch.save(model.state_dict(), CHECKPOINT_DIR/step_N)` beside `all_config.yaml`.
Its names map one to one onto ours (below); `_orig_mod.` prefixes left by torch.compile and the
`model.inner.` wrappers are stripped; its output head is untied from the embedding, which our HRM
supports (tie_embeddings=False). Dropped, each with a note: the halting Q-head (generation here runs
the configured cycles; ACT has no per-token halting), puzzle embeddings (a language model has no
puzzle ids) and the rotary tables (recomputed from rope_theta). What the weights cannot tell (heads,
H/L cycles, rope_theta, rms eps) comes from all_config.yaml's `arch` or from the caller.

Our blocks attend causally, so the converted model is the reference's network run as a causal
language model; with the reference's attention set causal, their logits are equal.
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from core.base.errors import ModelSpecError

log = logging.getLogger(__name__)

NAMES = [
    (r"embed_tokens\.embedding_weight", "embed.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"H_init", "z_h_init"),
    (r"L_init", "z_l_init"),
    (r"(H|L)_level\.layers\.(\d+)\.self_attn\.qkv_proj\.weight", r"\1.layers.\2.attn.qkv.weight"),
    (r"(H|L)_level\.layers\.(\d+)\.self_attn\.o_proj\.weight", r"\1.layers.\2.attn.out.weight"),
    (r"(H|L)_level\.layers\.(\d+)\.mlp\.gate_up_proj\.weight", r"\1.layers.\2.mlp.gate_up.weight"),
    (r"(H|L)_level\.layers\.(\d+)\.mlp\.down_proj\.weight", r"\1.layers.\2.mlp.down.weight"),
]
DROPPED = {
    "q_head": "the halting Q-head (ACT) was dropped: generation runs the configured H/L cycles for every token",
    "puzzle_emb": "the puzzle embeddings were dropped: a language model has no puzzle identifiers",
    "rotary_emb": "the rotary tables were dropped: they are recomputed from rope_theta",
}
ARCH_KEYS = {"num_heads": "heads", "H_cycles": "h_cycles", "L_cycles": "l_cycles", "rope_theta": "rope_theta",
             "rms_norm_eps": "rms_eps"}


def strip_prefixes(key: str) -> str:
    key = key.replace("_orig_mod.", "")
    for prefix in ("model.", "inner."):
        key = key.removeprefix(prefix)
    return key


def _weights_file(src: Path) -> Path:
    if src.is_file():
        return src
    steps = sorted(src.glob("step_*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    files = steps or sorted([*src.glob("*.safetensors"), *src.glob("*.pt"), *src.glob("*.pth")])
    if not files:
        raise ModelSpecError(f"{src}: no checkpoint file (step_N, *.pt, *.pth or *.safetensors) in this directory")
    return files[-1]


def _load_state(path: Path) -> dict:
    import torch
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("model", state) if isinstance(state, dict) and "model" in state else state


def _arch(src: Path, weights: Path) -> dict:
    for folder in (src if src.is_dir() else src.parent, weights.parent):
        f = folder / "all_config.yaml"
        if f.is_file():
            import yaml
            doc = yaml.safe_load(f.read_text()) or {}
            return doc.get("arch", doc)
    return {}


def map_state(state: dict) -> tuple[dict, list[str]]:
    """Our names for the reference's tensors, and the notes on what was dropped."""
    out, notes = {}, set()
    for key, tensor in state.items():
        name = strip_prefixes(key)
        dropped = next((why for head, why in DROPPED.items() if name.startswith(head)), None)
        if dropped:
            notes.add(dropped)
            continue
        for pattern, ours in NAMES:
            if re.fullmatch(pattern, name):
                out[re.sub(pattern, ours, name)] = tensor
                break
        else:
            raise ModelSpecError(f"{key}: not a tensor of the reference HRM layout (sapientinc/HRM hrm_act_v1); "
                                 "is this checkpoint from that code?")
    return out, sorted(notes)


def convert_reference(src: str | Path, dst: str | Path, tokenizer: str = "hrm-bpe-16k", max_seq_len: int = 2048,
                      **arch_overrides) -> list[str]:
    """Write an hrm:DST checkpoint from the reference checkpoint at src; returns the notes (what was dropped)."""
    import torch

    from core.models.hrm import HRM, HRMConfig, save_checkpoint
    from core.models.tokenizer import load_tokenizer
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise ModelSpecError(f"{src}: no such checkpoint file or directory")
    weights = _weights_file(src)
    state, notes = map_state(_load_state(weights))
    arch = _arch(src, weights)
    if arch.get("pos_encodings", "rope") != "rope":
        raise ModelSpecError(f"{src}: pos_encodings {arch['pos_encodings']!r}; only rope checkpoints convert")
    fields = {ours: arch[theirs] for theirs, ours in ARCH_KEYS.items() if theirs in arch}
    fields.update({k: v for k, v in arch_overrides.items() if v is not None})
    missing = [k for k in ("heads", "h_cycles", "l_cycles") if k not in fields]
    if missing:
        raise ModelSpecError(f"{src}: {', '.join(missing)} not in all_config.yaml's arch; pass them "
                             f"({', '.join('--' + m.replace('_', '-') for m in missing)})")
    if "embed.weight" not in state:
        raise ModelSpecError(f"{src}: no token embedding (embed_tokens.embedding_weight) in the checkpoint")
    vocab, hidden = state["embed.weight"].shape
    layers = {side: len({k.split(".")[2] for k in state if k.startswith(f"{side}.layers.")}) for side in "HL"}
    cfg = HRMConfig(vocab_size=vocab, hidden=hidden, inner=state["H.layers.0.mlp.down.weight"].shape[1],
                    h_layers=layers["H"], l_layers=layers["L"], max_seq_len=max_seq_len,
                    tie_embeddings="lm_head.weight" not in state, **fields)
    model = HRM(cfg)
    state = {k: v.to(torch.float32) for k, v in state.items()}
    missing_keys, unexpected = model.load_state_dict(state, strict=False)
    if missing_keys or unexpected:
        raise ModelSpecError(f"{src}: tensors do not fit the inferred config (missing {missing_keys[:3]}, "
                             f"unexpected {unexpected[:3]})")
    tok_file = Path(tokenizer)
    tok = load_tokenizer(str(tok_file) if tok_file.is_file() else tokenizer)
    if tok.vocab_size > vocab:
        raise ModelSpecError(f"tokenizer {tokenizer} has {tok.vocab_size} tokens, the checkpoint {vocab}; pass the "
                             "tokenizer it was trained with (--tokenizer FILE)")
    step = re.sub(r"\D", "", weights.name)
    save_checkpoint(model, dst, {"tokenizer": tokenizer if not tok_file.is_file() else "tokenizer.json",
                                 "trained_steps": int(step) if step else 0, "trained": True,
                                 "converted_from": str(weights.resolve()), "conversion_notes": notes})
    if tok_file.is_file():
        shutil.copyfile(tok_file, dst / "tokenizer.json")
    for note in notes:
        log.warning("%s", note)
    return notes
