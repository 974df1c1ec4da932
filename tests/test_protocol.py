"""One protocol for both sides of a comparison: the pipeline builds it once, both runs write it whole into their
manifests, their prompts are byte-identical, and the context rule cuts the same prompts on both sides."""
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from core.decide import comparable
from core.evaluation.evaluate import run_eval
from core.flow.pipeline import Pipeline, load_config
from core.models.tokenizer import load_tokenizer

CONFIG = """
[pipeline]
out_dir = "{out}"
data_path = "{data}"
limit = 3
ks = [1]
max_new_tokens = 8
context_window = {window}
batch = 2
[candidate]
model = "hrm:tiny"
[baseline]
model = "hf:{gpt2}"
"""


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A 2-layer GPT-2 with 1,024 positions and our tokenizer, saved as a checkpoint from elsewhere would be."""
    d = tmp_path_factory.mktemp("gpt2")
    tok = load_tokenizer("hrm-bpe-16k").fast
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=2, n_embd=64, n_head=2, n_positions=1024,
                               eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def both_sides(tmp_path, mbpp_path, gpt2_dir, window):
    config = tmp_path / "p.toml"
    config.write_text(CONFIG.format(out=tmp_path / "out", data=mbpp_path, gpt2=gpt2_dir, window=window))
    pipe = Pipeline(load_config(config), progress=False)
    for side in ("candidate", "baseline"):
        run_eval(pipe.eval_config(side))
    read = lambda side, name: (tmp_path / "out" / side / name).read_text()  # noqa: E731
    return pipe, {side: json.loads(read(side, "manifest.json")) for side in ("candidate", "baseline")}, read


@pytest.mark.slow
def test_both_sides_get_one_protocol_identical_prompts_and_the_same_cuts(tmp_path, mbpp_path, gpt2_dir):
    # MBPP's 3-shot prompts are ~600 tokens: a 512-token window cuts all three, on both sides alike
    pipe, manifests, read = both_sides(tmp_path, mbpp_path, gpt2_dir, window=512)
    cand, base = manifests["candidate"], manifests["baseline"]
    assert cand["protocol"] == base["protocol"]
    assert cand["protocol"]["top_k"] is None and cand["protocol"]["context_window"] == 512
    assert cand["protocol"]["dataset"]["sha256"] == cand["dataset"]["sha256"]
    prompts = {side: [json.loads(x)["prompt"] for x in read(side, "samples.jsonl").splitlines()]
               for side in ("candidate", "baseline")}
    assert prompts["candidate"] == prompts["baseline"] and len(prompts["candidate"]) == 3
    assert cand["context"]["prompts_cut"] == base["context"]["prompts_cut"] == 3
    assert cand["context"]["room_for_prompt"] == base["context"]["room_for_prompt"] == 504
    summaries = {side: json.loads(read(side, "run_summary.json")) for side in ("candidate", "baseline")}
    assert summaries["candidate"]["prompts_cut"] == summaries["baseline"]["prompts_cut"] == 3
    assert summaries["candidate"]["timings"]["generation_samples_per_s"] > 0
    assert comparable.check(tmp_path / "out" / "candidate", tmp_path / "out" / "baseline")["accepted"] == []


@pytest.mark.slow
def test_under_the_default_window_no_mbpp_prompt_of_these_tasks_is_cut(tmp_path, mbpp_path, gpt2_dir):
    _, manifests, _ = both_sides(tmp_path, mbpp_path, gpt2_dir, window=1024)
    assert {m["context"]["prompts_cut"] for m in manifests.values()} == {0}


def test_runs_under_different_context_windows_are_refused(tmp_path):
    from core.base.store import RunDir
    for name, window in (("a", 1024), ("b", 2048)):
        run = RunDir(tmp_path / name)
        run.claim({"kind": "eval", "n": name}, {"kind": "eval", "protocol": {"context_window": window}})
        run.update_manifest(status="done")
    with pytest.raises(comparable.IncomparableError, match="protocol.context_window: 1024 vs 2048"):
        comparable.check(tmp_path / "a", tmp_path / "b")
