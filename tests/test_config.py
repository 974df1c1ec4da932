"""One source for each setting: the CLI, the pipeline's TOML and the app's launch form get their defaults
from the run kinds' config dataclasses, and agree with them."""
import dataclasses

import pytest

from core.base.config import default_of, defaults, fields, from_args, to_argv
from core.base.errors import UsageError
from core.cli import build_parser
from core.evaluation.config import EvalConfig, SampledConfig
from core.flow.pipeline import Pipeline, load_config
from core.lab.config import BenchConfig, TrainConfig
from core.views import jobs

MINIMAL_ARGV = {
    EvalConfig: ["eval", "--model", "oracle", "--run-dir", "r"],
    TrainConfig: ["train", "--model", "hrm:tiny", "--run-dir", "r"],
    BenchConfig: ["bench", "--model", "hrm:tiny"],
}
PIPELINE = """[pipeline]
out_dir = "{out}"
[train]
model = "hrm:tiny"
[candidate]
model = "train"
[baseline]
model = "oracle"
[bench]
"""


def cli_defaults(cls) -> dict:
    args = build_parser().parse_args(MINIMAL_ARGV[cls])
    return {f.name: getattr(args, f.name) for f in fields(cls) if f.metadata["cli"]}


@pytest.fixture
def pipeline(tmp_path):
    config = tmp_path / "p.toml"
    config.write_text(PIPELINE.format(out=tmp_path / "out"))
    return Pipeline(load_config(config))


@pytest.mark.parametrize("cls", [EvalConfig, TrainConfig, BenchConfig])
def test_cli_defaults_are_the_dataclass_defaults(cls):
    want = {f.name: default_of(f) for f in fields(cls) if f.metadata["cli"] and default_of(f) is not dataclasses.MISSING}
    got = cli_defaults(cls)
    assert {k: got[k] for k in want} == want
    assert len(want) >= 8  # the walk found the settings (a test that cannot fail is a defect)


def test_pipeline_defaults_are_the_dataclass_defaults(pipeline):
    made = {"candidate": pipeline.eval_config("candidate"), "train": pipeline.train_config(),
            "bench": pipeline.bench_config()}
    for cfg in made.values():
        cls = type(cfg)
        for name, default in defaults(cls, "toml").items():
            if name in ("data_path", "models", "model"):  # the models and data the pipeline was given
                continue
            assert getattr(cfg, name) == default, (cls.__name__, name)
    assert made["bench"].models == [pipeline.model_spec("candidate"), "oracle"]
    # the sampled pair's sampling: [sampled]'s defaults, from SampledConfig alone
    sampled = pipeline.eval_config("candidate", sampled=True)
    want = defaults(SampledConfig, "toml")
    assert want == {"enabled": True, "n": 10, "temperature": 0.8, "top_p": 0.95}
    assert (sampled.n, sampled.temperature, sampled.top_p) == (want["n"], want["temperature"], want["top_p"])


@pytest.mark.parametrize("kind", jobs.KINDS)
def test_launch_form_defaults_are_the_dataclass_defaults(kind, tmp_path):
    cls = jobs.CONFIGS[kind]
    form = {f["name"]: f["default"] for f in jobs.form_fields(kind)}
    assert form and all(form[k] == v for k, v in defaults(cls, "form").items())
    # a request with the form's defaults launches exactly the CLI's defaults: no flag but the required ones
    argv = jobs.build_argv(jobs.JobRequest(kind, "x", "hrm:tiny", form), tmp_path / "x")
    assert argv == {"eval": ["eval", "--model", "hrm:tiny", "--run-dir", str(tmp_path / "x"), "--no-progress"],
                    "train": ["train", "--model", "hrm:tiny", "--run-dir", str(tmp_path / "x")],
                    "bench": ["bench", "--model", "hrm:tiny", "--out", str(tmp_path / "x" / "bench.json")]}[kind]


def test_launch_form_on_the_runs_screen_shows_the_dataclass_defaults(tmp_path, monkeypatch):
    from streamlit import config
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("HRM_GATE_STORE", str(tmp_path / "store"))
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")  # explicitly loopback: the form shows without sign-in
    try:
        at = AppTest.from_file("../app_pages/runs.py", default_timeout=60).run()
    finally:
        config.set_option("server.address", before)
    shown = {w.label: w.value for w in [*at.number_input, *at.checkbox]}
    for kind in jobs.KINDS:
        for f in jobs.form_fields(kind):
            want = (f["all"] or 0) if f["default"] is None else f["default"]  # an optional count shows all it means
            assert shown[f["label"]] == want, f["label"]


@pytest.mark.parametrize("cfg", [
    EvalConfig(run_dir="r", model="oracle", n=3, temperature=0.8, top_p=0.95, ks=(1, 2), limit=7, challenge_tests=True),
    TrainConfig(model="hrm:tiny", run_dir="r", steps=9, lr=1e-3, precision="fp32", segments=2),
    BenchConfig(models=["hrm:tiny", "oracle"], repeats=1, skip_train=True, new_tokens=4),
])
def test_a_config_survives_the_command_line(cfg):
    cls = type(cfg)
    head = {EvalConfig: ["eval", "--model", "oracle", "--run-dir", "r"], TrainConfig: ["train", "--run-dir", "r"],
            BenchConfig: ["bench", "--model", "hrm:tiny", "--model", "oracle"]}[cls]
    args = build_parser().parse_args(head + to_argv(cfg))
    fixed = {EvalConfig: {"run_dir": "r", "model": "oracle"}, TrainConfig: {"run_dir": "r"},
             BenchConfig: {"models": ["hrm:tiny", "oracle"]}}[cls]
    assert from_args(cls, args, **fixed) == cfg


def test_out_of_bounds_settings_are_refused_by_name():
    with pytest.raises(UsageError, match=r"n \(flag --n\) must be >= 1"):
        EvalConfig(run_dir="r", n=0)
    with pytest.raises(UsageError, match=r"seq_len \(flag --seq-len\) must be >= 2"):
        TrainConfig(model="hrm:tiny", run_dir="r", seq_len=1)
    with pytest.raises(UsageError, match="no such setting"):
        jobs.config_for(jobs.JobRequest("train", "x", "hrm:tiny", {"split": "train"}), "x")


def test_n_above_one_at_temperature_zero_is_refused_in_one_line(tmp_path):
    from tests.test_evaluate import cli
    proc = cli("eval", "--model", "hrm:tiny", "--n", "2", "--run-dir", tmp_path / "r", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: --n 2 at temperature 0 gives 2 identical greedy samples per task; use --n 1 for greedy pass@1, "
        "or sample (e.g. --temperature 0.8 --top-p 0.95) for pass@k"]
    assert not (tmp_path / "r").exists()


def test_every_commands_help_renders():
    """A setting's help text is an argparse format string: a bare % in it broke `eval --help`."""
    import argparse
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(subs.choices) > 10
    for name, sub in subs.choices.items():
        assert sub.format_help(), name
