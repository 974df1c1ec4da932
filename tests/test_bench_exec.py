"""The whole-process engine benchmark (core/selfcheck/bench_exec.py), on a few real MBPP tasks."""
import json
import subprocess
import sys


def test_whole_process_bench_times_both_commands_alternating(tmp_path, mbpp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "core", "bench-exec", "--whole-process", "--data-path", str(mbpp_path),
                           "--limit", "3", "--samples-per-task", "1", "--repeats", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["tasks"] == 3 and report["repeats"] == 2
    ref, empty = report["workloads"]["a_reference"], report["workloads"]["b_empty"]
    assert ref["ours_pass_at_1"] == 1.0 and empty["ours_pass_at_1"] == 0.0  # real execution, both ways
    for w in (ref, empty):
        assert len(w["ours_s_runs"]) == len(w["peer_s_runs"]) == 2
        assert w["ratio_range"][0] <= w["ratio"] <= w["ratio_range"][1]
    assert "medians of 2 runs each" in proc.stdout


def test_whole_process_bench_refuses_zero_repeats():
    proc = subprocess.run([sys.executable, "-m", "core", "bench-exec", "--whole-process", "--repeats", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--repeats must be 1 or more" in proc.stderr
