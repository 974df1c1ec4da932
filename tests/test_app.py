"""Every screen through Streamlit's AppTest on a store of real runs; values equal core's."""
import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.views import dashboard

from core.views import jobs
from core.views.access import AccessDenied, policy, require_launch
from core.base.errors import ModelSpecError, RunStoreError
from core.base.store import RunDir
from tests.test_evaluate import cli, write_samples

PAGES = ["overview", "runs", "accuracy", "significance", "efficiency", "training", "health", "tasks", "report"]


@pytest.fixture(scope="module")
def store(tmp_path_factory, mbpp_path):
    d = tmp_path_factory.mktemp("store")
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "12", "--run-dir", d / "oracle", "--no-progress")
    cli("eval", "--samples", write_samples(d.parent / "e.jsonl", [{"task_id": t, "completion": ""} for t in range(11, 23)]),
        "--data-path", mbpp_path, "--limit", "12", "--run-dir", d / "empty", "--no-progress")
    cli("train", "--model", "hrm:tiny", "--steps", "4", "--batch", "2", "--seq-len", "64", "--data-path", mbpp_path,
        "--run-dir", d / "train", "--checkpoint-every", "0")
    (d / "train" / "alerts.jsonl").write_text(json.dumps({"time": "2026-01-01T00:00:00", "severity": "warning",
                                                         "rule": "loss_spike", "message": "test", "run": "train"}) + "\n")
    (d / "train" / "system.jsonl").write_text(json.dumps({"time": "2026-01-01T00:00:00", "cpu_percent": 10.0,
                                                         "mem_percent": 20.0}) + "\n")
    return d


def page(name, store, monkeypatch):
    monkeypatch.setenv("HRM_GATE_STORE", str(store))
    return AppTest.from_file(f"../app_pages/{name}.py", default_timeout=60)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders(name, store, monkeypatch):
    at = page(name, store, monkeypatch).run()
    assert not at.exception, at.exception
    assert at.title[0].value


def test_runs_page_values_match_core(store, monkeypatch):
    at = page("runs", store, monkeypatch).run()
    table = at.dataframe[0].value
    expected = dashboard.runs_table(store)
    assert list(table["run"]) == [r["run"] for r in expected] == ["empty", "oracle", "train"]
    assert table.set_index("run").loc["oracle", "pass@1"] == 1.0
    assert table.set_index("run").loc["empty", "pass@1"] == 0.0
    assert at.multiselect[0].value == ["empty", "oracle"] and at.button  # launch form present locally


def test_significance_page_matches_gate(store, monkeypatch):
    before = store_files(store)
    at = page("significance", store, monkeypatch).run()
    at.selectbox[0].set_value("oracle")
    at.selectbox[1].set_value("empty")
    at.number_input[0].set_value(2000)
    at.button[0].click().run()
    assert not at.exception
    assert at.subheader[0].value == "Verdict: :red[FAILURE]"
    summary = at.dataframe[0].value
    from core.decide.gate import run_gate
    from core.decide.stats import show_p
    ref = run_gate(str(store / "oracle"), str(store / "empty"), ks=(1, 10), resamples=2000)
    p1 = ref.stats["pass_at_1"]
    # one sample per task: the exact McNemar p decides pass@1 (12 discordant tasks: 2 / 2**12), unadjusted
    assert p1["p_value_decision"] == pytest.approx(2 / 2 ** 12) and p1["role"] == "confirmatory"
    assert summary.loc[0, "delta"] == "+100.0 pp" and summary.loc[0, "p (decides)"] == show_p(p1["p_value_decision"])
    assert summary.loc[0, "oracle"] == "100.0%" and summary.loc[0, "Holm p"] == "– (one k: no adjustment)"
    assert "McNemar" in summary.loc[0, "p method"]
    assert at.get("download_button")
    assert store_files(store) == before  # deciding on a screen writes nothing


def test_accuracy_page_matches_core(store, monkeypatch):
    at = page("accuracy", store, monkeypatch).run()
    table = at.dataframe[0].value
    expected = [r for run in dashboard.eval_runs(store) for r in dashboard.pass_at_k_with_ci(run)]
    assert list(table["value"]) == [r["value"] for r in expected]


def test_tasks_page_discordant_filter(store, monkeypatch):
    at = page("tasks", store, monkeypatch).run()
    at.selectbox[0].set_value("oracle")
    at.selectbox[1].set_value("empty")
    at.selectbox[2].set_value("discordant: A only").run()
    assert not at.exception and "12 tasks" in at.caption[0].value
    at.selectbox[2].set_value("discordant: B only").run()
    assert "0 tasks" in at.caption[0].value


def store_files(store):
    return sorted((str(p.relative_to(store)), p.stat().st_mtime_ns) for p in store.rglob("*"))


def test_report_page_builds_a_pdf_without_writing_to_the_store(store, monkeypatch):
    before = store_files(store)
    at = page("report", store, monkeypatch).run()
    at.selectbox[0].set_value("oracle")
    at.selectbox[1].set_value("empty")
    at.button[0].click().run()
    assert not at.exception
    cand, base, verdict, reasons, pdf = at.session_state["pdf"]
    assert pdf[:4] == b"%PDF" and (cand, base) == ("oracle", "empty")
    assert f"Verdict: {verdict}" in at.markdown[0].value  # stated on the page, not only inside the PDF
    assert len(at.get("image")) == 1  # page 1 previewed (pdftoppm)
    assert store_files(store) == before  # a screen writes to the store only through a job


def test_hosted_mode_without_sign_in_hides_and_refuses(store, monkeypatch):
    monkeypatch.setenv("HRM_GATE_HOSTED", "1")
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", "team-token")
    at = page("runs", store, monkeypatch).run()
    assert not at.exception
    assert not any(b.label in ("Launch", "Cancel", "Run a quick validation") for b in at.button)
    assert any("Sign in to launch" in c.value for c in at.caption)
    with pytest.raises(AccessDenied):
        require_launch(policy("0.0.0.0", False), signed_in=False)
    monkeypatch.delenv("HRM_GATE_HOSTED")
    require_launch(policy("127.0.0.1", False), signed_in=False)  # local: no login needed


def test_bad_run_names_and_specs_are_refused(store, tmp_path):
    before = sorted(p.name for p in store.iterdir())
    for name in ("../../x", "/etc/passwd", "a/b", "..", ""):
        with pytest.raises(RunStoreError):
            jobs.launch(jobs.JobRequest("eval", name, "oracle"), store)
    with pytest.raises(ModelSpecError):
        jobs.launch(jobs.JobRequest("eval", "ok-name", "hf:x; rm -rf /"), store)
    with pytest.raises(ModelSpecError):
        jobs.launch(jobs.JobRequest("eval", "ok-name2", "$(touch /tmp/pwned)"), store)
    assert sorted(p.name for p in store.iterdir()) == before
    assert not (store.parent / "x").exists()


def test_launch_status_and_cancel(store, mbpp_path):
    run_dir = jobs.launch(jobs.JobRequest("eval", "launched", "oracle", {"data_path": str(mbpp_path), "limit": 3}), store)
    import time
    deadline = time.monotonic() + 120
    while jobs.job_status(run_dir)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.job_status(run_dir)["status"] == "done" and RunDir(run_dir).status() == "done"
    slow = write_samples(store.parent / "slow.jsonl", [{"task_id": t, "completion": "import time\ntime.sleep(2)"}
                                                        for t in range(11, 41)])
    run_dir = jobs.launch(jobs.JobRequest("eval", "to-cancel", "oracle", {"samples": str(slow),
                                                                         "data_path": str(mbpp_path)}), store)
    while not (run_dir / "results.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.cancel(run_dir)
    while jobs.job_status(run_dir)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs.job_status(run_dir)["status"] == "cancelled"
    assert RunDir(run_dir).manifest()["status"] == "cancelled"
    shutil.rmtree(store / "launched")
    shutil.rmtree(store / "to-cancel")
