"""stats, collect and gate on real runs through the CLI."""
import json
import threading
import time

import pytest

from core.evaluation.collect import collect, watch
from core.base.store import JsonlAppender, RunDir, atomic_write_json
from tests.test_evaluate import cli


def test_stats_on_real_runs(oracle_and_empty, tmp_path):
    oracle, empty = oracle_and_empty
    out = cli("stats", "--a", oracle, "--b", empty, "--out", tmp_path / "stats.json")
    doc = json.loads((tmp_path / "stats.json").read_text())
    p1 = doc["pass_at_1"]
    assert p1["oracle"] == 1.0 and p1["empty"] == 0.0 and p1["delta"] == 1.0
    assert p1["p_value"] < 0.001 and p1["ci95"][0] > 0 and p1["superior"]
    assert doc["mcnemar"]["pass_at_1"]["a_only"] == 500 and doc["n_tasks"] == 500 and doc["resamples"] == 10000
    assert "superior" in out.stdout
    # results.jsonl files work as inputs too; the reverse comparison has the other sign
    cli("stats", "--a", empty / "results.jsonl", "--b", oracle / "results.jsonl", "--out", tmp_path / "rev.json")
    rev = json.loads((tmp_path / "rev.json").read_text())["pass_at_1"]
    assert rev["delta"] == -1.0 and not rev["superior"]


def test_gate_on_real_runs_says_failure(oracle_and_empty, tmp_path):
    oracle, empty = oracle_and_empty
    proc = cli("gate", "--candidate", oracle, "--baseline", empty, "--out", tmp_path / "s.json", check=False)
    assert proc.returncode == 4, proc.stderr
    assert "verdict: FAILURE" in proc.stdout
    assert "Latency, 512-token prefill" in proc.stdout and "not measured" in proc.stdout
    assert "pass@10 not tested" in proc.stdout
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["verdict"] == "FAILURE" and doc["pass_at_1"]["p_value"] < 0.001 and doc["pass_at_1"]["delta"] == 1.0


def test_gate_with_bench_and_train_runs(oracle_and_empty, tmp_path):
    oracle, empty = oracle_and_empty
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine": {"cpu": "test"}, "models": {
        "oracle": {"latency_ms": 40, "peak_train_rss_mb": 2000, "throughput_tok_s": 1500},
    }}))
    train = RunDir(tmp_path / "train")
    train.claim({"kind": "train"}, {"kind": "train"})
    train.update_manifest(status="failed")
    proc = cli("gate", "--candidate", oracle, "--baseline", empty, "--bench", bench, "--train-runs", train.path,
               "--out", tmp_path / "s.json", check=False)
    assert proc.returncode == 4 and "training unstable" in proc.stdout
    assert "40.0 ms" in proc.stdout


def test_gate_bad_usage_exits_2(tmp_path):
    proc = cli("gate", "--candidate", tmp_path / "nope", "--baseline", tmp_path / "nope2", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "not found" in proc.stderr


def test_collect_and_watch_follow_a_running_run(tmp_path):
    run = RunDir(tmp_path / "r")
    run.claim({"kind": "eval"}, {"kind": "eval", "protocol": {"ks": [1]}})
    results = JsonlAppender(run.file("results.jsonl"))
    metrics = JsonlAppender(run.file("metrics.jsonl"))
    seen = []

    def writer():
        for i in range(6):
            results.append({"task_id": i, "sample_id": 0, "passed": i % 2 == 0, "status": "passed" if i % 2 == 0 else "failed", "error": ""})
            metrics.append({"step": i, "loss": 2.0 - i * 0.1})
            time.sleep(0.1)
        with open(run.file("results.jsonl"), "a") as fh:
            fh.write('{"task_id": 99, "sam')  # a writer caught in mid-line
        time.sleep(0.3)
        run.update_manifest(status="done")

    t = threading.Thread(target=writer)
    t.start()
    final = watch(run.path, interval=0.05, on_update=lambda s: seen.append(s.get("n_samples", 0)), max_wait=30)
    t.join()
    results.close()
    metrics.close()
    assert final["status"] == "done" and final["n_samples"] == 6
    assert final["pass_at_k"] == {"1": 0.5}
    assert final["training"]["steps"] == 6 and final["training"]["best_loss"] == pytest.approx(1.5)
    assert len(set(seen)) > 1  # it saw the run grow
    assert json.loads(run.file("run_summary.json").read_text())["n_samples"] == 6
    atomic_write_json(run.file("bench.json"), {"models": {}})
    assert "bench" in collect(run.path)


def test_collect_cli_on_real_run(oracle_and_empty):
    oracle, _ = oracle_and_empty
    out = cli("collect", oracle)
    assert "oracle: done, 500 results" in out.stdout and "pass@1 1.000" in out.stdout


def test_the_verdict_states_its_power(tmp_path, oracle_and_empty):
    """The minimum detectable effect was computed and shown nowhere; now it is in the verdict."""
    from core.decide.gate import run_gate
    oracle, empty = oracle_and_empty
    res = run_gate(str(oracle), str(empty), ks=(1,), resamples=1000)
    power = res.stats["power"]
    assert power["n_tasks"] == 500 and power["target_delta_pp"] == 4.0 and power["mde_pp"] > 0
    said = [r for r in res.verdict.reasons if r.startswith("underpowered")]
    assert bool(said) == power["underpowered"]


def test_twenty_tasks_are_underpowered_for_a_four_point_target():
    from core.decide.gate import power_of
    from core.decide.kpi import load_kpis
    from core.decide.stats import compare
    a = {t: (1, int(t < 8)) for t in range(20)}
    b = {t: (1, int(t < 6)) for t in range(20)}
    power = power_of(compare(a, b, resamples=1000), load_kpis())
    assert power["underpowered"] and power["mde_pp"] > 10 * power["target_delta_pp"] / 4


def test_stats_json_names_its_inputs_and_verify_recomputes_it(tmp_path, oracle_and_empty):
    """Before: nothing in stats.json said which files it was computed from."""
    import shutil
    oracle, empty = oracle_and_empty
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(oracle, a, ignore=shutil.ignore_patterns("wandb"))
    shutil.copytree(empty, b, ignore=shutil.ignore_patterns("wandb"))
    out = tmp_path / "stats.json"
    cli("gate", "--candidate", a, "--baseline", b, "--k", "1", "--resamples", "1000", "--out", out, check=False)
    doc = json.loads(out.read_text())
    inputs = doc["inputs"]
    assert len(inputs["candidate"]["results_sha256"]) == 64 and inputs["baseline"]["status"] == "done"
    assert inputs["kpis"]["sha256"] and inputs["settings"]["resamples"] == 1000 and inputs["tool_version"]
    assert inputs["candidate"]["dataset"]["sha256"] and inputs["candidate"]["protocol"]["timeout_s"]
    ok = cli("verify", out)
    assert "verified" in ok.stdout and "every figure and the verdict FAILURE equal" in ok.stdout
    doc["pass_at_1"]["delta"] = 0.5  # a published figure edited by hand
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    bad = cli("verify", tmp_path / "edited.json", check=False)
    assert bad.returncode == 1 and "recomputed pass_at_1 differ" in bad.stderr
    with open(b / "results.jsonl", "a") as fh:  # an input changed after the fact
        fh.write("\n")
    changed = cli("verify", out, check=False)
    assert changed.returncode == 1 and "baseline results" in changed.stderr and "changed" in changed.stderr


def test_verify_follows_the_command_that_wrote_the_file(tmp_path, oracle_and_empty):
    """A stats.json from `stats` (no verdict, BCa CI) verifies too; a deleted row or a broken inputs block fails."""
    oracle, empty = oracle_and_empty
    out = tmp_path / "stats.json"
    cli("stats", "--a", oracle, "--b", empty, "--resamples", "1000", "--ci", "bca", "--out", out)
    assert "verified" in cli("verify", out).stdout
    doc = json.loads(out.read_text())
    del doc["pass_at_1"]
    (tmp_path / "cut.json").write_text(json.dumps(doc))
    assert "pass_at_1" in cli("verify", tmp_path / "cut.json", check=False).stderr
    doc = json.loads(out.read_text())
    del doc["inputs"]["settings"]
    (tmp_path / "broken.json").write_text(json.dumps(doc))
    broken = cli("verify", tmp_path / "broken.json", check=False)
    assert broken.returncode == 1 and len(broken.stderr.strip().splitlines()) == 1 and "malformed" in broken.stderr
