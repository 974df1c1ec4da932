"""Our causal Hierarchical Reasoning Model (Wang et al. 2025, arXiv 2506.21734) as a next-token LM.

Two recurrent transformer modules share one hidden size: a fast low-level module L and a slow
high-level module H. For every token position the states z_L and z_H start from fixed initial
vectors; one segment runs H_cycles high-level cycles, each of L_cycles low-level updates
  z_L <- L(z_L + z_H + x)            (input injection by addition: L sees z_H + x)
followed by one high-level update
  z_H <- H(z_H + z_L)                (H sees z_L)
and the logits come from z_H. Blocks are post-norm (RMSNorm without weights), attention uses
RoPE, the MLP is SwiGLU, nothing has a bias, and the embedding is tied to the output layer
(`tie_embeddings=False` gives a separate `lm_head`, as checkpoints of the reference code have).

Training uses the paper's one-step gradient: every module call but the last L and the last H of
a segment runs under no_grad, so memory does not grow with the number of cycles. Optional deep
supervision runs several segments, each starting from the previous one's (detached) states,
with a loss on every segment's output.

Unlike the paper's puzzle setting, attention is causal in every call, so the model is a
next-token language model and can be sampled autoregressively. Halting (ACT with a Q-head) is
left out by default: it decides per sequence how many segments to run, which fits a
fixed-length puzzle grid but not token-by-token decoding, where every position would need its
own halting decision and the KV cache its own depth. `act=True` is kept as an option for
experiments; generation always runs the configured number of segments.

KV cache: every (segment, cycle, layer) application of a block has its own slot (24 for the
27M preset: L runs 2 x 2 times and H 2 times, 4 layers each), because each application sees
different inputs. Incremental decoding therefore reproduces a full forward exactly.

Batches of prompts of different lengths are left-padded: `pad` gives each row's count of leading
pad tokens; its real tokens get positions from 0 and no real token attends to a pad, so a row's
logits are those of the same prompt alone (batched greedy decoding equals unbatched).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.base.errors import ModelSpecError


@dataclass(frozen=True)
class HRMConfig:
    vocab_size: int = 16384
    hidden: int = 512
    heads: int = 8
    inner: int = 1536  # SwiGLU inner width
    h_layers: int = 4
    l_layers: int = 4
    h_cycles: int = 2
    l_cycles: int = 2
    segments: int = 1  # deep supervision segments
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    act: bool = False
    tie_embeddings: bool = True

    @property
    def applications(self) -> int:
        """Block applications per token, i.e. KV-cache slots."""
        per_segment = self.h_cycles * (self.l_cycles * self.l_layers + self.h_layers)
        return self.segments * per_segment


PRESETS = {
    "27m": HRMConfig(),
    "tiny": HRMConfig(hidden=64, heads=4, inner=192, h_layers=1, l_layers=1, max_seq_len=4096),
}


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


class Rotary(nn.Module):
    def __init__(self, head_dim: int, max_len: int, theta: float):
        super().__init__()
        inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[positions], self.sin[positions]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class KVCache:
    """Preallocated keys and values, one slot per block application; writes are in place so the
    cost of a decoding step does not grow with copying the context."""

    def __init__(self, cfg: HRMConfig, batch: int, capacity: int, dtype=torch.float32, device="cpu"):
        head_dim = cfg.hidden // cfg.heads
        shape = (cfg.applications, batch, cfg.heads, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0
        self.capacity = capacity
        self.pad = None  # leading pad tokens per row (a LongTensor [batch]) for left-padded batches

    @property
    def slots(self) -> int:
        return self.k.shape[0]

    def store(self, slot: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} tokens > capacity {self.capacity}")
        self.k[slot, :, :, start:end] = k
        self.v[slot, :, :, start:end] = v
        return self.k[slot, :, :, :end], self.v[slot, :, :, :end]

    def repeat(self, n: int) -> "KVCache":
        """The same cache for n copies of each sequence (prefill once, sample n)."""
        out = KVCache.__new__(KVCache)
        out.k = self.k.repeat_interleave(n, dim=1)
        out.v = self.v.repeat_interleave(n, dim=1)
        out.length, out.capacity = self.length, self.capacity
        out.pad = None if self.pad is None else self.pad.repeat_interleave(n)
        return out


class Attention(nn.Module):
    def __init__(self, cfg: HRMConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.hidden // cfg.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden, bias=False)
        self.out = nn.Linear(cfg.hidden, cfg.hidden, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None, slot: int, mask=None):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.store(slot, k, v)
        if mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        elif past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif t == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, cfg: HRMConfig):
        super().__init__()
        self.gate_up = nn.Linear(cfg.hidden, 2 * cfg.inner, bias=False)
        self.down = nn.Linear(cfg.inner, cfg.hidden, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    """Post-norm transformer block: x = norm(x + attn(x)); x = norm(x + mlp(x))."""

    def __init__(self, cfg: HRMConfig):
        super().__init__()
        self.eps = cfg.rms_eps
        self.attn = Attention(cfg)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, cos, sin, cache, slot, mask=None):
        x = rms_norm(x + self.attn(x, cos, sin, cache, slot, mask), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)


class ReasoningModule(nn.Module):
    def __init__(self, cfg: HRMConfig, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg) for _ in range(layers))

    def forward(self, z, injection, cos, sin, cache, first_slot, mask=None):
        z = z + injection
        for i, layer in enumerate(self.layers):
            z = layer(z, cos, sin, cache, first_slot + i, mask)
        return z


class HRM(nn.Module):
    def __init__(self, cfg: HRMConfig):
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise ValueError("hidden must be divisible by heads")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.L = ReasoningModule(cfg, cfg.l_layers)
        self.H = ReasoningModule(cfg, cfg.h_layers)
        self.rotary = Rotary(cfg.hidden // cfg.heads, cfg.max_seq_len, cfg.rope_theta)
        # Fixed initial states, saved with the weights so a checkpoint reproduces its outputs.
        self.register_buffer("z_h_init", nn.init.trunc_normal_(torch.empty(cfg.hidden), std=1.0, a=-2, b=2))
        self.register_buffer("z_l_init", nn.init.trunc_normal_(torch.empty(cfg.hidden), std=1.0, a=-2, b=2))
        self.q_head = nn.Linear(cfg.hidden, 2) if cfg.act else None
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=1.0 / math.sqrt(m.in_features), a=-2 / math.sqrt(m.in_features),
                                  b=2 / math.sqrt(m.in_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=1.0 / math.sqrt(m.embedding_dim))

    def param_counts(self) -> dict:
        total = sum(p.numel() for p in self.parameters())
        embedding = self.embed.weight.numel() + (self.lm_head.weight.numel() if self.lm_head is not None else 0)
        return {"total": total, "embedding": embedding, "non_embedding": total - embedding}

    def _segment(self, z_h, z_l, x, cos, sin, cache, first_slot, mask=None):
        cfg = self.cfg
        slot = first_slot
        order = []
        for h in range(cfg.h_cycles):
            order += [("L", h, i) for i in range(cfg.l_cycles)] + [("H", h, None)]
        last_l = ("L", cfg.h_cycles - 1, cfg.l_cycles - 1)
        last_h = ("H", cfg.h_cycles - 1, None)
        for call in order:
            grad = torch.is_grad_enabled() and call in (last_l, last_h)
            with torch.set_grad_enabled(grad):
                if call[0] == "L":
                    z_l = self.L(z_l, z_h + x, cos, sin, cache, slot, mask)
                    slot += cfg.l_layers
                else:
                    z_h = self.H(z_h, z_l, cos, sin, cache, slot, mask)
                    slot += cfg.h_layers
        return z_h, z_l, slot

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None, all_segments: bool = False, pad=None):
        """Logits [batch, time, vocab] of the last segment (or a list, one per segment). `pad`: leading pad
        tokens per row of a left-padded batch (kept by the cache for the steps after the prefill)."""
        b, t = ids.shape
        past = cache.length if cache is not None else 0
        if past + t > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {past + t} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        if pad is None and cache is not None:
            pad = cache.pad
        elif pad is not None and cache is not None:
            cache.pad = pad
        positions = torch.arange(past, past + t, device=ids.device)
        mask = None
        if pad is not None and bool(pad.any()):
            keys = torch.arange(past + t, device=ids.device)
            # causal, and no real token sees a pad; a pad sees itself so that its row is never empty
            mask = (keys[None, None, :] <= positions[None, :, None]) & (keys[None, None, :] >= pad[:, None, None])
            mask = (mask | (keys[None, None, :] == positions[None, :, None])).unsqueeze(1)
            positions = (positions[None, :] - pad[:, None]).clamp(min=0)
            cos, sin = (c.unsqueeze(1) for c in self.rotary(positions))
        else:
            cos, sin = self.rotary(positions)
        x = self.embed(ids) * math.sqrt(self.cfg.hidden)
        z_h = self.z_h_init.expand(b, t, -1)
        z_l = self.z_l_init.expand(b, t, -1)
        outputs, slot = [], 0
        for _ in range(self.cfg.segments):
            z_h, z_l, slot = self._segment(z_h, z_l, x, cos, sin, cache, slot, mask)
            outputs.append(F.linear(z_h, self.embed.weight) if self.lm_head is None else self.lm_head(z_h))
            z_h, z_l = z_h.detach(), z_l.detach()
        if cache is not None:
            cache.length += t
        return outputs if all_segments else outputs[-1]

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        p = self.embed.weight
        return KVCache(self.cfg, batch, capacity, dtype=p.dtype, device=p.device)


def save_checkpoint(model: HRM, directory: str | Path, extra: dict | None = None) -> None:
    from safetensors.torch import save_file
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_type": "hrm", **asdict(model.cfg), **(extra or {})}, indent=2))


def load_checkpoint(directory: str | Path) -> tuple[HRM, dict]:
    from safetensors.torch import load_file
    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise ModelSpecError(f"hrm:{d} is not an HRM checkpoint (needs config.json and model.safetensors); "
                             "use hrm:27m, hrm:tiny or a directory written by `python -m core train`")
    meta = json.loads((d / "config.json").read_text())
    fields = {k: meta[k] for k in HRMConfig.__dataclass_fields__ if k in meta}
    model = HRM(HRMConfig(**fields))
    missing, unexpected = model.load_state_dict(load_file(str(d / "model.safetensors")), strict=False)
    if missing or unexpected:
        raise ModelSpecError(f"{d}: checkpoint does not match its config (missing {missing[:3]}, unexpected "
                             f"{unexpected[:3]})")
    return model, meta


def preset(name: str, **overrides) -> HRMConfig:
    if name not in PRESETS:
        raise ModelSpecError(f"unknown HRM preset {name!r}; use one of {', '.join(PRESETS)} or a checkpoint directory")
    return replace(PRESETS[name], **overrides)
