"""The screens on the two-run protocol (issue 14, item 2): the Significance table and the Overview name the pair
each figure came from, show the sampled pass@1 as descriptive, say how to measure pass@10 in the app's and the
pipeline's words, and `publish` writes the sampled candidate's summary beside the greedy one's. A stats.json of
one pair (the committed results/stats.json) still renders as before."""
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.base.settings import REPO_ROOT, RESULTS_DIR
from core.decide.gate import run_gate
from core.evaluation.config import EvalConfig
from core.evaluation.evaluate import run_eval
from core.publish.release import SAMPLED_SUMMARY, publish
from core.views import overview
from core.views.dashboard import stats_rows
from core.views.fmt import pct
from tests.test_two_run import scored
from tests.screens import loopback_address  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, mbpp_path):
    """Main pair (one sample a task) and sampled pair (ten a task) scored from samples files named as the first
    run's imports are, so that the columns carry those names."""
    d = tmp_path_factory.mktemp("two-run")
    runs = {"main": (scored(d, mbpp_path, "main/chatgpt-mapcoder", [1, 0, 0], 1),
                     scored(d, mbpp_path, "main/chatgpt-analogical", [0, 0, 0], 1)),
            "sampled": (scored(d, mbpp_path, "sampled/chatgpt-mapcoder", [10, 1, 0], 10),
                        scored(d, mbpp_path, "sampled/chatgpt-analogical", [2, 0, 0], 10))}
    two = run_gate(*runs["main"], ks=(1, 10), resamples=500, sampled=runs["sampled"]).stats
    one = run_gate(*runs["main"], ks=(1, 10), resamples=500).stats
    return runs, two, one


@pytest.fixture(scope="module")
def sampled_hrm(tmp_path_factory, mbpp_path):
    """A real two-run gate of hrm:tiny on 2 tasks: greedy n 1, then T 0.8, top_p 0.95, n 10 (the pipeline's
    [sampled] defaults), so the pair's sampling is known."""
    d = tmp_path_factory.mktemp("two-run-hrm")
    common = dict(model="hrm:tiny", data_path=str(mbpp_path), limit=2, max_new_tokens=4, progress=False)
    for name in ("c", "b"):
        run_eval(EvalConfig(run_dir=str(d / name), **common))
        run_eval(EvalConfig(run_dir=str(d / f"{name}-sampled"), n=10, temperature=0.8, top_p=0.95, **common))
    return run_gate(str(d / "c"), str(d / "b"), ks=(1, 10), resamples=500,
                    sampled=(str(d / "c-sampled"), str(d / "b-sampled"))).stats


# ---------------------------------------------------------------- item 1: the views name the pair
def test_significance_rows_name_the_pair_of_each_figure_and_show_the_sampled_pass_at_1(imported):
    """stats_rows showed "pass@10" with no pair and left the sampled pass@1 out."""
    _, stats, _ = imported
    rows = {r["metric"]: r for r in stats_rows(stats)}
    unknown = "sampling unknown (samples file)"
    assert list(rows) == [f"pass@1 (main pair: {unknown})", f"pass@10 (sampled pair: {unknown})",
                          f"pass@1 of the sampled runs (sampled pair: {unknown}; not used for the verdict)"]
    cand, base = "ChatGPT + MapCoder · chatgpt-mapcoder", "ChatGPT + Analogical · chatgpt-analogical"
    p10 = rows[f"pass@10 (sampled pair: {unknown})"]
    assert (p10[cand], p10[base]) == (pct(2 / 3), pct(1 / 3))
    descriptive = rows[f"pass@1 of the sampled runs (sampled pair: {unknown}; not used for the verdict)"]
    assert (descriptive[cand], descriptive[base]) == (pct(1.1 / 3), pct(0.2 / 3))
    assert descriptive["role"].startswith("descriptive")


def test_the_pair_is_named_with_its_sampling(sampled_hrm):
    metrics = [r["metric"] for r in stats_rows(sampled_hrm)]
    assert metrics == ["pass@1 (main pair: greedy, n 1)", "pass@10 (sampled pair: T 0.8, top_p 0.95, n 10)",
                       "pass@1 of the sampled runs (sampled pair: T 0.8, top_p 0.95, n 10; not used for the verdict)"]
    figures = overview.pair_figures(sampled_hrm)
    assert [f["figure"] for f in figures] == metrics
    assert list(figures[0]) == ["figure", "HRM-tiny · c", "HRM-tiny · b", "delta", "95% CI", "role", "p (decides)"]


def test_significance_columns_are_headed_by_model_names_with_the_run_second(imported):
    """Newcomer: the table was headed chatgpt-mapcoder / chatgpt-analogical (run names) only."""
    _, _, stats = imported
    [row] = stats_rows(stats)  # one pair of one sample a task: pass@1 only
    assert list(row)[:3] == ["metric", "ChatGPT + MapCoder · chatgpt-mapcoder",
                             "ChatGPT + Analogical · chatgpt-analogical"]
    assert row["metric"] == "pass@1"


def test_an_old_stats_json_renders_as_before():
    """The committed results/stats.json has no sources/pairs: plain metric names, no by-pair table."""
    stats = json.loads((RESULTS_DIR / "stats.json").read_text())
    assert "sources" not in stats
    assert [r["metric"] for r in stats_rows(stats)] == ["pass@1"]
    view = overview.committed_overview()
    assert view["figures"] == [] and view["headline"]["candidate"] == pct(stats["pass_at_1"][stats["candidate"]])


def test_the_committed_two_run_gate_shows_pass_at_10_with_its_pair(imported, tmp_path):
    _, stats, _ = imported
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    view = overview.committed_overview(tmp_path)
    assert [f["figure"].split(" (")[0] for f in view["figures"]] == ["pass@1", "pass@10", "pass@1 of the sampled runs"]
    kpi = {k["KPI"]: k for k in view["kpis"]}
    assert any(label.startswith("Pass@10") and "[sampled pair:" in label for label in kpi)
    sources = {s["what"] for s in view["sources"]}
    assert {"sampled candidate results", "sampled baseline results"} <= sources


def test_the_overview_screen_shows_the_by_pair_table_of_a_two_run_gate(imported, tmp_path, monkeypatch):
    _, stats, _ = imported
    results = tmp_path / "results"
    results.mkdir()
    (results / "stats.json").write_text(json.dumps(stats))
    monkeypatch.setattr(overview, "RESULTS_DIR", results)  # the committed gate read from this folder instead
    monkeypatch.setenv("HRM_GATE_STORE", str(tmp_path / "store"))
    at = AppTest.from_file("../app_pages/overview.py", default_timeout=120).run()
    next(t for t in at.toggle if "committed gate" in t.label).set_value(True).run()
    assert not at.exception, at.exception
    assert "Pass@1 and pass@10, by pair" in [s.value for s in at.subheader]
    table = next(d.value for d in at.dataframe if "figure" in d.value.columns)
    assert table["figure"].str.startswith("pass@10 (sampled pair").any()
    assert any(c.value.startswith("Two-run protocol: pass@1") for c in at.caption)


# ---------------------------------------------------------------- item 2: advice in the app's words
def test_the_pass_at_10_hint_names_the_form_and_the_pipeline_not_a_flag(imported):
    """It said "eval --n 10 at a temperature": a CLI flag, on a screen."""
    _, two, one = imported
    why = overview._why_not_measured("pass_at_10", one, None)
    assert "--n" not in why
    assert "Samples per task (eval) 10" in why and "Temperature (eval) 0.8" in why and "Top-p (eval) 0.95" in why
    assert "[sampled] n = 10" in why
    short = dict(two, sampled={**two["sampled"], "min_n": 2})  # the smoke config's sampled pair: n 2
    assert "sampled pair has 2 sample(s) per task" in overview._why_not_measured("pass_at_10", short, None)
    bench = overview._why_not_measured("latency_ms", one, None)
    assert "python -m core" not in bench and "Runs screen" in bench


def test_the_reasons_a_screen_shows_name_no_flag(imported):
    """The gate's own reason ("eval with --n 10 or more", right for the CLI) reached the Overview's and the
    Significance screen's reasons as it was."""
    _, two, one = imported
    assert any("--n 10" in r for r in one["gate"]["reasons"])  # the gate's line, for the command line
    for reasons in (overview.screen_reasons(one), overview.plain_reasons(one)):
        assert not any("--n" in r for r in reasons)
    [untested] = [r for r in overview.screen_reasons(one) if r.startswith("pass@10 not tested")]
    assert "Samples per task (eval) 10" in untested and "[sampled] n = 10" in untested
    assert overview.screen_reasons(two) == two["gate"]["reasons"]  # a two-run gate's lines name [sampled] already


def test_no_screen_gives_command_line_only_advice():
    flags = re.compile(r"(eval|bench|train|gate) --[a-z]|python -m core \w+ --[a-z]")
    screens = list((REPO_ROOT / "app_pages").glob("*.py")) + list((REPO_ROOT / "core" / "views").glob("*.py"))
    offenders = [f"{p.name}: {m.group(0)}" for p in screens for m in flags.finditer(p.read_text())]
    assert offenders == []


# ---------------------------------------------------------------- item 3: publish writes the sampled summary
def test_publish_writes_the_sampled_candidates_summary(imported, tmp_path):
    runs, two, one = imported
    results = tmp_path / "results"
    written = publish(results, two, runs["main"][0], 0.3)
    assert results / SAMPLED_SUMMARY in written
    assert (results / SAMPLED_SUMMARY).read_text() == (Path(runs["sampled"][0]) / "run_summary.json").read_text()
    assert json.loads((results / "run_summary.json").read_text())["min_samples_per_task"] == 1
    assert json.loads((results / SAMPLED_SUMMARY).read_text())["min_samples_per_task"] == 10
    # a later gate of one pair leaves no sampled summary of an earlier one behind
    written = publish(results, one, runs["main"][0], 0.3)
    assert not (results / SAMPLED_SUMMARY).exists() and results / SAMPLED_SUMMARY not in written
