"""python -m core pipeline: every step for real on a small MBPP slice, then a rerun that skips them all."""
import json
import signal
import subprocess
import sys
import time

import pytest

from core.tasks.data import load_dataset
from tests.conftest import REPO
from tests.test_evaluate import cli, write_samples

pytestmark = pytest.mark.slow  # make test-fast skips these

CONFIG = """
[pipeline]
out_dir = "{out}"
dataset = "mbpp"
data_path = "{data}"
split = "test"
limit = 4
ks = [1]
max_new_tokens = 16

[train]
model = "hrm:tiny"
steps = 3
batch = 2
seq_len = 128

[candidate]
model = "train"

[baseline]
samples = "{samples}"

[bench]
models = ["train"]
repeats = 1
throughput_repeats = 1
new_tokens = 4
skip_train = true

[gate]
resamples = 2000
allow_mismatch = ["sampling"]  # the baseline is a samples file: its sampling is unknown

[wandb]
mode = "off"

[alerts]
sinks = ["console"]
"""


def statuses(stdout):
    rows = [line.split() for line in stdout.splitlines() if line.startswith("  ") and len(line.split()) > 2]
    return {r[0]: r[1] for r in rows if r[0] in ("train", "eval-candidate", "eval-baseline", "eval-candidate-sampled",
                                                   "eval-baseline-sampled", "bench", "collect", "decide", "publish",
                                                   "wandb", "report", "alerts")}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, mbpp_path):
    d = tmp_path_factory.mktemp("pipeline")
    tasks = load_dataset("mbpp", mbpp_path, "test", limit=4).tasks
    # the baseline: reference solutions for the first two tasks, nothing for the others
    samples = write_samples(d / "baseline.jsonl", [{"task_id": t.task_id, "completion": t.reference if i < 2 else ""}
                                                   for i, t in enumerate(tasks)])
    config = d / "pipeline.toml"
    config.write_text(CONFIG.format(out=d / "out", data=mbpp_path, samples=samples))
    first = cli("pipeline", "--config", config, "--no-progress", check=False)
    return d, config, first


def test_pipeline_runs_every_step_then_skips_them_all(setup):
    d, config, first = setup
    assert first.returncode == 4, first.stdout + first.stderr  # untrained candidate: FAILURE
    # the baseline is a samples file (one protocol): no sampled pair, and the summary says why
    assert "eval-candidate-sampled  off" in first.stdout and "[baseline] scores a samples file" in first.stdout
    assert statuses(first.stdout) == {"train": "ran", "eval-candidate": "ran", "eval-baseline": "ran",
                                      "eval-candidate-sampled": "off", "eval-baseline-sampled": "off", "bench": "ran",
                                      "collect": "ran", "decide": "ran", "publish": "ran", "wandb": "off", "report": "ran",
                                      "alerts": "ran"}
    out = d / "out"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["verdict"] == "FAILURE"
    assert stats["pass_at_1"]["baseline"] == 0.5 and stats["pass_at_1"]["candidate"] == 0.0
    assert stats["n_tasks"] == 4 and stats["resamples"] == 2000
    bench = json.loads((out / "bench.json").read_text())
    assert list(bench["models"]) == [f"hrm:{out / 'train' / 'checkpoint'}"]
    assert "0.0%" in (out / "badge.svg").read_text()
    assert (out / "summary.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((out / "collected.json").read_text())["train"]["training"]["steps"] == 3
    assert json.loads((out / "alerts.json").read_text())["verdict"] == "FAILURE"
    assert "verdict: FAILURE" not in first.stdout or "pipeline" in first.stdout
    assert first.stdout.strip().splitlines()[-1].startswith("  9 step(s) ran, 0 skipped")

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file() and p.name != "pipeline.json"}
    again = cli("pipeline", "--config", config, "--no-progress", check=False)
    assert again.returncode == 4
    assert set(statuses(again.stdout).values()) == {"skipped", "off"}
    assert "0 step(s) ran, 9 skipped" in again.stdout
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file() and p.name != "pipeline.json"}
    summary = json.loads((out / "pipeline.json").read_text())
    assert summary["verdict"] == "FAILURE" and len(summary["steps"]) == 12


def test_missing_outputs_and_redo_rerun_only_their_steps(setup):
    d, config, _ = setup
    (d / "out" / "summary.pdf").unlink()
    proc = cli("pipeline", "--config", config, "--no-progress", check=False)
    s = statuses(proc.stdout)
    assert proc.returncode == 4 and s["report"] == "ran" and (d / "out" / "summary.pdf").exists()
    assert s["decide"] == s["publish"] == s["alerts"] == "skipped"  # the report reads the verdict, it does not rewrite stats.json
    proc = cli("pipeline", "--config", config, "--no-progress", "--redo", "stats", check=False)
    s = statuses(proc.stdout)
    assert proc.returncode == 4 and s["report"] == "ran" and s["decide"] == "ran" and s["publish"] == "ran"
    assert s["train"] == s["eval-candidate"] == s["bench"] == "skipped"


def test_a_pipeline_killed_half_way_resumes_to_the_same_results(setup, tmp_path):
    d, config, _ = setup
    killed = tmp_path / "killed.toml"
    killed.write_text(config.read_text().replace(f'out_dir = "{d / "out"}"', f'out_dir = "{tmp_path / "out"}"'))
    proc = subprocess.Popen([sys.executable, "-m", "core", "pipeline", "--config", str(killed), "--no-progress"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "train" / "metrics.jsonl").exists():  # SIGKILL in the middle of training
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "stats.json").exists()
    again = cli("pipeline", "--config", killed, "--no-progress", check=False)
    assert again.returncode == 4 and statuses(again.stdout)["train"] == "ran"
    for name in ("train/metrics.jsonl", "candidate/results.jsonl", "baseline/results.jsonl"):
        if name.startswith("train"):
            steps = [json.loads(x)["step"] for x in (tmp_path / "out" / name).read_text().splitlines()]
            assert steps == [1, 2, 3]
        else:
            assert (tmp_path / "out" / name).read_bytes() == (d / "out" / name).read_bytes()


def test_a_failing_step_stops_with_one_line_and_the_same_command_resumes(tmp_path, mbpp_path):
    samples = tmp_path / "baseline.jsonl"
    samples.write_text('{"task_id": 11, "completion": ""}\n{"task_id": 12, "completion": \n')
    config = tmp_path / "p.toml"
    text = CONFIG.format(out=tmp_path / "out", data=mbpp_path, samples=samples).replace(
        "[train]\nmodel = \"hrm:tiny\"\nsteps = 3\nbatch = 2\nseq_len = 128\n", "").replace('model = "train"', 'model = "hrm:tiny"')
    text = text[:text.index("[bench]")] + text[text.index("[gate]"):]  # no bench: not what this test is about
    config.write_text(text)
    proc = cli("pipeline", "--config", config, "--no-progress", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: step eval-baseline failed:")
    assert "baseline.jsonl:2: not valid JSON" in proc.stderr
    assert statuses(proc.stdout) == {"train": "off", "eval-candidate": "ran", "eval-baseline": "failed"}
    candidate = (tmp_path / "out" / "candidate" / "results.jsonl").read_bytes()
    samples.write_text("".join(json.dumps({"task_id": t, "completion": ""}) + "\n" for t in (11, 12, 13, 14)))
    refused = cli("pipeline", "--config", config, "--no-progress", "--limit", "2", check=False)
    assert refused.returncode == 1 and "holds a different run" in refused.stderr  # a changed slice is not mixed in
    fixed = cli("pipeline", "--config", config, "--no-progress", check=False)
    s = statuses(fixed.stdout)
    assert fixed.returncode == 4 and s["eval-candidate"] == "skipped" and s["eval-baseline"] == "ran" and s["decide"] == "ran"
    assert s["bench"] == "off"
    assert (tmp_path / "out" / "candidate" / "results.jsonl").read_bytes() == candidate


@pytest.mark.parametrize("text, message", [
    (None, "pipeline config not found"),
    ("[pipeline\n", "not valid TOML"),
    ("[pipelin]\n", "unknown section [pipelin]"),
    ("[candidate]\nmodle = 'hrm:tiny'\n", "unknown key 'modle' in [candidate]"),
    ("[candidate]\nmodel = 'hrm:tiny'\nsamples = 'x'\n[baseline]\nmodel = 'oracle'\n", "exactly one of model"),
    ("[candidate]\nmodel = 'train'\n[baseline]\nmodel = 'oracle'\n", "needs a [train] section"),
    # settings come from the run kinds' config dataclasses: a key they do not know, or of the wrong type
    ("[train]\nmodel = 'hrm:tiny'\nsplit = 'train'\n[candidate]\nmodel = 'train'\n[baseline]\nmodel = 'oracle'\n",
     "unknown key 'split' in [train]"),
    ("[pipeline]\nn = 'two'\n[candidate]\nmodel = 'oracle'\n[baseline]\nmodel = 'oracle'\n", "n = 'two' should be int"),
    # the protocol is one for both sides: a side cannot set its own
    ("[candidate]\nmodel = 'oracle'\ntemperature = 0.2\n[baseline]\nmodel = 'oracle'\n",
     "unknown key 'temperature' in [candidate]"),
    ("[pipeline]\nks = 10\n[candidate]\nmodel = 'oracle'\n[baseline]\nmodel = 'oracle'\n", "ks = 10 should be tuple"),
    ("[train]\nsteps = 3\n[candidate]\nmodel = 'train'\n[baseline]\nmodel = 'oracle'\n", "[train] needs model"),
    ("[pipeline]\nn = 0\n[candidate]\nmodel = 'oracle'\n[baseline]\nmodel = 'oracle'\n", "n (flag --n) must be >= 1"),
    ("[pipeline]\nks = [0]\n[candidate]\nmodel = 'oracle'\n[baseline]\nmodel = 'oracle'\n", "must be whole numbers >= 1"),
    ("[pipeline]\nout_dir = 5\n[candidate]\nmodel = 'oracle'\n[baseline]\nmodel = 'oracle'\n", "out_dir = 5"),
    ("[candidate]\nmodel = 'oracle'\n[baseline]\nmodel = 'oracle'\n[gate]\nallow_mismatch = 'temperature'\n",
     "should be a list of strings"),
])
def test_bad_config_is_one_clear_line(tmp_path, text, message):
    config = tmp_path / "p.toml"
    if text is not None:
        config.write_text(text)
    proc = cli("pipeline", "--config", config, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("change, message", [
    (('samples = "{samples}"', 'model = "hf:gpt2"'), "hf:gpt2 is neither a local directory nor in the local"),
    (('samples = "{samples}"', 'samples = "/nonexistent/s.jsonl"'), "[baseline] samples file not found"),
    (('samples = "{samples}"', 'model = "hrm:/nonexistent/ckpt"'), "checkpoint directory not found"),
    (('model = "train"', 'model = "gpt3"'), "unknown model spec 'gpt3'"),
    (('data_path = "{data}"', 'data_path = "/nonexistent/mbpp.jsonl"'), "data_path /nonexistent/mbpp.jsonl not found"),
])
def test_what_would_fail_later_fails_before_anything_runs(tmp_path, mbpp_path, change, message):
    samples = write_samples(tmp_path / "s.jsonl", [{"task_id": 11, "completion": ""}])
    config = tmp_path / "p.toml"
    config.write_text(CONFIG.replace(*change).format(out=tmp_path / "out", data=mbpp_path, samples=samples))
    proc = cli("pipeline", "--config", config, check=False)
    assert proc.returncode in (1, 2) and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_redo_of_a_run_step_is_refused(tmp_path):
    proc = cli("pipeline", "--config", "pipeline.toml", "--redo", "eval-candidate", check=False)
    assert proc.returncode == 2 and "delete the run directory" in proc.stderr


def test_the_bootstrap_runs_once_per_pipeline(tmp_path, mbpp_path, monkeypatch):
    """Deciding compares the runs once; publishing, the report and the alerts read stats.json."""
    from core.decide import stats
    from core.flow.pipeline import Pipeline, load_config
    samples = write_samples(tmp_path / "b.jsonl", [{"task_id": t, "completion": ""} for t in range(11, 14)])
    config = tmp_path / "p.toml"
    config.write_text(f'[pipeline]\nout_dir = "{tmp_path / "out"}"\ndata_path = "{mbpp_path}"\nlimit = 3\nks = [1]\n'
                      f'[candidate]\nmodel = "oracle"\n[baseline]\nsamples = "{samples}"\n[gate]\nresamples = 1000\n'
                      '[wandb]\nmode = "off"\n')
    calls = []
    real = stats.compare
    monkeypatch.setattr(stats, "compare", lambda *a, **kw: calls.append(kw.get("k")) or real(*a, **kw))
    results = Pipeline(load_config(config), progress=False).run()
    ran = {r.name for r in results if r.status == "ran"}
    assert {"decide", "publish", "report", "alerts"} <= ran
    assert calls == [1]  # one comparison, for the one k, in the whole pipeline
    doc = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert doc["verdict"] == "FAILURE" and doc["pass_at_1"]["delta"] == 1.0
