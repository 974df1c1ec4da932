"""scripts/metrics/*.py: the seed's script names run the CLI's commands with the same arguments."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

WRAPPERS = {"collect_metrics": "--watch", "stats": "--resamples", "prom_exporter": "--port",
            "reliability_monitor": "--stall-s", "evaluate": "--samples", "benchmark": "--throughput-repeats"}


def script(name, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "metrics" / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd="/")


@pytest.mark.parametrize("name, flag", WRAPPERS.items())
def test_wrapper_help_is_the_commands_help(name, flag):
    proc = script(name, "--help")
    assert proc.returncode == 0 and flag in proc.stdout, proc.stderr


def test_stats_and_collect_wrappers_run_for_real(oracle_and_empty, tmp_path):
    oracle, empty = oracle_and_empty
    proc = script("stats", "--a", oracle, "--b", empty, "--resamples", 2000, "--out", tmp_path / "stats.json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "stats.json").read_text())
    assert doc["pass_at_1"]["delta"] == 1.0 and doc["resamples"] == 2000
    bad = script("collect_metrics", tmp_path / "missing")
    assert bad.returncode != 0 and bad.stderr.startswith("error: ") and "not found" in bad.stderr
