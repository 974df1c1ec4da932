"""An offline W&B run written from a real run directory, read back from its .wandb file."""
import json


from core.base.store import JsonlAppender, RunDir, atomic_write_json
from core.publish.tracking import log_run, offline_files, read_offline_run, wandb_mode


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
    for section in ("Accuracy", "Statistics", "Efficiency", "Training", "System health", "Alerts"):
        assert f'"{section}"' in spec
    assert json.loads(spec)["project"] == "hrm-vs-gpt2"
