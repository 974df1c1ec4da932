"""The app's Runs page renders the local store (AppTest runs the real script)."""
import json

from streamlit.testing.v1 import AppTest

from tests.test_evaluate import cli


def test_runs_page_lists_runs(tmp_path, monkeypatch, mbpp_path):
    monkeypatch.setenv("HRM_GATE_STORE", str(tmp_path))
    at = AppTest.from_file("../pages/runs.py", default_timeout=30).run()
    assert not at.exception and "No runs yet" in at.info[0].value
    cli("eval", "--model", "oracle", "--dataset", "mbpp", "--data-path", mbpp_path, "--limit", "5",
        "--run-dir", tmp_path / "smoke", "--no-progress")
    at = AppTest.from_file("../pages/runs.py", default_timeout=30).run()
    assert not at.exception
    table = at.dataframe[0].value
    summary = json.loads((tmp_path / "smoke" / "run_summary.json").read_text())
    assert list(table["run"]) == ["smoke"] and list(table["status"]) == ["done"]
    assert table["pass@1"][0] == summary["pass_at_k"]["1"]
