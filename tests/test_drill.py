"""The per-task drill-down (core.views.drill and its screen): one task read at a time, from an index."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from core.base.store import RunDir
from core.views import drill
from tests.conftest import REPO
from tests.test_evaluate import cli, write_samples

LINK = "[click](http://127.0.0.1:9/x) ![img](http://127.0.0.1:9/i.png)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mbpp_path):
    d = tmp_path_factory.mktemp("drill")
    rows = [{"task_id": t, "completion": c} for t in range(11, 15)
            for c in ("", f"raise ValueError({LINK!r})", "def f(:")]
    for name, shift in (("a", 0), ("b", 1)):
        cli("eval", "--samples", write_samples(d / f"{name}.jsonl", rows[shift:] + rows[:shift]), "--data-path",
            mbpp_path, "--limit", "4", "--run-dir", d / "store" / name, "--no-progress")
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "4", "--run-dir", d / "store" / "oracle",
        "--no-progress")
    return d / "store"


def full_read(run: RunDir, task: str) -> list[dict]:
    """What the screen used to do: read both whole files, then pick the task."""
    samples = {(str(r["task_id"]), r["sample_id"]): r for r in map(json.loads, run.file("samples.jsonl").open())}
    out = []
    for r in map(json.loads, run.file("results.jsonl").open()):
        if str(r["task_id"]) == task:
            s = samples[(task, r["sample_id"])]
            out.append({"sample_id": r["sample_id"], "completion": s["completion"], "prompt": s["prompt"],
                        "passed": r["passed"], "status": r["status"], "error": r.get("error", "")})
    return sorted(out, key=lambda r: r["sample_id"])


def test_one_task_read_by_offsets_equals_a_full_read(runs):
    a, oracle = RunDir(runs / "a"), RunDir(runs / "oracle")
    for task in ("11", "12", "13", "14"):
        assert drill.task_samples(a, task) == full_read(a, task)
        assert drill.task_samples(oracle, task) == full_read(oracle, task)
    rows = drill.task_rows(oracle, a)
    assert [r["task_id"] for r in rows] == ["11", "12", "13", "14"]
    assert all(r["discordant"] == "A only" and r["a_pass_rate"] == 1.0 and r["b_n"] == 3 for r in rows)
    assert drill.task_samples(a, "999") == []


def test_the_index_is_built_once_and_rebuilt_when_the_file_grows(runs, tmp_path):
    path = tmp_path / "results.jsonl"
    shutil.copy(runs / "a" / "results.jsonl", path)
    first = drill.index(path)
    assert drill.index(path) is first
    with open(path, "a") as fh:
        fh.write(json.dumps({"task_id": 99, "sample_id": 0, "passed": True, "status": "passed"}) + "\n")
        fh.write('{"task_id": 100, "sample')  # a writer's partial last line is not read yet
    again = drill.index(path)
    assert again is not first and again.summary["99"].passed == 1 and "100" not in again.offsets


def test_error_text_is_shown_as_text_not_markdown(runs, monkeypatch):
    """Issue 16: a sample's exception text rendered as markdown: a working link and an image fetch."""
    from streamlit import config
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    monkeypatch.setenv("HRM_GATE_STORE", str(runs))
    try:
        at = AppTest.from_file("../app_pages/tasks.py", default_timeout=60).run()
        at.selectbox[0].set_value("a")
        at.selectbox[1].set_value("b").run()
    finally:
        config.set_option("server.address", before)
    assert not at.exception
    assert any("click" in c.value for c in at.code)
    assert not any("](http" in m.value for m in at.markdown)


BENCH = r'''
import json, os, resource, sys, time
from pathlib import Path
from streamlit.testing.v1 import AppTest
store = Path(sys.argv[1])
os.environ["HRM_GATE_STORE"] = str(store)
import core.views.drill, core.views.dashboard  # imported before the baseline, as a running app has them
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
at = AppTest.from_file(sys.argv[2], default_timeout=120)
t = time.perf_counter(); at.run(); first = time.perf_counter() - t
assert not at.exception, at.exception
views = []
for task in ("137", "300", "510", "42", "260"):
    at.selectbox[3].set_value(task)
    t = time.perf_counter(); at.run(); views.append(time.perf_counter() - t)
    assert not at.exception and "pass rate" in at.markdown[0].value
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"first_s": first, "views_s": views, "base_mb": base, "peak_mb": peak}))
'''


@pytest.mark.slow
def test_a_200_sample_run_is_drilled_down_light(runs, tmp_path):
    """Issue 16: a 500-task x 200-sample run (206 MB samples.jsonl) took 1 GB and 5 s per view. Target: under
    300 MB more than the app's own memory, and under 1 s per view once the index is built."""
    store = tmp_path / "store"
    prompt = json.loads((runs / "oracle" / "samples.jsonl").open().readline())["prompt"]
    for name, passing in (("big-a", 3), ("big-b", 5)):
        d = store / name
        d.mkdir(parents=True)
        manifest = json.loads((runs / "oracle" / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps({**manifest, "run_id": name}))
        with open(d / "samples.jsonl", "w") as s, open(d / "results.jsonl", "w") as r:
            for task in range(11, 511):
                for sample in range(200):
                    s.write(json.dumps({"task_id": task, "sample_id": sample, "prompt": prompt,
                                        "completion": f"def f(x):\n    # sample {sample}\n    return sorted(set(x))[:{sample}]\n"}) + "\n")
                    ok = (task + sample) % passing == 0
                    r.write(json.dumps({"task_id": task, "sample_id": sample, "passed": ok,
                                        "status": "passed" if ok else "failed",
                                        "error": "" if ok else "AssertionError"}) + "\n")
    size_mb = (store / "big-a" / "samples.jsonl").stat().st_size / 1e6
    assert size_mb > 200
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", BENCH, str(store), str(REPO / "app_pages" / "tasks.py")], cwd=REPO,
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nsamples.jsonl {size_mb:.0f} MB per run, 2 runs: first view (index built) {m['first_s']:.2f} s; "
          f"views {', '.join(f'{v:.3f}' for v in m['views_s'])} s; RSS {m['base_mb']:.0f} MB before, "
          f"peak {m['peak_mb']:.0f} MB (+{m['peak_mb'] - m['base_mb']:.0f} MB)")
    assert max(m["views_s"]) < 1.0
    assert m["peak_mb"] - m["base_mb"] < 300
