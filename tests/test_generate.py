import json

from core.models.interface import Generator
from core.tasks import data, prompts
from core.evaluation.generate import generate_samples
from core.tasks.completions import clean, cut_at_stop, entry_point, keep_definitions
from core.models import load_generator, parse_spec
from core.models.sampling import SamplingParams
from tests.test_evaluate import cli


def test_entry_point_is_the_function_the_tests_call(mbpp_path):
    tasks = data.load_dataset("mbpp", mbpp_path, "test").by_key()
    assert entry_point(tasks["11"]) == "remove_Occ"
    assert entry_point(tasks["13"]) == "count_common"  # wrapped in builtins/parentheses in some tests


def test_keep_definitions_drops_top_level_calls():
    code = "import math\nR = 3\ndef f(x):\n    return math.sqrt(x)\nprint(f(4))\nassert f(4) == 2\nf(9)\n"
    assert keep_definitions(code, "f") == "import math\nR = 3\ndef f(x):\n    return math.sqrt(x)\n"


def test_keep_definitions_cuts_trailing_garbage_and_leaves_broken_code():
    assert keep_definitions("def f(x):\n    return x\nthis is not python(\n", "f") == "def f(x):\n    return x\n"
    assert keep_definitions("def g(:\n", "g") == "def g(:\n"
    assert keep_definitions("def other():\n    pass\n", "f") == "def other():\n    pass\n"  # no f: as it is


def test_postprocess_cuts_at_stop(mbpp_path):
    ds = data.load_dataset("mbpp", mbpp_path, "test")
    t = ds.by_key()["11"]
    tpl = prompts.get_template("mbpp-3shot", "mbpp")
    raw = "def remove_Occ(s, ch):\n    return s\n[DONE]\ndef junk(): pass"
    assert clean(raw, t, tpl.stop) == "def remove_Occ(s, ch):\n    return s\n"
    assert cut_at_stop("a\nSTOP b STOP", ("STOP",)) == ("a\n", True) and cut_at_stop("ab", ("X",)) == ("ab", False)


def test_every_model_kind_is_a_generator(tmp_path):
    """generate.py relies on the Generator interface alone: no kind needs a special case there."""
    from core.models.hf import HFGenerator
    from core.models.openai_compat import OpenAICompatGenerator
    for gen in (load_generator(parse_spec("oracle")), load_generator(parse_spec("hrm:tiny")),
                load_generator(parse_spec("hf-arch:gpt2")), OpenAICompatGenerator("http://127.0.0.1:9/v1#m")):
        assert isinstance(gen, Generator), type(gen).__name__
    assert HFGenerator.cleanup and not load_generator(parse_spec("oracle")).cleanup


def test_generation_resumes_with_identical_samples(tmp_path, mbpp_path):
    ds = data.load_dataset("mbpp", mbpp_path, "test", limit=4)
    tpl = prompts.get_template("mbpp-docstring", "mbpp")
    gen = load_generator(parse_spec("hrm:tiny"))
    params = SamplingParams(n=3, temperature=0.8, max_new_tokens=10, stop=tpl.stop, seed=1)
    whole = tmp_path / "whole.jsonl"
    generate_samples(gen, ds, tpl, params, whole, progress=False)
    lines = whole.read_text().splitlines(keepends=True)
    assert len(lines) == 12
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:5]) + lines[5][:20])  # killed while writing line 6
    generate_samples(gen, ds, tpl, params, partial, progress=False)
    assert partial.read_text() == whole.read_text()


def test_hrm_tiny_eval_end_to_end(tmp_path, mbpp_path):
    out = cli("eval", "--model", "hrm:tiny", "--dataset", "mbpp", "--data-path", mbpp_path, "--split", "test",
              "--limit", "3", "--n", "2", "--temperature", "0.8", "--max-new-tokens", "24", "--run-dir", tmp_path / "r", "--no-progress")
    assert "3 tasks, 6 samples" in out.stdout and "pass@1 = 0.000" in out.stdout
    m = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert m["trained"] is False and m["model_info"]["params"]["non_embedding"] == 106_496
