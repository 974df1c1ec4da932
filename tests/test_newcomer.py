"""What a first-time user meets in the first minutes (issue 17's follow-ups), each defect reproduced first:
the launch form's "Tasks 0" that meant all tasks, the empty store's Overview that pointed at the committed
gate instead of the first run, and the Runs table's 73.55% and raw ISO timestamps."""
import json
import time
from datetime import datetime, timezone

import pytest

from core.tasks.data import load_dataset
from core.views import dashboard, jobs
from core.views.fmt import pct
from tests.test_evaluate import cli, write_samples
from tests.screens import loopback_address, page as app  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def store(tmp_path_factory, mbpp_path):
    """One eval whose pass@1 is 8 of 11 tasks (72.7272...%): the reference solutions of 8, empty for 3."""
    d = tmp_path_factory.mktemp("newcomer-store")
    tasks = load_dataset("mbpp", str(mbpp_path), "test").tasks[:11]
    rows = [{"task_id": t.task_id, "completion": t.reference if i < 8 else ""} for i, t in enumerate(tasks)]
    cli("eval", "--samples", write_samples(d.parent / "eight.jsonl", rows), "--data-path", mbpp_path, "--limit", "11",
        "--run-dir", d / "eight-of-eleven", "--no-progress")
    return d


def column_config(frame) -> dict:
    """The column configuration a Streamlit dataframe carries to the browser, by column."""
    return json.loads(frame.proto.columns)


def printf(fmt: str, value: float) -> str:
    """What the browser shows for a number column's printf format (one %.Nf and a literal %%)."""
    return fmt % value


def test_runs_table_shows_pass_at_k_in_the_one_percent_format(store, monkeypatch):
    """It showed 72.73% (Streamlit's own "percent"), where every other screen shows 72.7% (core.views.fmt.pct);
    the value stays a number, so the column still sorts."""
    at = app("runs", store, monkeypatch).run()
    assert not at.exception, at.exception
    frame = at.dataframe[0]
    value = frame.value.set_index("run").loc["eight-of-eleven", "pass@1"]
    fmt = column_config(frame)["pass@1"]["type_config"]["format"]
    assert isinstance(value, float)
    assert printf(fmt, value) == pct(8 / 11) == "72.7%"


def test_runs_table_shows_readable_local_start_times(store, monkeypatch):
    """It showed the manifest's raw ISO string (2026-12-01T12:35:16+00:00); now a datetime (sortable) shown as
    "YYYY-MM-DD HH:mm" in the viewer's time zone."""
    at = app("runs", store, monkeypatch).run()
    frame = at.dataframe[0]
    started = frame.value.set_index("run").loc["eight-of-eleven", "started"]
    assert not isinstance(started, str) and started.tzinfo is not None
    config = column_config(frame)["started"]
    assert config["type_config"]["format"] == "YYYY-MM-DD HH:mm"
    raw = dashboard.runs_table(store)[0]["started"]
    assert started == datetime.fromisoformat(raw)  # the same instant


def test_start_times_are_converted_to_the_viewers_time_zone():
    rows = [{"run": "a", "started": "2026-12-01T12:35:16+00:00", "pass@1": 0.5}, {"run": "b", "started": None}]
    shown = dashboard.runs_for_people(rows, "Europe/Paris")
    assert shown[0]["started"].strftime("%Y-%m-%d %H:%M %Z") == "2026-12-01 13:35 CET"
    assert shown[0]["pass@1"] == 50.0 and shown[1]["started"] is None
    utc = dashboard.runs_for_people(rows, None)[0]["started"]  # no browser time zone: the server's local time
    assert utc == datetime(2026, 12, 1, 12, 35, 16, tzinfo=timezone.utc)


def test_runs_table_keeps_the_exact_rate(store):
    """pass@1 was rounded to 4 digits, then formatted again: two roundings (0.735499 became 0.7355, shown 73.6%
    where the Overview shows 73.5%). The table carries the exact rate; the column's format rounds once."""
    assert dashboard.runs_table(store)[0]["pass@1"] == 8 / 11
    assert printf("%.1f%%", 100 * round(0.735499, 4)) != pct(0.735499)  # why no rounding before the format


def test_the_tasks_input_shows_the_real_count_for_all(tmp_path, monkeypatch, mbpp_path):
    """It showed 0, meaning "all tasks" (said only in its help), which a newcomer reads as "no tasks". It now
    shows the split's task count (MBPP test: 500), and at that count the job gets no --limit, as before."""
    at = app("runs", tmp_path / "empty-store", monkeypatch).run()
    assert not at.exception, at.exception
    tasks = next(w for w in at.number_input if w.label == "Tasks (eval)")
    every = len(load_dataset("mbpp", str(mbpp_path), "test").tasks)
    assert every == 500 and tasks.value == every
    assert "500" in tasks.help and "all" in tasks.help


def test_all_tasks_sends_the_same_job_as_before(tmp_path):
    field = next(f for f in jobs.form_fields("eval") if f["name"] == "limit")
    assert field["all"] == 500
    assert jobs.form_value(field, 500) is None and jobs.form_value(field, 10) == 10
    argv = jobs.build_argv(jobs.JobRequest("eval", "x", "oracle", {"limit": jobs.form_value(field, 500)}),
                           tmp_path / "x")
    assert "--limit" not in argv
    argv = jobs.build_argv(jobs.JobRequest("eval", "x", "oracle", {"limit": jobs.form_value(field, 10)}),
                           tmp_path / "x")
    assert argv[argv.index("--limit") + 1] == "10"


def page_links(at) -> list:
    return [e.proto for e in at.main if type(e).__name__ == "PageLink"]


def test_an_empty_stores_overview_leads_to_the_first_run(tmp_path, monkeypatch):
    """It showed the committed gate (a 10-task smoke FAILURE of a checkpoint against an untrained GPT-2) as if it
    were the user's own, and named the first run only when results/ had no gate. It now says how to make a
    first comparison, links to the Runs screen, and shows the committed gate only when asked, labelled."""
    at = app("overview", tmp_path / "store", monkeypatch).run()
    assert not at.exception, at.exception
    lead = at.info[0].value
    assert "Score the published generations" in lead and "Runs" in lead
    assert [link.page for link in page_links(at)] == ["runs"]
    assert not any("data-testid='verdict'" in m.value for m in at.markdown)  # no verdict that is not theirs
    committed = next(t for t in at.toggle if "committed gate" in t.label)
    committed.set_value(True).run()
    assert any("data-testid='verdict'" in m.value for m in at.markdown)


def test_overview_says_what_comes_next(tmp_path, store, mbpp_path):
    from core.views.overview import next_step
    assert next_step(tmp_path / "nothing") == "first run"
    assert next_step(store) == "another run"  # one evaluated run: a comparison needs a second
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "job.json").write_text(json.dumps({"status": "running", "pid": 1, "argv": ["eval"]}))
    assert next_step(tmp_path) == "under way"


@pytest.mark.parametrize("screen", ["significance", "tasks", "report", "accuracy"])
def test_screens_that_need_runs_lead_an_empty_store_to_the_first_run(screen, tmp_path, monkeypatch):
    """A dead end: "Two evaluated runs are needed." with no word of how to get them (Significance, Per-task
    drill-down, Report; Accuracy's "launch one" without the first run). Each now leads to it, as the Overview."""
    at = app(screen, tmp_path / "store", monkeypatch).run()
    assert not at.exception, at.exception
    assert "Score the published generations" in at.info[0].value
    assert [link.page for link in page_links(at)] == ["runs"]


def test_the_committed_gate_does_not_contradict_its_own_bench(tmp_path):
    """The committed gate read a bench that measured everything but peak training RAM. The screen said "From
    <bench>, which holds figures of both models" above KPI rows saying "no bench.json holds both models'
    figures" (the bench file is not in a fresh clone). The gate's own record says which bench it read."""
    from core.base.settings import RESULTS_DIR
    from core.views.overview import committed_overview
    stats = json.loads((RESULTS_DIR / "stats.json").read_text())
    stats["inputs"]["bench"] = {"path": str(tmp_path / "gone" / "bench.json"), "sha256": "0" * 64}
    for k in stats["gate"]["kpis"]:
        if k["key"] == "peak_train_ram_gb":
            k["held"] = None
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    view = committed_overview(tmp_path)
    assert view["bench"]
    why = {k["KPI"]: k["why"] for k in view["kpis"] if k["status"] == "not measured"}
    assert why["Peak training RAM"] == "the bench did not measure this figure"
    assert not any("no bench.json holds" in w for w in why.values())


def test_a_launch_without_a_run_name_gets_one(tmp_path, monkeypatch, mbpp_path):
    """Launch with the name left empty (nothing says it is required) was refused with "invalid run name '': use
    letters, digits...". The run now gets a name from its kind, model and start time, and starts."""
    root = tmp_path / "store"
    at = app("runs", root, monkeypatch).run()
    next(w for w in at.text_input if w.label.startswith("Model spec")).set_value("oracle")
    next(w for w in at.number_input if w.label == "Tasks (eval)").set_value(3)
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.exception, at.exception
    assert not at.error, at.error[0].value
    made = [p.name for p in root.iterdir() if (p / "job.json").exists()]
    assert len(made) == 1 and made[0].startswith("eval-oracle-"), made
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and jobs.job_status(root / made[0])["status"] == "running":
        time.sleep(0.2)
    assert jobs.job_status(root / made[0])["status"] == "done"
    assert dashboard.runs_table(root)[0]["tasks"] == 3


def test_default_run_names_are_unique(tmp_path):
    when = datetime(2026, 12, 1, 12, 31, tzinfo=timezone.utc)
    first = jobs.default_name("eval", "hf:gpt2", tmp_path, when)
    assert first == "eval-gpt-2-117m-20261201-1231"
    (tmp_path / first).mkdir()
    assert jobs.default_name("eval", "hf:gpt2", tmp_path, when) == first + "-2"
    assert jobs.default_name("train", "hrm:/some/where/ckpt", tmp_path, when) == "train-hrm-ckpt-20261201-1231"


def test_the_overview_says_when_it_decided_in_local_time(store, tmp_path, mbpp_path):
    """The same raw ISO timestamp as the Runs table, in the Overview's "Computed" table."""
    from core.views.overview import pair_overview
    rows = [{"task_id": t.task_id, "completion": ""} for t in load_dataset("mbpp", str(mbpp_path), "test").tasks[:11]]
    cli("eval", "--samples", write_samples(tmp_path / "empty.jsonl", rows), "--data-path", mbpp_path, "--limit", "11",
        "--run-dir", tmp_path / "empty", "--no-progress")
    before = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    view = pair_overview(store / "eight-of-eleven", tmp_path / "empty", tmp_path, resamples=200, tz="Asia/Kolkata")
    computed = next(r["value"] for r in view["sources"] if r["what"] == "computed")
    shown = datetime.strptime(computed.split(" (")[0], "%Y-%m-%d %H:%M")
    from zoneinfo import ZoneInfo
    assert shown.replace(tzinfo=ZoneInfo("Asia/Kolkata")) >= before  # 5:30 ahead of UTC: read as local, not UTC
    assert computed.endswith("(in memory, nothing written)")


# ---------------------------------------------------------------- a second newcomer pass (the two-run protocol's turn)
def test_the_launch_forms_default_warns_before_an_untrained_model_runs_every_task(tmp_path, monkeypatch):
    """The form's defaults launched HRM-27M with random weights on all 500 tasks x 256 tokens on the CPU, a run of
    most of an hour that scores 0, without a word. Launch now stops at a warning that says so, timed by the
    committed bench's measured throughput; nothing starts until "Launch anyway"."""
    from core.base.settings import RESULTS_DIR
    from core.views.fmt import duration
    root = tmp_path / "store"
    at = app("runs", root, monkeypatch).run()
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning]
    tok_s = json.loads((RESULTS_DIR / "bench.json").read_text())["models"].get("hrm:27m", {}).get("throughput_tok_s")
    assert warning.startswith("HRM-27M has random weights (untrained): expect pass@1 of 0%. 500 tasks x 1 sample(s) "
                              "x up to 256 new tokens " + (f"takes {duration(500 * 256 / tok_s)}" if tok_s
                                                           else "has no measured speed here"))
    assert not root.exists() or not any(root.iterdir())  # nothing launched
    next(b for b in at.button if b.label == "Do not launch").click().run()
    assert not at.warning and (not root.exists() or not any(root.iterdir()))


def test_the_launch_warning_is_timed_by_an_earlier_run_of_the_model(tmp_path, mbpp_path):
    from core.views.estimate import launch_warning
    from core.views.fmt import duration
    cli("eval", "--model", "hrm:tiny", "--data-path", mbpp_path, "--limit", "2", "--max-new-tokens", "4",
        "--run-dir", tmp_path / "tiny", "--no-progress")
    speed = json.loads((tmp_path / "tiny" / "run_summary.json").read_text())["timings"]["generation_samples_per_s"]
    settings = {"data_path": str(mbpp_path), "limit": 50, "max_new_tokens": 4}
    text = launch_warning(jobs.JobRequest("eval", "x", "hrm:tiny", settings), tmp_path)
    assert f"50 tasks x 1 sample(s) x up to 4 new tokens takes {duration(50 / speed)}" in text
    assert "(run tiny, measured here)" in text
    # no speed measured at another max_new_tokens, nor a bench of hrm:tiny: said plainly
    other = launch_warning(jobs.JobRequest("eval", "x", "hrm:tiny", {**settings, "max_new_tokens": 8}), tmp_path)
    assert "has no measured speed here to time it by" in other


@pytest.mark.parametrize("spec, settings", [("hf:gpt2", {}), ("oracle", {}), ("hrm:tiny", {"limit": 20}),
                                            ("hrm:tiny", {"limit": 2, "n": 10})])
def test_no_launch_warning_for_a_trained_model_or_a_few_samples(spec, settings, tmp_path, mbpp_path):
    from core.views.estimate import launch_warning
    req = jobs.JobRequest("eval", "x", spec, {"data_path": str(mbpp_path), **settings})
    assert launch_warning(req, tmp_path) is None


def test_launch_anyway_starts_the_warned_run(tmp_path, monkeypatch):
    root = tmp_path / "store"
    at = app("runs", root, monkeypatch).run()
    next(w for w in at.text_input if w.label == "Run name").set_value("warned")
    next(w for w in at.selectbox if w.label == "Model").set_value("hrm:tiny")
    next(w for w in at.number_input if w.label == "Tasks (eval)").set_value(21)
    next(w for w in at.number_input if w.label == "Max new tokens (eval)").set_value(2)
    next(b for b in at.button if b.label == "Launch").click().run()
    assert "HRM-tiny has random weights" in at.warning[0].value and not (root / "warned").exists()
    next(b for b in at.button if b.label == "Launch anyway").click().run()
    assert not at.exception and not at.error, at.error
    assert (root / "warned" / "job.json").exists()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and jobs.job_status(root / "warned")["status"] == "running":
        time.sleep(0.5)
    assert jobs.job_status(root / "warned")["status"] == "done"
    assert dashboard.runs_table(root)[0]["tasks"] == 21


def test_the_efficiency_screen_says_the_committed_bench_is_not_the_users(tmp_path, monkeypatch):
    """On an empty store it charted results/bench.json (another machine's figures of other models) as if it
    were the user's."""
    at = app("efficiency", tmp_path / "store", monkeypatch).run()
    assert not at.exception, at.exception
    assert any("repository's committed bench" in i.value and "not a bench of your runs" in i.value
               for i in at.info)


def test_a_bench_of_the_users_own_is_not_called_committed(tmp_path):
    from core.base.settings import RESULTS_DIR
    own = tmp_path / "bench.json"
    own.write_text((RESULTS_DIR / "bench.json").read_text())
    assert dashboard.bench_origin(own) is None and dashboard.bench_origin(RESULTS_DIR / "bench.json")


@pytest.mark.parametrize("screen", ["runs", "overview"])
def test_the_first_run_promises_what_was_measured(screen, tmp_path, monkeypatch):
    """Both screens promised "about ten seconds"; a newcomer measured 16-22 s on a 2-core machine."""
    at = app(screen, tmp_path / "store", monkeypatch).run()
    text = " ".join(i.value for i in at.info)
    assert "under half a minute" in text and "ten seconds" not in text
