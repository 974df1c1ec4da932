"""How long the app takes to switch pages with 100 runs in the store (server-side script run,
through Streamlit's AppTest, which runs each page script the way the server does)."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.base.settings import MBPP_PATH
from core.base.store import REPO_ROOT, RunDir, atomic_write_json

PAGES = ["overview", "runs", "accuracy", "significance", "efficiency", "training", "health", "tasks", "report"]


def make_store(n_runs: int, data_path: str, root: Path) -> Path:
    seed = root / "seed"
    subprocess.run([sys.executable, "-m", "core", "eval", "--model", "oracle", "--data-path", data_path, "--limit", "50",
                    "--run-dir", str(seed), "--no-progress", "--wandb", "off"], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    store = root / "store"
    store.mkdir()
    for i in range(n_runs):
        shutil.copytree(seed, store / f"run-{i:03d}")
        run = RunDir(store / f"run-{i:03d}")
        m = run.manifest()
        m["run_id"] = run.run_id
        atomic_write_json(run.file("manifest.json"), m)
    return store


def run_bench_app(n_runs: int = 100, repeats: int = 3, data_path: str = MBPP_PATH) -> dict:
    from streamlit.testing.v1 import AppTest
    with tempfile.TemporaryDirectory(prefix="hrm-gate-bench-app-") as tmp:
        store = make_store(n_runs, data_path, Path(tmp))
        os.environ["HRM_GATE_STORE"] = str(store)
        times: dict[str, list[float]] = {p: [] for p in PAGES}
        for _ in range(repeats):
            for p in PAGES:
                at = AppTest.from_file(str(REPO_ROOT / "app_pages" / f"{p}.py"), default_timeout=120)
                t = time.perf_counter()
                at.run()
                times[p].append(time.perf_counter() - t)
                if at.exception:
                    raise RuntimeError(f"page {p} failed: {at.exception[0].message}")
    report = {p: statistics.median(v) for p, v in times.items()}
    print(f"page switch with {n_runs} runs in the store (median of {repeats} script runs per page):")
    for p, t in report.items():
        print(f"  {p:14s} {1000 * t:7.0f} ms")
    print(f"  slowest page   {1000 * max(report.values()):7.0f} ms (target < 1000 ms)")
    return report
