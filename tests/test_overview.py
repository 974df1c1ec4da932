"""The verdict first: the first run on real published generations, the Overview against core's own gate,
and the trust defects of issue 17, each reproduced first (a vanished failed job, the multiselect that
dropped every second change, the alphabetical default pair, task sets that differ, a foreign bench)."""
import json
import time

import pytest

from core.decide.gate import run_gate
from core.decide.stats import show_p
from core.evaluation.imported import check_labels, import_doc
from core.views import dashboard, jobs
from core.views.fmt import model_name, pct, pp
from core.views.quickstart import FIRST_PAIR, ORACLE, PUBLISHED
from tests.test_evaluate import cli, write_samples
from tests.screens import loopback_address, page as app  # noqa: F401 (autouse fixture)


def wait_jobs(store, names, limit_s=120):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and any(jobs.job_status(store / n)["status"] == "running" for n in names):
        time.sleep(0.2)
    return {n: jobs.job_status(store / n)["status"] for n in names}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """An empty store, the first-run button clicked once, every job waited for (and timed)."""
    store = tmp_path_factory.mktemp("first-run")
    mp = pytest.MonkeyPatch()
    try:
        at = app("runs", store, mp).run()
        assert "The run store is empty" in at.info[0].value
        started = time.monotonic()
        next(b for b in at.button if b.label == "Score the published generations").click().run()
        assert not at.exception, at.exception
        status = wait_jobs(store, [ORACLE, *PUBLISHED])
        elapsed = time.monotonic() - started
    finally:
        mp.undo()
    return store, status, elapsed


def test_first_run_scores_the_published_generations_and_the_oracle(first_run):
    store, status, elapsed = first_run
    assert status == dict.fromkeys([ORACLE, *PUBLISHED], "done")
    assert elapsed < 60, f"the first run took {elapsed:.0f} s"
    rows = {r["run"]: r for r in dashboard.runs_table(store)}
    assert rows[ORACLE]["pass@1"] == 1.0 and rows[ORACLE]["tasks"] == 500
    for name in PUBLISHED:
        assert rows[name]["tasks"] == 397 and rows[name]["dataset"] == "mbpp-typed/all"
        assert rows[name]["model"] == PUBLISHED[name][2]  # a name for people, not a temp file
        labels = import_doc(store / name)["authors_labels"]
        assert len(labels) == 397
    # the authors' own counts, as their README states them, are what the import read
    assert sum(import_doc(store / "chatgpt-mapcoder")["authors_labels"].values()) == 311
    assert sum(import_doc(store / "chatgpt-analogical")["authors_labels"].values()) == 280


def test_overview_shows_the_real_pair_as_core_decides_it(first_run, monkeypatch):
    store, _, _ = first_run
    before = sorted(str(p) for p in store.rglob("*"))
    at = app("overview", store, monkeypatch).run()
    assert not at.exception, at.exception
    assert (at.selectbox[0].value, at.selectbox[1].value) == FIRST_PAIR
    ref = run_gate(str(store / FIRST_PAIR[0]), str(store / FIRST_PAIR[1]), ks=(1, 10), resamples=2000).stats
    p1 = ref["pass_at_1"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Candidate pass@1"] == pct(p1[FIRST_PAIR[0]])
    assert metrics["Baseline pass@1"] == pct(p1[FIRST_PAIR[1]])
    assert at.markdown[1].value == "**ChatGPT + MapCoder** (candidate) against **ChatGPT + Analogical** (baseline)"
    assert metrics["Difference (95% CI)"] == pp(p1["delta"])
    assert metrics["p (decides pass@1)"] == show_p(p1["p_value_decision"])
    verdict = at.markdown[0].value
    assert f">{ref['verdict']}</div>" in verdict
    text = "\n".join(m.value for m in at.markdown)
    assert f"95% CI [{pp(p1['ci95'][0])}, {pp(p1['ci95'][1])}]" in text
    assert "Not measured for this pair, so counted as not met: pass@10 (one sample per task)" in text
    kpis = at.dataframe[0].value
    assert len(kpis) == len(ref["gate"]["kpis"]) and "Failed training runs" in list(kpis["KPI"])
    why = kpis.set_index("KPI").loc["Pass@10 (candidate)", "why"]
    assert kpis.set_index("KPI").loc["Pass@1 (candidate)", "status"] == "held ✓" and "one sample per task" in why
    check = check_labels(import_doc(store / FIRST_PAIR[0]), store / FIRST_PAIR[0])
    assert (f"the authors' own labels say {check['authors_solved']:,} of 397 solved; our sandbox passes "
            f"{check['ours_solved']:,}; {len(check['disagreements'])} disagree") in text
    assert "Oracle check**: 500 of 500 MBPP reference solutions pass" in text
    assert "/tmp" not in text and str(store) not in text  # no raw paths
    assert sorted(str(p) for p in store.rglob("*")) == before  # deciding on a screen writes nothing


def test_a_failed_job_stays_listed_with_its_error(tmp_path, monkeypatch, mbpp_path):
    """Issue 17: the app's GPT-2-117M preset, offline, failed before claiming its run directory and vanished
    from the Runs table and `python -m core runs`, though job.log held the error."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_dir = jobs.launch(jobs.JobRequest("eval", "cannot-load", "hf:no-such-org/no-such-model",
                                          {"data_path": str(mbpp_path), "limit": 2}), tmp_path)
    assert wait_jobs(tmp_path, ["cannot-load"]) == {"cannot-load": "failed"}
    assert not (run_dir / "manifest.json").exists()
    rows = dashboard.runs_table(tmp_path)
    assert [(r["run"], r["status"]) for r in rows] == [("cannot-load", "failed")]
    assert rows[0]["error"].startswith("error: hf:no-such-org/no-such-model is neither a local directory")
    out = cli("runs", "--store", tmp_path).stdout
    assert "cannot-load" in out and "failed" in out and "error: hf:no-such-org/no-such-model" in out
    at = app("runs", tmp_path, monkeypatch).run()
    assert not at.exception
    assert at.dataframe[0].value.set_index("run").loc["cannot-load", "status"] == "failed"
    assert any("cannot-load: failed" in e.label for e in at.expander)


@pytest.fixture(scope="module")
def models_store(tmp_path_factory, mbpp_path):
    """Runs whose names sort the wrong way: alphabetically first the oracle and 5 empty completions (a task
    set of its own); the HRM and GPT-2 runs are added by the test that needs them."""
    d = tmp_path_factory.mktemp("models")
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "3", "--run-dir", d / "a-oracle",
        "--no-progress")
    time.sleep(1.1)  # started_at has whole seconds: b-empty5 is the newer run
    cli("eval", "--samples", write_samples(d.parent / "e5.jsonl", [{"task_id": t, "completion": ""}
                                                                   for t in range(11, 16)]),
        "--data-path", mbpp_path, "--limit", "5", "--run-dir", d / "b-empty5", "--no-progress")
    return d


@pytest.mark.slow
def test_default_pair_is_latest_hrm_against_latest_gpt2(models_store, monkeypatch, mbpp_path, tmp_path):
    import shutil
    store = tmp_path / "store"
    shutil.copytree(models_store, store)
    common = ("--data-path", mbpp_path, "--limit", "3", "--max-new-tokens", "4", "--no-progress")
    cli("eval", "--model", "hrm:tiny", *common, "--run-dir", store / "x-hrm")
    cli("eval", "--model", "hf-arch:gpt2", *common, "--run-dir", store / "y-gpt2")
    assert dashboard.default_pair_names(store) == ("x-hrm", "y-gpt2")
    at = app("significance", store, monkeypatch).run()
    assert (at.selectbox[0].value, at.selectbox[1].value) == ("x-hrm", "y-gpt2")  # not a-oracle vs b-empty5
    assert model_name("hrm:tiny") == "HRM-tiny" and model_name("hf:gpt2") == "GPT-2-117M"


def test_default_pair_without_hrm_and_gpt2_is_the_newest_two(models_store):
    assert dashboard.default_pair_names(models_store) == ("b-empty5", "a-oracle")


def test_runs_multiselect_keeps_every_change(models_store, monkeypatch):
    at = app("runs", models_store, monkeypatch).run()
    for choice in (["a-oracle"], ["a-oracle", "b-empty5"], ["b-empty5"], [], ["b-empty5", "a-oracle"]):
        at.multiselect[0].set_value(choice).run()
        assert at.multiselect[0].value == choice
    assert at.session_state["pair"] == ("b-empty5", "a-oracle")


def test_different_task_sets_offer_the_intersection(models_store, monkeypatch):
    at = app("overview", models_store, monkeypatch)
    at.session_state["pair"] = ("b-empty5", "a-oracle")
    at.run()
    assert not at.exception, at.exception
    box = at.checkbox[0]
    assert box.label == "Compare on the 3 tasks both runs have (drops 2 of the candidate's and 0 of the baseline's)"
    assert box.value and "3 paired tasks" in at.caption[0].value
    box.uncheck().run()
    assert "cannot be compared" in at.error[0].value and "--intersection" in at.error[0].value


def test_a_bench_of_other_models_is_flagged(models_store, monkeypatch, tmp_path):
    bench = {"candidate": "hrm:27m", "baseline": "hf-arch:gpt2", "machine": {"cpu": "x", "cores": 1, "ram_gib": 1,
                                                                             "gpu": None},
             "torch_threads": 1, "models": {"hrm:27m": {"latency_ms": 10.0}, "hf-arch:gpt2": {"latency_ms": 20.0}}}
    (models_store / "other-bench").mkdir(exist_ok=True)
    (models_store / "other-bench" / "manifest.json").write_text(json.dumps({"kind": "bench", "status": "done"}))
    (models_store / "other-bench" / "bench.json").write_text(json.dumps(bench))
    try:
        at = app("overview", models_store, monkeypatch)
        at.session_state["pair"] = ("a-oracle", "b-empty5")
        at.run()
        assert not at.exception, at.exception
        assert any("other-bench/bench.json" in w.value and "not of this pair" in w.value for w in at.warning)
        eff = app("efficiency", models_store, monkeypatch)
        eff.session_state["pair"] = ("a-oracle", "b-empty5")
        eff.run()
        assert not eff.exception, eff.exception
        assert any("does not belong to the compared runs" in w.value for w in eff.warning)
    finally:
        for f in (models_store / "other-bench").iterdir():
            f.unlink()
        (models_store / "other-bench").rmdir()


def test_the_committed_gate_appears_in_the_app(tmp_path, monkeypatch):
    """Issue 17: the gate the README's badge shows (results/stats.json) never appeared in the app."""
    from core.base.settings import RESULTS_DIR
    committed = json.loads((RESULTS_DIR / "stats.json").read_text())
    at = app("overview", tmp_path, monkeypatch).run()  # an empty store: the committed gate is all there is
    assert not at.exception, at.exception
    next(t for t in at.toggle if "committed gate" in t.label).set_value(True).run()  # shown when asked
    assert f">{committed['verdict']}</div>" in at.markdown[0].value
    assert {m.label: m.value for m in at.metric}["Candidate pass@1"] == pct(
        committed["pass_at_1"][committed["candidate"]])
    assert any("results/stats.json as committed" in str(v) for v in at.dataframe[-1].value["value"])


def test_a_default_pair_follows_new_runs_and_a_run_is_not_compared_with_itself(models_store, monkeypatch, mbpp_path,
                                                                             tmp_path):
    """From a newcomer's pass: an Overview tab left open during the first run kept the fallback pair it saw first
    (the baseline as candidate, -6.8 pp) until reloaded; and Significance compared a run with itself."""
    import shutil
    store = tmp_path / "store"
    shutil.copytree(models_store, store)
    at = app("overview", store, monkeypatch).run()
    assert (at.selectbox[0].value, at.selectbox[1].value) == ("b-empty5", "a-oracle")  # the newest two
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "3", "--run-dir", store / "c-oracle",
        "--no-progress")
    at.run()  # as follow_store reruns it when a run appears
    assert (at.selectbox[0].value, at.selectbox[1].value) == ("c-oracle", "b-empty5")  # the default, worked out again
    at.selectbox[1].set_value("a-oracle").run()  # a choice is kept
    assert at.session_state["pair"] == ("c-oracle", "a-oracle")
    sig = app("significance", store, monkeypatch).run()
    sig.selectbox[1].set_value(sig.selectbox[0].value).run()
    assert not sig.exception and any("same run" in w.value for w in sig.warning)
    assert not any(b.label == "Run the test" for b in sig.button)


def test_significance_offers_to_accept_a_protocol_difference(models_store, monkeypatch, mbpp_path, tmp_path):
    """From a newcomer's pass: two runs whose protocols differ got an error naming a CLI flag the screen lacks."""
    import shutil
    store = tmp_path / "store"
    shutil.copytree(models_store, store)
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "3", "--timeout", "5",
        "--run-dir", store / "c-timeout", "--no-progress")
    at = app("significance", store, monkeypatch).run()
    at.selectbox[0].set_value("c-timeout")
    at.selectbox[1].set_value("a-oracle").run()
    assert "differ in protocol.timeout_s" in at.error[0].value
    for _ in range(5):  # each difference accepted by name (the timeout is in the protocol and the execution record)
        accept = [b for b in at.button if b.label.startswith("Accept the difference in ")]
        if not accept:
            break
        accept[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Verdict" in at.subheader[0].value
    assert any("timeout" in c.value and "accepted" in c.value for c in at.caption)


def test_the_runs_pair_follows_runs_as_they_finish_until_someone_chooses(models_store, monkeypatch, mbpp_path,
                                                                         tmp_path):
    """The first-run browser test hung now and then: the Runs screen's pair stuck to the first two runs that
    happened to be done, so the first run's real pair never appeared."""
    import shutil
    store = tmp_path / "store"
    shutil.copytree(models_store, store)
    at = app("runs", store, monkeypatch).run()
    assert at.multiselect[0].value == ["b-empty5", "a-oracle"]  # the newest two, for now
    cli("eval", "--model", "oracle", "--data-path", mbpp_path, "--limit", "3", "--run-dir", store / "c-oracle",
        "--no-progress")
    at.run()
    assert at.multiselect[0].value == ["c-oracle", "b-empty5"]
    at.multiselect[0].set_value(["a-oracle", "c-oracle"]).run()  # a choice sticks
    (store / "d").mkdir()
    at.run()
    assert at.multiselect[0].value == ["a-oracle", "c-oracle"] and at.session_state["pair"] == ("a-oracle", "c-oracle")
