import json
import os

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

from core.base.errors import ModelSpecError
from core.models import load_generator, parse_spec
from core.models.sampling import SamplingParams
from core.models.tokenizer import load_tokenizer
from tests.test_evaluate import cli


@pytest.fixture(scope="module")
def small_gpt2(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpt2")
    tok = load_tokenizer("hrm-bpe-16k").fast
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=64, n_head=2, n_positions=1024,
                                       eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id))
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def small_t5(tmp_path_factory):
    d = tmp_path_factory.mktemp("t5")
    tok = load_tokenizer("hrm-bpe-16k").fast
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=len(tok), d_model=64, d_ff=128, d_kv=16, num_layers=2,
                                                num_heads=4, decoder_start_token_id=tok.pad_token_id,
                                                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.mark.parametrize("which", ["small_gpt2", "small_t5"])
def test_eval_of_a_saved_model_end_to_end(which, request, tmp_path, mbpp_path):
    model_dir = request.getfixturevalue(which)
    out = cli("eval", "--model", f"hf:{model_dir}", "--dataset", "mbpp", "--data-path", mbpp_path, "--limit", "2",
              "--n", "2", "--temperature", "0.8", "--max-new-tokens", "12", "--prompt", "mbpp-docstring",
              "--run-dir", tmp_path / "r", "--no-progress")
    assert "2 tasks, 4 samples" in out.stdout and "pass@1 = 0.000" in out.stdout
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["trained"] is True and manifest["model"] == f"hf:{model_dir}"
    rows = [json.loads(x) for x in (tmp_path / "r" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all("raw_completion" in r for r in rows)


def test_hf_kv_cache_matches_full_forward(small_gpt2):
    gen = load_generator(parse_spec(f"hf:{small_gpt2}"))
    ids = torch.randint(0, 1000, (1, 30))
    with torch.no_grad():
        full = gen.model(ids).logits
        first = gen.model(ids[:, :20], use_cache=True)
        past, steps = first.past_key_values, [first.logits]
        for i in range(20, 30):
            o = gen.model(ids[:, i:i + 1], cache=past, use_cache=True)
            past = o.past_key_values
            steps.append(o.logits)
    assert torch.allclose(full, torch.cat(steps, dim=1), atol=1e-4)


def test_generation_stops_and_is_seeded(small_gpt2):
    gen = load_generator(parse_spec(f"hf:{small_gpt2}"))
    p = SamplingParams(n=2, temperature=0.9, max_new_tokens=10, seed=3)
    assert gen.generate("def f(x):", p) == gen.generate("def f(x):", p)
    text = gen.generate("def f(x):", SamplingParams(n=1, max_new_tokens=10))[0]
    assert len(gen.tok.encode(text, add_special_tokens=False)) <= 10


def test_hf_arch_gpt2_is_the_real_size_and_untrained():
    gen = load_generator(parse_spec("hf-arch:gpt2"))
    assert gen.describe()["params"]["total"] == 124_439_808
    assert gen.trained is False


def test_offline_hub_name_says_how_to_pass_a_directory():
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # the ecosystem's switch, set by conftest, not a variable of ours
    with pytest.raises(ModelSpecError, match="local directory.*HF_HUB_OFFLINE.*hf:DIR"):
        load_generator(parse_spec("hf:Salesforce/codet5-small"))


def test_sampling_is_pure_top_p_like_every_other_model(small_gpt2):
    """transformers adds top-k 50 to sampling when top_k is unset: GPT-2 was sampled top-k 50 + top-p while
    HRM got top-p alone. A near-uniform toy model at top_p 0.95 has thousands of tokens in its nucleus;
    under top-k 50, 400 draws could never show more than 50 distinct ones."""
    gen = load_generator(parse_spec(f"hf:{small_gpt2}"))
    draws = gen.generate("def f(x):", SamplingParams(n=400, temperature=1.0, top_p=0.95, max_new_tokens=1, seed=0))
    assert len(set(draws)) > 200
    logits = gen.model(**gen.tok(["def f(x):"], return_tensors="pt")).logits[0, -1]
    probs = torch.softmax(logits, -1).sort(descending=True).values
    nucleus = int((probs.cumsum(0) - probs < 0.95).sum())
    assert nucleus > 1000  # what top-p alone keeps: the draws above come from it, not from 50 tokens


PROMPTS = ["def add(a, b):", "# a longer prompt, so that the batch needs left padding\nimport os\ndef f(x):",
           "x = 1", "class Stack:\n    def push(self, item):"]


def test_batched_greedy_equals_unbatched(small_gpt2):
    """Four prompts of different lengths in one left-padded batch give each the output it gets alone."""
    from core.models.interface import Request
    gen = load_generator(parse_spec(f"hf:{small_gpt2}"), batch=1)
    requests = [Request(p, SamplingParams(max_new_tokens=16, seed=i)) for i, p in enumerate(PROMPTS)]
    alone = dict(gen.generate_many(requests))
    gen.batch = 4
    together = dict(gen.generate_many(requests))
    assert together == alone and len({t[0] for t in alone.values()}) > 1


def test_a_prompt_too_long_for_the_window_keeps_its_end(small_gpt2):
    from core.models.sampling import fit_prompt
    gen = load_generator(parse_spec(f"hf:{small_gpt2}"))
    ids = list(range(1000))
    kept, cut = fit_prompt(ids, SamplingParams(max_new_tokens=100), gen.positions)
    assert cut and kept == ids[-924:]
    kept, cut = fit_prompt(ids, SamplingParams(max_new_tokens=100, context=600), gen.positions)
    assert cut and kept == ids[-500:]
    assert fit_prompt(ids[:500], SamplingParams(max_new_tokens=100, context=600), gen.positions) == (ids[:500], False)
    assert gen.generate("x " * 2000, SamplingParams(max_new_tokens=4))  # runs instead of overflowing 1,024 positions
