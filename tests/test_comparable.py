"""stats and gate refuse runs that did not answer the same question the same way, and record what a
user accepted by name. Each case was a verdict with CI and p before the check existed."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.test_evaluate import cli, write_samples


def eval_run(run_dir, mbpp_path, *args):
    cli("eval", "--data-path", mbpp_path, "--limit", "3", "--run-dir", run_dir, "--no-progress", *args)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mbpp_path):
    d = tmp_path_factory.mktemp("comparable")
    oracle = eval_run(d / "oracle", mbpp_path, "--model", "oracle")
    empty = eval_run(d / "empty", mbpp_path, "--samples",
                     write_samples(d / "e.jsonl", [{"task_id": t, "completion": ""} for t in (11, 12, 13)]))
    hot = eval_run(d / "hot", mbpp_path, "--model", "hrm:tiny", "--max-new-tokens", "8", "--temperature", "0.8")
    cold = eval_run(d / "cold", mbpp_path, "--model", "hrm:tiny", "--max-new-tokens", "8", "--temperature", "0.2")
    changed = d / "mbpp-edited.jsonl"  # the same tasks, one text changed: another data set by its sha256
    lines = mbpp_path.read_text().splitlines()
    row = json.loads(lines[0])
    row["text"] += " (edited)"
    changed.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    other_data = eval_run(d / "other-data", changed, "--model", "oracle")
    return {"oracle": oracle, "empty": empty, "hot": hot, "cold": cold, "other_data": other_data, "dir": d}


def gate(a, b, *extra, check=False):
    return cli("gate", "--candidate", a, "--baseline", b, "--resamples", "1000", "--out", a.parent / "s.json",
               *extra, check=check)


def one_error(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_temperature_mismatch_is_refused_then_accepted_by_name(runs):
    one_error(gate(runs["hot"], runs["cold"]), "protocol.temperature: 0.8 vs 0.2", "--allow-mismatch temperature")
    one_error(cli("stats", "--a", runs["hot"], "--b", runs["cold"], "--out", runs["dir"] / "x.json", check=False),
              "protocol.temperature")
    proc = gate(runs["hot"], runs["cold"], "--allow-mismatch", "temperature")
    assert proc.returncode in (0, 3, 4)
    doc = json.loads((runs["hot"].parent / "s.json").read_text())
    assert doc["comparability"]["accepted"] == [{"field": "protocol.temperature", "candidate": 0.8, "baseline": 0.2}]


def test_a_different_dataset_sha_is_refused(runs):
    one_error(gate(runs["oracle"], runs["other_data"]), "dataset.sha256")


def test_a_model_against_a_samples_file_needs_the_unknown_sampling_accepted(runs):
    one_error(gate(runs["hot"], runs["empty"]), "protocol.prompt", "None")
    assert gate(runs["hot"], runs["empty"], "--allow-mismatch", "sampling").returncode == 4


def test_oracle_and_samples_file_sampled_nothing_and_compare(runs):
    assert gate(runs["oracle"], runs["empty"]).returncode == 4  # FAILURE (no bench, n=1): decided, not refused
    doc = json.loads((runs["oracle"].parent / "s.json").read_text())
    assert doc["comparability"]["accepted"] == [] and len(doc["comparability"]["checked"]) >= 10


def test_a_killed_candidate_is_refused(runs, mbpp_path):
    slow = write_samples(runs["dir"] / "slow.jsonl", [{"task_id": t, "completion": "import time\ntime.sleep(1)"}
                                                      for t in (11, 12, 13)])
    run_dir = runs["dir"] / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "core", "eval", "--samples", str(slow), "--data-path", str(mbpp_path),
                             "--limit", "3", "--workers", "1", "--run-dir", str(run_dir), "--no-progress"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (run_dir / "results.jsonl").exists() or not (run_dir / "results.jsonl").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    one_error(gate(run_dir, runs["empty"]), "has not finished (status interrupted)", "--allow-mismatch status")


def test_an_unknown_field_name_is_one_line(runs):
    one_error(gate(runs["hot"], runs["cold"], "--allow-mismatch", "temprature"), "not a protocol field")


def test_alpha_from_kpis_toml_reaches_stats_json_and_the_verdict(runs, tmp_path, mbpp_path):
    """Before: with alpha 0.01 in kpis.toml the gate said PARTIAL while stats.json said superior."""
    ref = {json.loads(line)["task_id"]: json.loads(line)["code"] for line in mbpp_path.read_text().splitlines()}
    # 12 tasks only A solves, 3 only B: exact McNemar p = 0.035, between 0.01 and 0.05
    a_rows = [{"task_id": t, "completion": ref[t] if t < 23 else ""} for t in range(11, 41)]
    b_rows = [{"task_id": t, "completion": ref[t] if t >= 38 else ""} for t in range(11, 41)]
    a = eval_run(tmp_path / "a", mbpp_path, "--limit", "30", "--samples", write_samples(tmp_path / "a.jsonl", a_rows))
    b = eval_run(tmp_path / "b", mbpp_path, "--limit", "30", "--samples", write_samples(tmp_path / "b.jsonl", b_rows))
    strict = tmp_path / "kpis.toml"
    strict.write_text((REPO / "kpis.toml").read_text().replace("alpha = 0.05", "alpha = 0.01"))
    for kpis, superior in ((REPO / "kpis.toml", True), (strict, False)):
        cli("gate", "--candidate", a, "--baseline", b, "--k", "1", "--kpis", kpis, "--resamples", "1000",
            "--out", tmp_path / "s.json", check=False)
        doc = json.loads((tmp_path / "s.json").read_text())
        p_row = next(k for k in doc["gate"]["kpis"] if k["key"] == "p_value")
        assert doc["pass_at_1"]["p_value_decision"] == pytest.approx(0.03515625)
        assert doc["pass_at_1"]["superior"] is superior and p_row["held"] is superior and doc["alpha"] in (0.05, 0.01)
