"""End to end: the real CLI on real MBPP data."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO


def cli(*args, check=True, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def results(run_dir):
    return (run_dir / "results.jsonl").read_bytes()


def write_samples(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_oracle_full_test_split_is_deterministic(tmp_path, mbpp_path, oracle_run):
    for name, workers in {"b": 2, "c": 1}.items():
        out = cli("eval", "--model", "oracle", "--dataset", "mbpp", "--data-path", mbpp_path, "--split", "test",
                  "--workers", workers, "--run-dir", tmp_path / name, "--no-progress")
        assert "pass@1 = 1.000" in out.stdout
    assert results(oracle_run) == results(tmp_path / "b") == results(tmp_path / "c")
    summary = json.loads((oracle_run / "run_summary.json").read_text())
    assert summary["n_tasks"] == 500 and summary["pass_at_k"] == {"1": 1.0}
    assert summary["per_task"]["367"] == {"n": 1, "c": 1}
    manifest = json.loads((oracle_run / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["dataset"]["sha256"]
    assert manifest["machine"]["cores"] and manifest["protocol"]["generation"] == "reference solutions"
    assert manifest["protocol"]["temperature"] is None  # the oracle sampled nothing: no fictional settings
    assert "unprivileged" in manifest["sandbox"]["user"] or os.geteuid() != 0


def test_sanitized_oracle(tmp_path, sanitized_path):
    out = cli("eval", "--model", "oracle", "--dataset", "mbpp-sanitized", "--data-path", sanitized_path,
              "--run-dir", tmp_path / "s", "--no-progress")
    assert "257 tasks" in out.stdout and "pass@1 = 1.000" in out.stdout


def test_samples_file_several_per_task(tmp_path, mbpp_path):
    rows = []
    for tid in range(11, 21):
        rows += [{"task_id": tid, "completion": ""}] * 9
    ref = {json.loads(line)["task_id"]: json.loads(line)["code"] for line in mbpp_path.read_text().splitlines()}
    rows += [{"task_id": f"MBPP/{tid}", "completion": ref[tid]} for tid in range(11, 21)]
    out = cli("eval", "--samples", write_samples(tmp_path / "s.jsonl", rows), "--dataset", "mbpp",
              "--data-path", mbpp_path, "--k", "1,10", "--run-dir", tmp_path / "r", "--no-progress")
    summary = json.loads((tmp_path / "r" / "run_summary.json").read_text())
    # the 490 tasks the file has no sample for count as failures (10 each), not as left out
    assert summary["pass_at_k"]["1"] == pytest.approx(0.1 * 10 / 500) and summary["pass_at_k"]["10"] == pytest.approx(0.02)
    assert summary["n_tasks"] == 500 and summary["missing_samples"] == 4900
    assert summary["status_counts"]["missing"] == 4900 and "pass@10 = 0.020" in out.stdout
    assert "4900 sample(s) missing" in out.stderr
    limited = cli("eval", "--samples", tmp_path / "s.jsonl", "--data-path", mbpp_path, "--limit", "10", "--k", "1,10",
                  "--run-dir", tmp_path / "r10", "--no-progress")
    assert "pass@1 = 0.100" in limited.stdout and "pass@10 = 1.000" in limited.stdout


def test_a_task_with_fewer_samples_counts_the_missing_ones_as_failures(tmp_path, mbpp_path):
    ref = {json.loads(line)["task_id"]: json.loads(line)["code"] for line in mbpp_path.read_text().splitlines()}
    rows = [{"task_id": 11, "completion": ref[11]}] * 4 + [{"task_id": 12, "completion": ref[12]}]
    cli("eval", "--samples", write_samples(tmp_path / "s.jsonl", rows), "--data-path", mbpp_path, "--limit", "2",
        "--k", "1,4", "--run-dir", tmp_path / "r", "--no-progress")
    summary = json.loads((tmp_path / "r" / "run_summary.json").read_text())
    assert summary["per_task"] == {"11": {"n": 4, "c": 4}, "12": {"n": 4, "c": 1}} and summary["missing_samples"] == 3
    assert summary["pass_at_k"]["1"] == pytest.approx((1 + 0.25) / 2)


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_results(tmp_path, mbpp_path):
    rows = [{"task_id": tid, "completion": "import time\ntime.sleep(0.02)\n"} for tid in range(11, 111) for _ in range(3)]
    samples = write_samples(tmp_path / "slow.jsonl", rows)
    args = ["eval", "--samples", samples, "--dataset", "mbpp", "--data-path", mbpp_path, "--no-progress"]
    cli(*args, "--run-dir", tmp_path / "whole")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "core", *map(str, args), "--run-dir", killed], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = (killed / "results.jsonl").read_text().count("\n") if (killed / "results.jsonl").exists() else 0
        if done >= 60:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = (killed / "results.jsonl").read_text().count("\n")
    assert 60 <= before < 300
    assert json.loads((killed / "manifest.json").read_text())["status"] == "running"
    listing = cli("runs", "--store", tmp_path).stdout
    assert "interrupted" in listing
    out = cli(*args, "--run-dir", killed)
    summary = json.loads((killed / "run_summary.json").read_text())
    assert summary["timings"]["executed_now"] == 300 - before
    assert f"executed {300 - before} samples" in out.stdout
    assert results(killed) == results(tmp_path / "whole")
    # nothing left to do: a third run executes nothing and changes nothing
    cli(*args, "--run-dir", killed)
    assert json.loads((killed / "run_summary.json").read_text())["timings"]["executed_now"] == 0
    assert results(killed) == results(tmp_path / "whole")


def test_a_partial_last_line_is_cut_on_resume(tmp_path, mbpp_path):
    run = tmp_path / "r"
    args = ["eval", "--model", "oracle", "--dataset", "mbpp", "--data-path", mbpp_path, "--limit", "5",
            "--run-dir", run, "--no-progress"]
    cli(*args)
    whole = results(run)
    lines = whole.decode().splitlines(keepends=True)
    (run / "results.jsonl").write_text("".join(lines[:2]) + lines[2][:17])
    cli(*args)
    assert results(run) == whole


@pytest.mark.parametrize("case, expected", [
    ("missing-data", "data file not found"),
    ("malformed-line", ":3: not valid JSON"),
    ("unknown-task", "names task 9999, which is not in mbpp/test"),
    ("empty-samples", "holds no samples"),
    ("unknown-dataset", "unknown --dataset 'apps'"),
    ("bad-spec", "unknown model spec 'gpt9'"),
    ("other-run", "holds a different run"),
])
def test_bad_input_gives_one_clear_line(tmp_path, mbpp_path, case, expected):
    base = ["--dataset", "mbpp", "--data-path", mbpp_path, "--run-dir", tmp_path / "r", "--no-progress"]
    if case == "missing-data":
        args = ["--model", "oracle", "--dataset", "mbpp", "--data-path", tmp_path / "nope.jsonl", "--run-dir", tmp_path / "r"]
    elif case == "malformed-line":
        lines = mbpp_path.read_text().splitlines()
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(lines[:2] + ['{"task_id": 3, "text": '] + lines[3:]) + "\n")
        args = ["--model", "oracle", "--dataset", "mbpp", "--data-path", bad, "--run-dir", tmp_path / "r"]
    elif case == "unknown-task":
        args = ["--samples", write_samples(tmp_path / "s.jsonl", [{"task_id": 9999, "completion": ""}]), *base]
    elif case == "empty-samples":
        (tmp_path / "e.jsonl").write_text("")
        args = ["--samples", tmp_path / "e.jsonl", *base]
    elif case == "unknown-dataset":
        args = ["--model", "oracle", "--dataset", "apps", "--run-dir", tmp_path / "r"]
    elif case == "bad-spec":
        args = ["--model", "gpt9", *base]
    else:
        cli("eval", "--model", "oracle", "--limit", "2", *base)
        args = ["--samples", write_samples(tmp_path / "s.jsonl", [{"task_id": 11, "completion": ""}]), "--limit", "2", *base]
    proc = cli("eval", *args, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    if case != "other-run":
        assert not (tmp_path / "r" / "results.jsonl").exists()


def test_a_missing_samples_file_is_named_before_any_data_set_is_looked_for(tmp_path):
    proc = cli("eval", "--samples", tmp_path / "nope.jsonl", "--run-dir", tmp_path / "r", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: samples file not found: {tmp_path / 'nope.jsonl'}; pass --samples FILE with one JSON object per line"]
