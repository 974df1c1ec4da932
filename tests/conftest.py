import os
import sys
from pathlib import Path

# Everything local: the ecosystem's own switch, read by huggingface_hub at import (before any test imports it)
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest

REPO = Path(__file__).resolve().parent.parent
MBPP_DIR = REPO.parent / "shared" / "data" / "mbpp"
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def mbpp_path():
    path = MBPP_DIR / "mbpp.jsonl"
    if not path.exists():
        pytest.fail(f"MBPP data not found at {path}: CI needs ../shared beside the clone")
    return path


@pytest.fixture(scope="session")
def sanitized_path():
    return MBPP_DIR / "sanitized-mbpp.json"


@pytest.fixture(scope="session")
def oracle_run(tmp_path_factory, mbpp_path):
    """The oracle on MBPP's whole test split, made once for every test that reads it."""
    import subprocess
    d = tmp_path_factory.mktemp("oracle-test-split") / "oracle"
    subprocess.run([sys.executable, "-m", "core", "eval", "--model", "oracle", "--dataset", "mbpp", "--data-path",
                    str(mbpp_path), "--split", "test", "--run-dir", str(d), "--no-progress", "--wandb", "off"],
                   cwd=REPO, check=True, capture_output=True)
    return d


@pytest.fixture(scope="session")
def oracle_and_empty(tmp_path_factory, mbpp_path, oracle_run):
    """The oracle run and a run of empty completions over the same 500 test tasks."""
    import json
    import subprocess
    d = tmp_path_factory.mktemp("runs")
    (d / "empty.jsonl").write_text("".join(json.dumps({"task_id": t, "completion": ""}) + "\n" for t in range(11, 511)))
    subprocess.run([sys.executable, "-m", "core", "eval", "--samples", str(d / "empty.jsonl"), "--dataset", "mbpp",
                    "--data-path", str(mbpp_path), "--run-dir", str(d / "empty"), "--no-progress", "--wandb", "off"],
                   cwd=REPO, check=True, capture_output=True)
    return oracle_run, d / "empty"


@pytest.fixture(autouse=True)
def _no_wandb_unless_asked(monkeypatch):
    """CLI runs in tests do not log to W&B; tests/test_tracking.py asks for it explicitly."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
