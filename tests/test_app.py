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
from tests.screens import loopback_each_test, page  # noqa: F401 (autouse fixture)

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


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders(name, store, monkeypatch):
    at = page(name, store, monkeypatch, timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value


def test_runs_page_values_match_core(store, monkeypatch):
    at = page("runs", store, monkeypatch, timeout=60).run()
    table = at.dataframe[0].value
    expected = dashboard.runs_table(store)
    assert list(table["run"]) == [r["run"] for r in expected] == ["empty", "oracle", "train"]
    assert table.set_index("run").loc["oracle", "pass@1"] == 100.0  # in percent, shown with fmt.PCT_COLUMN
    assert table.set_index("run").loc["empty", "pass@1"] == 0.0
    assert at.multiselect[0].value == ["empty", "oracle"] and at.button  # launch form present locally


def test_significance_page_matches_gate(store, monkeypatch):
    before = store_files(store)
    at = page("significance", store, monkeypatch, timeout=60).run()
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
    # headed by the model's name, the run's second (a newcomer read run names only)
    assert summary.loc[0, "Oracle (reference solutions) · oracle"] == "100.0%"
    assert summary.loc[0, "Holm p"] == "– (one k: no adjustment)"
    assert "McNemar" in summary.loc[0, "p method"]
    assert at.get("download_button")
    assert store_files(store) == before  # deciding on a screen writes nothing


def test_accuracy_page_matches_core(store, monkeypatch):
    at = page("accuracy", store, monkeypatch, timeout=60).run()
    table = at.dataframe[0].value
    expected = [r for run in dashboard.eval_runs(store) for r in dashboard.pass_at_k_with_ci(run)]
    assert list(table["value"]) == [r["value"] for r in expected]


def test_tasks_page_discordant_filter(store, monkeypatch):
    at = page("tasks", store, monkeypatch, timeout=60).run()
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
    at = page("report", store, monkeypatch, timeout=60).run()
    at.selectbox[0].set_value("oracle")
    at.selectbox[1].set_value("empty")
    at.button[0].click().run()
    assert not at.exception
    (cand, base, _, _), verdict, reasons, pdf = at.session_state["pdf"]
    assert pdf[:4] == b"%PDF" and (cand, base) == ("oracle", "empty")
    assert f"Verdict: {verdict}" in at.markdown[0].value  # stated on the page, not only inside the PDF
    assert len(at.get("image")) == 1  # page 1 previewed (pdftoppm)
    assert store_files(store) == before  # a screen writes to the store only through a job


def test_hosted_mode_without_sign_in_hides_and_refuses(store, monkeypatch):
    monkeypatch.setenv("HRM_GATE_HOSTED", "1")
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", "team-token-long-enough-123")
    at = page("runs", store, monkeypatch, timeout=60).run()
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


def test_a_broken_run_directory_is_one_unreadable_row(store, monkeypatch):
    """Issue 16: a manifest.json holding a JSON list (or truncated JSON) crashed five screens for everyone."""
    bad = {"listed": "[1, 2, 3]\n", "truncated": '{"kind": "eval", "status": "do'}
    for name, text in bad.items():
        (store / name).mkdir()
        (store / name / "manifest.json").write_text(text)
        (store / name / "results.jsonl").write_text("")
    (store / "listed" / "job.json").write_text("[]")  # and its job record
    shutil.copytree(store / "oracle", store / "garbled")  # a readable manifest, a broken results.jsonl
    (store / "garbled" / "results.jsonl").write_text("not json\n")
    (store / "garbled" / "run_summary.json").write_text("[]")
    bad["garbled"] = ""
    try:
        for name in PAGES:
            at = page(name, store, monkeypatch, timeout=60).run()
            assert not at.exception, (name, at.exception)
            if name == "tasks":
                at.selectbox[0].set_value("garbled")
                at.selectbox[1].set_value("oracle").run()
                assert not at.exception and "results.jsonl:1" in at.error[0].value
        rows = {r["run"]: r for r in dashboard.runs_table(store)}
        assert rows["listed"]["status"] == rows["truncated"]["status"] == rows["garbled"]["status"] == "unreadable"
        assert [r.run_id for r in dashboard.eval_runs(store)] == ["empty", "garbled", "oracle"]
    finally:
        for name in bad:
            shutil.rmtree(store / name)


def test_anonymous_visitors_cause_no_write_and_no_heavy_test(store, monkeypatch):
    """Issue 16: hosted, an anonymous visitor ran the gate with up to 100k resamples and built PDFs."""
    from streamlit import config
    config.set_option("server.address", None)  # unset: Streamlit listens on every interface: hosted
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", "team-token-long-enough-123")
    before = store_files(store)
    at = page("report", store, monkeypatch, timeout=60).run()
    assert not at.exception and not any(b.label == "Build the PDF" for b in at.button)
    at = page("significance", store, monkeypatch, timeout=60).run()
    assert not at.exception
    resamples = at.number_input[0]
    assert resamples.disabled and resamples.value == 2000
    assert at.session_state["gate_result"][2]["resamples"] == 2000
    at = page("runs", store, monkeypatch, timeout=60).run()
    assert not at.exception and not any(b.label in ("Launch", "Cancel") for b in at.button)
    assert store_files(store) == before


def test_caps_refuse_a_launch_in_one_line(store, tmp_path, mbpp_path, monkeypatch):
    from core.views.config import AppConfig
    caps = AppConfig(max_task_samples=100, max_steps=10, max_new_tokens=64, max_jobs=1, max_jobs_per_user=1)
    data = {"data_path": str(mbpp_path)}
    over = [(jobs.JobRequest("eval", "big", "oracle", {**data, "limit": 20, "n": 10}), "20 tasks x 10 samples = 200"),
            (jobs.JobRequest("eval", "all", "oracle", data), "500 tasks x 1 samples"),
            (jobs.JobRequest("eval", "long", "oracle", {**data, "limit": 2, "max_new_tokens": 512}), "max new tokens 512"),
            (jobs.JobRequest("train", "t", "hrm:tiny", {**data, "steps": 11}), "11 steps is over the cap of 10"),
            (jobs.JobRequest("bench", "b", "hrm:tiny", {"new_tokens": 65}), "65 new tokens")]
    for req, message in over:
        with pytest.raises(jobs.CapExceeded, match=message) as e:
            jobs.launch(req, tmp_path, user="ann", caps=caps)
        assert "\n" not in str(e.value)
    many = write_samples(tmp_path.parent / "many-caps.jsonl", [{"task_id": 11, "completion": ""}] * 101)
    with pytest.raises(jobs.CapExceeded, match="holds 101 samples, over the cap of 100"):
        jobs.launch(jobs.JobRequest("eval", "scored", "oracle", {**data, "samples": str(many)}), tmp_path, caps=caps)
    assert list(tmp_path.iterdir()) == []
    slow = write_samples(tmp_path.parent / "slow-caps.jsonl", [{"task_id": t, "completion": "import time\ntime.sleep(2)"}
                                                               for t in range(11, 21)])
    caps = AppConfig(max_jobs=1, max_jobs_per_user=1)
    first = jobs.launch(jobs.JobRequest("eval", "first", "oracle", {**data, "samples": str(slow), "limit": 10}),
                        tmp_path, user="ann", caps=caps)
    try:
        assert jobs.job_status(first)["user"] == "ann"
        with pytest.raises(jobs.CapExceeded, match="1 jobs are running, the most at once"):
            jobs.launch(jobs.JobRequest("eval", "second", "oracle", {**data, "limit": 2}), tmp_path, user="bob", caps=caps)
        with pytest.raises(jobs.CapExceeded, match="you have 1 jobs running, the most per user"):
            jobs.launch(jobs.JobRequest("eval", "third", "oracle", {**data, "limit": 2}), tmp_path, user="ann",
                        caps=AppConfig(max_jobs=5, max_jobs_per_user=1))
    finally:
        jobs.cancel(first)


def test_jobs_get_no_secrets(monkeypatch):
    """Issue 16: jobs inherited the app's whole environment (a sample read the tokens from /proc/<job>/environ)."""
    env = {"PATH": "/usr/bin", "HOME": "/root", "HRM_GATE_STORE": "/s", "HRM_GATE_ACCESS_TOKEN": "t" * 30,
           "OPENAI_API_KEY": "sk-1", "WANDB_API_KEY": "w", "GITHUB_TOKEN": "g", "HF_TOKEN": "h", "HF_HOME": "/hf",
           "SLACK_WEBHOOK_URL": "https://hooks", "AWS_SECRET_ACCESS_KEY": "a", "LC_ALL": "C.UTF-8",
           "HRM_GATE_OPENAI_ENDPOINTS": "https://llm/v1"}
    plain = jobs.job_environment(["hrm:tiny"], env)
    assert plain == {"PATH": "/usr/bin", "HOME": "/root", "HRM_GATE_STORE": "/s", "HF_HOME": "/hf", "LC_ALL": "C.UTF-8",
                     "HRM_GATE_OPENAI_ENDPOINTS": "https://llm/v1"}
    assert jobs.job_environment(["openai:https://llm/v1#m"], env) == {**plain, "OPENAI_API_KEY": "sk-1"}


def test_a_launched_job_sees_no_secret(tmp_path, mbpp_path, monkeypatch):
    for name in ("HRM_GATE_ACCESS_TOKEN", "OPENAI_API_KEY", "WANDB_API_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, "secret-" + name)
    run_dir = jobs.launch(jobs.JobRequest("eval", "env", "oracle", {"data_path": str(mbpp_path), "limit": 1}), tmp_path)
    pid = jobs.job_status(run_dir)["pid"]
    try:
        environ = open(f"/proc/{pid}/environ", "rb").read()
    except FileNotFoundError:
        pytest.skip("the job ended before its environment was read")
    finally:
        import time
        deadline = time.monotonic() + 120
        while jobs.job_status(run_dir)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
    assert b"secret-" not in environ and b"PATH=" in environ
    assert jobs.job_status(run_dir)["status"] == "done"


@pytest.mark.parametrize("email, age_s, admitted", [("ann@example.org", 60, True), ("eve@elsewhere.net", 60, False),
                                                    ("ann@example.org", 9 * 3600, False)])
def test_browse_needs_login_admits_allowed_oidc_users(store, monkeypatch, email, age_s, admitted):
    """Issue 16: HRM_GATE_BROWSE_NEEDS_LOGIN locked OIDC users out (it looked at the token login only), and
    any account the identity provider accepted was signed in."""
    from streamlit import config
    config.set_option("server.address", None)
    monkeypatch.setenv("HRM_GATE_STORE", str(store))
    monkeypatch.setenv("HRM_GATE_BROWSE_NEEDS_LOGIN", "1")
    monkeypatch.setenv("HRM_GATE_ALLOWED_EMAILS", "@example.org")
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "s",
                          "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}
    import time
    at.user = {"email": email, "is_logged_in": True, "iat": int(time.time()) - age_s}  # logins last 8 h
    at.run()
    assert not at.exception, at.exception
    locked = any("Sign in (sidebar) to browse" in i.value for i in at.info)
    assert locked is not admitted
    if admitted:
        assert at.title[0].value == "Overview" and any(c.value == f"Signed in as {email}" for c in at.sidebar.caption)
    else:
        assert any("may not sign in here" in w.value for w in at.sidebar.warning)


def test_token_sign_in_expires_and_signs_out(store, monkeypatch):
    """Issue 16: token logins never expired and had no sign-out."""
    from streamlit import config
    config.set_option("server.address", None)
    monkeypatch.setenv("HRM_GATE_STORE", str(store))
    monkeypatch.setenv("HRM_GATE_ACCESS_TOKEN", "team-token-long-enough-123")
    at = AppTest.from_file("../app.py", default_timeout=60).run()
    at.sidebar.text_input[0].input("team-token-long-enough-123")
    next(b for b in at.sidebar.button if b.label == "Sign in").click().run()
    assert not at.exception
    assert any(c.value == "Signed in with the access token" for c in at.sidebar.caption)
    at.switch_page("app_pages/runs.py").run()  # the launch form lives on the Runs screen
    assert any(b.label == "Launch" for b in at.button)
    at.session_state["signed_in_at"] -= 9 * 3600  # 9 hours later: past the 8-hour login
    at.run()
    assert not any(c.value == "Signed in with the access token" for c in at.sidebar.caption)
    assert not any(b.label == "Launch" for b in at.button)
    at.sidebar.text_input[0].input("team-token-long-enough-123")
    next(b for b in at.sidebar.button if b.label == "Sign in").click().run()
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert "signed_in_at" not in at.session_state and at.sidebar.text_input[0].label == "Access token"


@pytest.mark.parametrize("owner, cancellable", [("local", True), ("bob", False), (None, True)])
def test_a_user_cancels_only_their_own_jobs(tmp_path, monkeypatch, owner, cancellable):
    import os
    run = tmp_path / "job"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"kind": "eval", "status": "running", "pid": os.getpid()}))
    job = {"argv": ["eval", "--model", "oracle"], "pid": os.getpid(), "status": "running"}
    (run / "job.json").write_text(json.dumps({**job, **({"user": owner} if owner else {})}))
    monkeypatch.setenv("HRM_GATE_STORE", str(tmp_path))
    at = AppTest.from_file("../app_pages/runs.py", default_timeout=60).run()
    assert not at.exception and any(s.value == "Running" for s in at.subheader)
    assert any(b.label == "Cancel" for b in at.button) is cancellable


def test_reduced_isolation_is_shown_on_runs_and_accuracy(store, tmp_path, monkeypatch):
    """Before: the Accuracy caption said every sample was sandboxed, whatever the run's sandbox had been."""
    local = tmp_path / "store"
    shutil.copytree(store, local)
    RunDir(local / "empty").update_manifest(sandbox={"namespace_error": "[Errno 1] unshare: Operation not permitted",
                                                     "user": "uid 10001 (the caller's own: run as root for a separate uid)"})
    for name in ("runs", "accuracy"):
        at = page(name, local, monkeypatch, timeout=60).run()
        warnings = [w.value for w in at.warning]
        assert any(w.startswith("empty: its samples ran with reduced isolation: no namespaces") for w in warnings), warnings
        if __import__("os").geteuid() == 0:
            assert not any(w.startswith("oracle:") for w in warnings), warnings
