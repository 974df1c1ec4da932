"""plan: tasks x samples needed for the target difference, from real pilot runs, checked by simulation."""
import json

import numpy as np
import pytest

from tests.test_evaluate import cli, write_samples


@pytest.fixture(scope="module")
def pilots(tmp_path_factory, mbpp_path):
    """Two real eval runs over 80 MBPP tasks x 10 samples: each sample is the task's reference solution
    (passes) or an empty completion (fails), at per-task rates that differ from task to task."""
    d = tmp_path_factory.mktemp("pilots")
    ref = {json.loads(line)["task_id"]: json.loads(line)["code"] for line in mbpp_path.read_text().splitlines()}
    rng = np.random.default_rng(7)
    base = rng.beta(1.2, 1.8, 80)
    rates = {"cand": np.clip(base + rng.normal(0.03, 0.15, 80), 0, 1), "base": base}
    runs = {}
    for name, p in rates.items():
        rows = [{"task_id": t, "completion": ref[t] if rng.random() < p[i] else ""}
                for i, t in enumerate(range(11, 91)) for _ in range(10)]
        cli("eval", "--samples", write_samples(d / f"{name}.jsonl", rows), "--data-path", mbpp_path, "--limit", "80",
            "--k", "1", "--run-dir", d / name, "--no-progress")
        runs[name] = d / name
    return runs


def test_plan_prints_the_tasks_needed_and_its_prediction_matches_1000_simulations(pilots, tmp_path):
    out = cli("plan", "--pilot", pilots["cand"], "--pilot", pilots["base"], "--check", "1000",
              "--out", tmp_path / "plan.json", timeout=900)
    doc = json.loads((tmp_path / "plan.json").read_text())
    rows = {r["samples_per_task"]: r["tasks_needed"] for r in doc["rows"]}
    assert doc["between_task_variance"] > 0 and doc["within_task_variance_n1"] > 0
    assert rows[1] > rows[10] > 0  # more samples per task, fewer tasks; never below the between-task floor
    check = doc["check"]
    assert abs(check["predicted"] - check["simulated"]) <= 0.05, check
    assert "tasks needed" in out.stdout and "predicted power" in out.stdout


def test_one_pilot_and_bad_input(pilots, tmp_path):
    out = cli("plan", "--pilot", pilots["base"])
    assert "one pilot" in out.stdout
    bad = cli("plan", "--pilot", tmp_path / "nope", check=False)
    assert bad.returncode != 0 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
