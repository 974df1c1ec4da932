"""Constants shared across layers, each defined once: where things are, the release tag, the
gate's exit codes and the default significance level. Run settings live in each run kind's
config dataclass (core.evaluation.evaluate.EvalConfig, core.lab.train.TrainConfig,
core.lab.bench.BenchConfig), not here."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STORE_DIR = REPO_ROOT / "cache" / "runs"
DATASETS_DIR = REPO_ROOT / "cache" / "datasets"
IMPORTS_DIR = REPO_ROOT / "cache" / "imports"  # generations from other harnesses, as our samples files
RESULTS_DIR = REPO_ROOT / "results"
KPIS_PATH = REPO_ROOT / "kpis.toml"
# The published MBPP file beside a checkout (tests and CI have ../shared next to the repository).
MBPP_PATH = "../shared/data/mbpp/mbpp.jsonl"
# Real published generations (MapCoder's ChatGPT runs on MBPP) the first run imports and scores.
PUBLISHED_DIR = "../shared/data/published/mapcoder-chatgpt-mbpp"

TOOL_VERSION = "0.3.0"  # recorded in every stats.json beside the git commit
RELEASE_TAG = f"v{TOOL_VERSION}"
EXIT_CODES = {"SUCCESS": 0, "PARTIAL": 3, "FAILURE": 4}
EXIT_STEP_FAILED = 1
ALPHA = 0.05  # default only: kpis.toml's [significance].alpha is what the gate uses
POWER = 0.80
