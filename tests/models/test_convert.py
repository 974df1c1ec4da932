"""convert-hrm: a checkpoint in the reference HRM code's layout (sapientinc/HRM hrm_act_v1: `_orig_mod.` prefixes
from torch.compile, the ACT loss head's `model.inner.` wrapper, an untied lm_head, H_init/L_init, a halting Q-head)
becomes an hrm:DIR whose logits equal the reference network's on the same input."""
import math

import pytest
import torch
import torch.nn.functional as F
import yaml

from core.base.errors import ModelSpecError
from core.models import load_generator, parse_spec
from tests.test_evaluate import cli

ARCH = {"name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1", "H_cycles": 2, "L_cycles": 3, "H_layers": 2,
        "L_layers": 1, "hidden_size": 32, "num_heads": 4, "expansion": 4, "pos_encodings": "rope",
        "halt_max_steps": 16, "halt_exploration_prob": 0.1, "puzzle_emb_ndim": 0}
VOCAB, INNER, P = 16384, 96, "_orig_mod.model.inner."


def reference_state(seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.2  # noqa: E731
    h = ARCH["hidden_size"]
    state = {P + "embed_tokens.embedding_weight": r(VOCAB, h), P + "lm_head.weight": r(VOCAB, h),
             P + "q_head.weight": r(2, h), P + "q_head.bias": r(2), P + "H_init": r(h) * 5, P + "L_init": r(h) * 5}
    for level in ("H", "L"):
        for i in range(ARCH[f"{level}_layers"]):
            pre = f"{P}{level}_level.layers.{i}."
            state.update({pre + "self_attn.qkv_proj.weight": r(3 * h, h), pre + "self_attn.o_proj.weight": r(h, h),
                          pre + "mlp.gate_up_proj.weight": r(2 * INNER, h), pre + "mlp.down_proj.weight": r(h, INNER)})
    return state


def reference_logits(state: dict, ids: torch.Tensor) -> torch.Tensor:
    """The reference forward (hrm_act_v1 Inner.forward, one segment), written from its source with causal attention."""
    s = {k.removeprefix(P): v for k, v in state.items()}
    h, heads = ARCH["hidden_size"], ARCH["num_heads"]
    d = h // heads
    inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = torch.outer(torch.arange(ids.shape[1], dtype=torch.float32), inv)
    cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()
    rot = lambda x: x * cos + torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1) * sin  # noqa: E731
    norm = lambda x: x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5)  # noqa: E731

    def block(pre, x):
        b, t, _ = x.shape
        qkv = (x @ s[pre + "self_attn.qkv_proj.weight"].T).view(b, t, 3 * heads, d)
        q, k, v = (qkv[:, :, i * heads:(i + 1) * heads].transpose(1, 2) for i in range(3))
        a = F.scaled_dot_product_attention(rot(q), rot(k), v, is_causal=True).transpose(1, 2).reshape(b, t, h)
        x = norm(x + a @ s[pre + "self_attn.o_proj.weight"].T)
        gate, up = (x @ s[pre + "mlp.gate_up_proj.weight"].T).chunk(2, -1)
        return norm(x + (F.silu(gate) * up) @ s[pre + "mlp.down_proj.weight"].T)

    def level(name, z, injection):
        z = z + injection
        for i in range(ARCH[f"{name}_layers"]):
            z = block(f"{name}_level.layers.{i}.", z)
        return z

    x = math.sqrt(h) * s["embed_tokens.embedding_weight"][ids]
    z_h, z_l = s["H_init"].expand_as(x), s["L_init"].expand_as(x)
    for _ in range(ARCH["H_cycles"]):
        for _ in range(ARCH["L_cycles"]):
            z_l = level("L", z_l, z_h + x)
        z_h = level("H", z_h, z_l)
    return z_h @ s["lm_head.weight"].T


def test_a_reference_checkpoint_converts_with_equal_logits(tmp_path):
    src = tmp_path / "checkpoints"
    src.mkdir()
    state = reference_state()
    torch.save(state, src / "step_1200")
    (src / "all_config.yaml").write_text(yaml.safe_dump({"arch": ARCH, "lr": 1e-4}))
    out = cli("convert-hrm", src, tmp_path / "hrm")
    assert "note: the halting Q-head (ACT) was dropped" in out.stdout
    gen = load_generator(parse_spec(f"hrm:{tmp_path / 'hrm'}"))
    cfg = gen.model.cfg
    assert (cfg.heads, cfg.h_cycles, cfg.l_cycles, cfg.h_layers, cfg.l_layers, cfg.inner) == (4, 2, 3, 2, 1, INNER)
    assert not cfg.tie_embeddings and gen.trained
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = gen.model(ids)
    want = reference_logits(state, ids)
    assert torch.allclose(ours, want, atol=1e-4, rtol=1e-4), (ours - want).abs().max()
    # the output head is the reference's own, not the embedding
    assert torch.equal(gen.model.lm_head.weight, state[P + "lm_head.weight"])
    assert not torch.equal(gen.model.lm_head.weight, gen.model.embed.weight)


def test_a_foreign_tensor_or_missing_heads_is_one_line(tmp_path):
    from core.models.convert import convert_reference
    state = reference_state()
    torch.save({**state, "encoder.weight": torch.zeros(2)}, tmp_path / "step_1")
    with pytest.raises(ModelSpecError, match="encoder.weight: not a tensor of the reference HRM layout"):
        convert_reference(tmp_path / "step_1", tmp_path / "out")
    torch.save(state, tmp_path / "step_1")
    with pytest.raises(ModelSpecError, match="heads, h_cycles, l_cycles not in all_config.yaml.*--heads"):
        convert_reference(tmp_path / "step_1", tmp_path / "out")
    convert_reference(tmp_path / "step_1", tmp_path / "out", heads=4, h_cycles=2, l_cycles=3)
    assert load_generator(parse_spec(f"hrm:{tmp_path / 'out'}")).model.cfg.heads == 4
