"""An offline W&B run written from a real run directory, read back from its .wandb file."""
import json

import pytest

from core.base.store import JsonlAppender, RunDir, atomic_write_json, read_json
from core.publish.tracking import log_run, offline_files, read_offline_run, read_table, wandb_mode


def test_offline_run_round_trip(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode("auto") == "offline" and wandb_mode("off") is None
    run = RunDir(tmp_path / "train-run")
    run.claim({"kind": "train"}, {"kind": "train", "model": "hrm:tiny"})
    run.update_manifest(status="done")
    with JsonlAppender(run.file("metrics.jsonl")) as out:
        for step in range(1, 6):
            out.append({"step": step, "time": "t", "loss": 3.0 - 0.25 * step, "lr": 1e-3 * step})
    atomic_write_json(run.file("run_summary.json"), {"model": "hrm:tiny", "pass_at_k": {"1": 0.25},
                                                     "per_task": {"11": {"n": 4, "c": 1}}, "n_tasks": 1})
    info = log_run(run.path, "auto")
    assert info["mode"] == "offline" and info["url"] is None
    files = offline_files(run.path)
    assert len(files) == 1
    data = read_offline_run(files[0])
    losses = [(r["_step"], r["loss"]) for r in data["history"] if "loss" in r]
    assert losses == [(s, 3.0 - 0.25 * s) for s in range(1, 6)]
    assert data["summary"]["pass_at_k/1"] == 0.25 and data["summary"]["n_tasks"] == 1
    assert data["config"]["model"] == "hrm:tiny" and data["config"]["kind"] == "train"
    assert any(k.startswith("per_task") for row in data["history"] for k in row)  # the per-task table


def test_a_run_file_read_while_it_is_written_yields_whole_records_only(tmp_path, monkeypatch):
    """Before: waiting for W&B's exit record, a file caught mid-record gave a truncated last payload and
    the pipeline died on 'Wire format was corrupt' (seen once under load in the test suite)."""
    from wandb.proto import wandb_internal_pb2

    from core.publish.tracking import _wandb_records
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    run = RunDir(tmp_path / "run")
    run.claim({"kind": "eval"}, {"kind": "eval", "model": "oracle"})
    atomic_write_json(run.file("run_summary.json"), {"model": "oracle", "pass_at_k": {"1": 1.0}, "n_tasks": 1})
    log_run(run.path, "auto")
    whole = offline_files(run.path)[0].read_bytes()
    complete = list(_wandb_records(offline_files(run.path)[0]))
    partial = tmp_path / "partial.wandb"
    for cut in range(len(whole) // 3, len(whole), max(1, len(whole) // 97)):
        partial.write_bytes(whole[:cut])
        got = list(_wandb_records(partial))
        assert got == complete[:len(got)], cut  # a prefix of the whole file's records, none cut short
        for payload in got:
            wandb_internal_pb2.Record().ParseFromString(payload)


def test_disabled_means_nothing_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = RunDir(tmp_path / "r")
    run.claim({"kind": "eval"}, {"kind": "eval"})
    assert log_run(run.path) is None and not (run.path / "wandb").exists()


def test_dashboard_spec_offline(tmp_path, monkeypatch):
    from tests.test_evaluate import cli
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    out = cli("wandb-dashboard", "--out", tmp_path / "ws.json")
    assert "offline (no WANDB_API_KEY)" in out.stdout
    spec = (tmp_path / "ws.json").read_text()
    for section in ("Run selector", "Accuracy", "Stat summary", "Efficiency vs baseline", "Training curves",
                    "System health", "Alert feed"):
        assert f'"{section}"' in spec
    assert json.loads(spec)["project"] == "hrm-vs-gpt2"


# ---------------------------------------------------------------- a real offline pipeline: live runs, evidence, panels
PIPELINE = """
[pipeline]
out_dir = "{out}"
dataset = "mbpp"
data_path = "{data}"
split = "test"
limit = 3
ks = [1, 10]
n = 10
temperature = 0.8
max_new_tokens = 8

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
models = ["train", "hrm:tiny"]
repeats = 1
throughput_repeats = 1
new_tokens = 4
skip_train = true

[gate]
resamples = 2000
allow_mismatch = ["sampling"]

[wandb]
mode = "offline"

[report]
enabled = false

[alerts]
sinks = ["console"]
"""


@pytest.fixture(scope="module")
def offline_pipeline(tmp_path_factory, mbpp_path):
    """The pipeline with W&B offline: pass@10 needs 10 samples a task (the baseline: 10 copies of the
    reference solution for the first task, empty ones for the others)."""
    import os
    import subprocess
    import sys

    from core.tasks.data import load_dataset
    from tests.conftest import REPO
    from tests.test_evaluate import write_samples
    d = tmp_path_factory.mktemp("wandb-pipeline")
    tasks = load_dataset("mbpp", mbpp_path, "test", limit=3).tasks
    samples = write_samples(d / "baseline.jsonl", [{"task_id": t.task_id, "completion": t.reference if i == 0 else ""}
                                                   for i, t in enumerate(tasks) for _ in range(10)])
    out = d / "nightly-gate"
    (d / "pipeline.toml").write_text(PIPELINE.format(out=out, data=mbpp_path, samples=samples))
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    proc = subprocess.run([sys.executable, "-m", "core", "pipeline", "--config", str(d / "pipeline.toml"),
                           "--no-progress"], cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode in (0, 3, 4), proc.stdout + proc.stderr
    runs = {}
    for f in sorted(out.rglob("offline-run-*/run-*.wandb")):
        data = read_offline_run(f)
        runs[data["run"]["name"]] = {**data, "file": f}
    return out, runs


@pytest.mark.slow
def test_pipeline_runs_are_grouped_tagged_and_named_for_people(offline_pipeline):
    out, runs = offline_pipeline
    names = sorted(runs)
    assert len(names) == 5, names  # train, candidate, baseline, bench, gate
    assert all(n.startswith("nightly-gate · ") for n in names)
    assert {r["run"]["group"] for r in runs.values()} == {"nightly-gate"}
    assert sorted(r["run"]["job_type"] for r in runs.values()) == ["bench", "eval", "eval", "gate", "train"]
    for r in runs.values():
        tags = r["run"]["tags"]
        assert any(t.startswith("model:") for t in tags) and "pipeline:nightly-gate" in tags
        assert r["exit_code"] == 0
    for name in ("train", "candidate", "baseline"):
        info = read_json(out / name / "wandb_run.json")
        assert info["status"] == "done" and info["group"] == "nightly-gate"
        tags = runs[info["name"]]["run"]["tags"]
        assert any(t.startswith("dataset:mbpp/test") or t == "dataset:mbpp/train" for t in tags)
        assert any(t.startswith("protocol:") for t in tags)
    assert "model:hrm:tiny" in runs[read_json(out / "candidate" / "wandb_run.json")["name"]]["run"]["tags"]
    for side in ("candidate", "baseline"):  # the running pass@k ends at the run's own figures
        history = runs[read_json(out / side / "wandb_run.json")["name"]]["history"]
        last = [r for r in history if "pass_at_k/10" in r][-1]
        final = read_json(out / side / "run_summary.json")["pass_at_k"]
        assert last["pass_at_k/1"] == pytest.approx(final["1"]) and last["pass_at_k/10"] == pytest.approx(final["10"])
        assert last["eval/samples_scored"] == 30 and last["eval/tasks_scored"] == 3


@pytest.mark.slow
def test_the_gate_logs_its_evidence_and_alerts(offline_pipeline):
    """stats.json (delta, CI, p, MDE, verdict, reasons) was never logged to W&B; now the gate run holds it."""
    out, runs = offline_pipeline
    stats = read_json(out / "stats.json")
    gate = next(r for r in runs.values() if r["run"]["job_type"] == "gate")
    s, p1 = gate["summary"], stats["pass_at_1"]
    assert s["gate/verdict"] == stats["verdict"]
    assert s["gate/delta_pass_at_1"] == pytest.approx(p1["delta"])
    assert [s["gate/ci95_low"], s["gate/ci95_high"]] == pytest.approx(p1["ci95"])
    assert s["gate/p_value"] == pytest.approx(p1["p_value_decision"]) and s["gate/mde"] == pytest.approx(p1["mde"])
    assert s["gate/reasons"] == "; ".join(stats["gate"]["reasons"]) and s["gate/reasons"]
    evidence = read_table(gate["file"], "gate/evidence")
    rows = {r[0]: dict(zip(evidence["columns"], r)) for r in evidence["data"]}
    assert set(rows) == {1, 10}
    assert rows[10]["delta"] == pytest.approx(stats["pass_at_10"]["delta"])
    alerts = read_table(gate["file"], "alerts")
    assert "ci_complete" in [r[2] for r in alerts["data"]]
    assert s["alerts/info"] == sum(r[1] == "info" for r in alerts["data"]) >= 1


@pytest.mark.slow
def test_every_workspace_panel_reads_keys_a_real_run_writes(offline_pipeline, tmp_path):
    """The workspace's seven panels, each key written by the real offline runs of a pipeline (keys of
    hardware this machine lacks are required only where it has it)."""
    from core.lab.monitor import system_sample
    from core.publish.tracking import HARDWARE_KEYS, PANELS, panel_keys, save_workspace
    _, runs = offline_pipeline
    assert list(PANELS) == ["Run selector", "Accuracy", "Stat summary", "Efficiency vs baseline", "Training curves",
                            "System health", "Alert feed"]
    here = {f"system/{k}" for k in system_sample()}
    written = {"config": set(), "history": set(), "summary": set()}
    for r in runs.values():
        written["config"] |= set(r["config"])
        written["summary"] |= {k.removesuffix("/_type") for k in r["summary"]}
        written["history"] |= {k for row in r["history"] for k in row}
    missing = []
    for title, keys in panel_keys().items():
        for key in keys:
            if key in HARDWARE_KEYS and key not in here:
                continue
            if not any(key in found for found in written.values()):
                missing.append(f"{title}: {key}")
    assert not missing, missing
    # the bars compare both models, and the spec saved offline reads exactly these keys
    bench = next(r for r in runs.values() if r["run"]["job_type"] == "bench")
    assert {"candidate/latency_ms", "baseline/latency_ms"} <= set(bench["summary"])
    save_workspace(tmp_path / "ws.json", models=["hrm:tiny"])
    spec = (tmp_path / "ws.json").read_text()
    for keys in panel_keys().values():
        for key in keys:
            assert f'"{key}"' in spec or f'"{key}' in spec, key
    assert '"op":"IN"' in spec.replace(" ", "") and '"hrm:tiny"' in spec
