import dataclasses

import pytest
import torch

from core.models.hrm import HRM, HRMConfig, load_checkpoint, preset, save_checkpoint
from core.models import load_generator, parse_spec
from core.models.sampling import SamplingParams


def test_27m_parameter_counts():
    torch.manual_seed(0)
    model = HRM(preset("27m"))
    counts = model.param_counts()
    assert counts["non_embedding"] == 27_262_976 == 8 * 3_407_872
    assert counts["embedding"] == model.cfg.vocab_size * 512
    assert model.cfg.applications == 24


@pytest.mark.parametrize("cfg", [
    preset("27m"),
    preset("tiny"),
    dataclasses.replace(preset("tiny"), segments=2, h_cycles=3, l_cycles=2),
], ids=["27m", "tiny", "tiny-2seg-3x2"])
def test_incremental_decoding_matches_full_forward(cfg):
    torch.manual_seed(1)
    model = HRM(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (2, 48))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(2, 64)
        parts = [model(ids[:, :20], cache)]          # prefill
        parts += [model(ids[:, i:i + 1], cache) for i in range(20, 40)]  # one token at a time
        parts.append(model(ids[:, 40:], cache))       # a chunk after the cache
    assert cache.slots == cfg.applications and cache.length == 48
    assert torch.allclose(full, torch.cat(parts, dim=1), atol=1e-4, rtol=0)


def test_cache_is_written_in_place():
    model = HRM(preset("tiny")).eval()
    cache = model.new_cache(1, 32)
    ptr = cache.k.data_ptr()
    with torch.no_grad():
        for i in range(10):
            model(torch.tensor([[i]]), cache)
    assert cache.k.data_ptr() == ptr and cache.length == 10
    with pytest.raises(ValueError, match="KV cache full"):
        with torch.no_grad():
            model(torch.zeros(1, 40, dtype=torch.long), cache)


def test_one_step_gradient_and_deep_supervision():
    torch.manual_seed(2)
    cfg = dataclasses.replace(preset("tiny"), segments=2)
    model = HRM(cfg)
    ids = torch.randint(0, cfg.vocab_size, (2, 16))
    outs = model(ids, all_segments=True)
    assert len(outs) == 2 and all(o.requires_grad for o in outs)
    loss = sum(torch.nn.functional.cross_entropy(o[:, :-1].reshape(-1, cfg.vocab_size), ids[:, 1:].reshape(-1))
               for o in outs)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # The graph holds only the last L and H calls of a segment, so the activations kept for
    # backward are the same for 2x2 and 4x4 cycles.
    counts = []
    for h, l in ((2, 2), (4, 4)):
        m = HRM(dataclasses.replace(cfg, h_cycles=h, l_cycles=l, segments=1))
        box = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: box.append(1) or t, lambda t: t):
            m(ids)
        counts.append(len(box))
    assert counts[0] == counts[1] > 0


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    model = HRM(preset("tiny")).eval()
    save_checkpoint(model, tmp_path / "ck", {"tokenizer": "hrm-bpe-16k", "trained_steps": 5})
    loaded, meta = load_checkpoint(tmp_path / "ck")
    ids = torch.randint(0, 1000, (1, 12))
    with torch.no_grad():
        assert torch.equal(model(ids), loaded.eval()(ids))
    assert meta["trained_steps"] == 5
    gen = load_generator(parse_spec(f"hrm:{tmp_path / 'ck'}"))
    assert gen.trained is True


def test_generation_is_seeded_and_stops():
    gen = load_generator(parse_spec("hrm:tiny"))
    params = SamplingParams(n=3, temperature=0.8, top_p=0.95, max_new_tokens=24, seed=7)
    a, b = gen.generate("def add(a, b):\n", params), gen.generate("def add(a, b):\n", params)
    assert a == b and len(a) == 3
    greedy = gen.generate("x = 1\n", SamplingParams(n=2, max_new_tokens=16))
    assert greedy[0] == greedy[1]
    first = gen.generate("x = 1\n", SamplingParams(n=1, max_new_tokens=16))[0]
    if len(first) > 3:
        stop = first[2:4]
        cut = gen.generate("x = 1\n", SamplingParams(n=1, max_new_tokens=16, stop=(stop,)))[0]
        assert cut == first[:first.find(stop)]
    assert gen.trained is False


def test_bad_specs():
    from core.base.errors import ModelSpecError
    with pytest.raises(ModelSpecError, match="neither a preset"):
        load_generator(parse_spec("hrm:/no/such/dir"))
    with pytest.raises(ModelSpecError, match="unknown model spec"):
        parse_spec("gpt9")
    with pytest.raises(ValueError, match="divisible"):
        HRM(HRMConfig(hidden=60, heads=8))


def test_batched_greedy_equals_unbatched_and_sampling_keeps_its_seed():
    """Left-padded prompts of different lengths, greedy and sampled (each request has its own generator)."""
    from core.models.interface import Request
    gen = load_generator(parse_spec("hrm:tiny"), batch=1)
    prompts = ["def add(a, b):", "# longer, so the batch is padded\nimport os\ndef f(x):", "x = 1", "print("]
    greedy = [Request(p, SamplingParams(max_new_tokens=12, seed=i)) for i, p in enumerate(prompts)]
    sampled = [Request(p, SamplingParams(n=3, temperature=0.8, top_p=0.95, max_new_tokens=12, seed=i))
               for i, p in enumerate(prompts)]
    alone = {kind: dict(gen.generate_many(reqs)) for kind, reqs in (("greedy", greedy), ("sampled", sampled))}
    gen.batch = 4
    together = {kind: dict(gen.generate_many(reqs)) for kind, reqs in (("greedy", greedy), ("sampled", sampled))}
    assert together == alone
    assert len({v[0] for v in alone["greedy"].values()}) > 1 and all(len(v) == 3 for v in alone["sampled"].values())


def test_left_padding_leaves_each_rows_logits_unchanged():
    torch.manual_seed(3)
    model = HRM(preset("tiny")).eval()
    a, b = torch.randint(0, 1000, (1, 7)), torch.randint(0, 1000, (1, 12))
    batch = torch.cat([torch.cat([torch.zeros(1, 5, dtype=torch.long), a], 1), b])
    with torch.no_grad():
        both = model(batch, pad=torch.tensor([5, 0]))
        assert torch.allclose(both[0, 5:], model(a)[0], atol=1e-5)
        assert torch.allclose(both[1], model(b)[0], atol=1e-5)


def test_presets_pin_their_tokenizer_and_a_checkpoint_uses_its_own(tmp_path):
    gen = load_generator(parse_spec("hrm:tiny"))
    assert gen.tokenizer.name == "hrm-bpe-16k" and gen.model.cfg.vocab_size == gen.tokenizer.vocab_size
    save_checkpoint(gen.model, tmp_path / "ck", {"tokenizer": "hrm-bpe-16k"})
    gen.tokenizer.fast.backend_tokenizer.save(str(tmp_path / "ck" / "tokenizer.json"))
    loaded = load_generator(parse_spec(f"hrm:{tmp_path / 'ck'}"))
    assert loaded.tokenizer.name == str(tmp_path / "ck" / "tokenizer.json")
    assert loaded.tokenizer.encode("def f(x):") == gen.tokenizer.encode("def f(x):")
