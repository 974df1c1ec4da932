"""Alert sinks against a loopback server that answers like GitHub's and Slack's APIs."""
import io
import json
import logging

import pytest

from core.publish import alerts
from core.publish.github import redact
from tests.github_standin import TOKEN, GitHubStandIn
STATS_FAIL = {"verdict": "FAILURE", "pass_at_1": {"p_value": 0.2},
              "gate": {"reasons": ["p = 0.2 >= 0.1"], "kpis": [
                  {"label": "Pass@1 (candidate)", "target": ">= 30.0%", "shown": "0.0%", "held": False, "met": False,
                   "group": "accuracy"},
                  {"label": "Latency, 512-token prefill", "target": "<= 150 ms", "shown": "not measured", "held": None,
                   "met": False},
                  {"label": "delta Pass@1 vs baseline", "target": ">= 4 pp", "shown": "+5.0 pp", "held": True, "met": True}]}}


@pytest.fixture
def github():
    g = GitHubStandIn("o/r")
    yield g
    g.close()


def test_rules():
    out = alerts.evaluate_rules(STATS_FAIL, [{"severity": "critical", "rule": "disk_full", "message": "1 GiB free"}])
    rules = [a.rule for a in out.alerts]
    assert rules == ["ci_complete", "kpi_below_target", "kpi_not_measured", "inconclusive", "system_health"]
    assert out.labels == ["kpi-below-target", "INCONCLUSIVE"] and out.state == "failure"
    assert "Pass@1 (candidate): 0.0% (target >= 30.0%)" in out.alerts[1].details
    ok = alerts.evaluate_rules({"verdict": "SUCCESS", "pass_at_1": {"p_value": 0.001},
                                "gate": {"kpis": [{"label": "x", "target": "t", "shown": "s", "held": True, "met": True}]}})
    assert [a.rule for a in ok.alerts] == ["ci_complete", "gate_pass"] and ok.state == "success"


def test_a_success_with_a_reported_only_kpi_below_target_raises_no_kpi_alert():
    """Before: throughput (reported only) below its target gave a SUCCESS the kpi-below-target label and a
    failing commit status."""
    stats = {"verdict": "SUCCESS", "pass_at_1": {"p_value": 0.001}, "gate": {"kpis": [
        {"label": "Pass@1 (candidate)", "target": ">= 30.0%", "shown": "41.0%", "held": True, "met": True,
         "group": "accuracy"},
        {"label": "Throughput", "target": ">= 1100 tok/s", "shown": "52 tok/s", "held": False, "met": False,
         "group": "efficiency (reported)"},
        {"label": "Throughput vs baseline", "target": ">= 2x", "shown": "not measured", "held": None, "met": False,
         "group": "efficiency (reported)"}]}}
    out = alerts.evaluate_rules(stats)
    assert out.labels == ["gate-passed"] and out.state == "success"
    assert [a.rule for a in out.alerts] == ["ci_complete", "gate_pass"]


def test_github_comment_created_once_then_edited(github, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps(STATS_FAIL))
    with caplog.at_level(logging.DEBUG):
        alerts.dispatch(str(stats), sinks=["github"], repo="o/r", pr=7, sha="abc123")
        second = dict(STATS_FAIL, verdict="PARTIAL")
        stats.write_text(json.dumps(second))
        alerts.dispatch(str(stats), sinks=["github", "console"], repo="o/r", pr=7, sha="abc123")
    assert len(github.comments) == 1  # created once, then edited in place
    body = github.comments_on(7)[0]
    assert "HRM-CodeGen Gate: PARTIAL" in body and "| Pass@1 (candidate) | >= 30.0% | 0.0% | **no** |" in body
    methods = [(m, p) for m, p, _, _ in github.requests]
    assert methods.count(("POST", "/repos/o/r/issues/7/comments")) == 1
    assert ("PATCH", f"/repos/o/r/issues/comments/{next(iter(github.comments))}") in methods
    assert "kpi-below-target" in github.labels[7] and "INCONCLUSIVE" in github.labels[7]
    assert github.statuses[-1]["state"] == "failure" and github.statuses[-1]["context"] == "hrm-codegen-gate"
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth, _ in github.requests)
    assert TOKEN not in caplog.text


def test_errors_never_show_the_token(github, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "wrong-" + TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps(STATS_FAIL))
    with pytest.raises(alerts.AlertSinkError, match="HTTP 401") as e:
        alerts.dispatch(str(stats), sinks=["github"], repo="o/r", pr=7)
    assert TOKEN not in str(e.value)


def test_slack_webhook_and_ci_annotations(github, tmp_path, monkeypatch):
    secret_path = "/slack/T000/B000/XXXXSECRET"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", github.url + secret_path)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps(STATS_FAIL))
    out = alerts.dispatch(str(stats), sinks=["slack"])
    assert github.slack and "[error] 1 KPI(s) below target" in github.slack[0]["text"]
    assert "[warning] 1 KPI(s) not measured" in github.slack[0]["text"]
    buf = io.StringIO()
    alerts.CIAnnotationSink(stream=buf).send(out)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("::notice title=hrm-gate ci_complete::")
    assert any(x.startswith("::error title=hrm-gate kpi_below_target::") for x in lines)
    assert any(x.startswith("::warning title=hrm-gate inconclusive::") for x in lines)
    assert "HRM-CodeGen Gate: FAILURE" in summary.read_text()
    err = redact(github.url + secret_path)
    assert "SECRET" not in err


def test_github_issue_opened_on_a_violation_then_commented_not_duplicated(github, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"verdict": "SUCCESS", "pass_at_1": {"p_value": 0.001}, "gate": {"kpis": [
        {"label": "x", "target": "t", "shown": "s", "held": True, "met": True}]}}))
    alerts.dispatch(str(ok), sinks=["github-issue"], repo="o/r")
    assert github.issues == {}  # nothing violated: no issue
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(STATS_FAIL))
    alerts.dispatch(str(bad), sinks=["github-issue"], repo="o/r")
    alerts.dispatch(str(bad), sinks=["github-issue"], repo="o/r")
    (number, issue), = github.issues.items()
    assert issue["labels"] == [alerts.ISSUE_LABEL] and "KPI(s) below target" in issue["title"]
    assert "| Pass@1 (candidate) | >= 30.0% | 0.0% | **no** |" in issue["body"]
    assert len(github.comments_on(number)) == 1  # the second violation comments on the open issue
    with pytest.raises(alerts.AlertSinkError, match="needs --repo"):
        alerts.dispatch(str(bad), sinks=["github-issue"])


STATS_OK = {"verdict": "SUCCESS", "pass_at_1": {"p_value": 0.001}, "gate": {"kpis": [
    {"label": "x", "target": "t", "shown": "s", "held": True, "met": True}]}}


def write_stats(tmp_path, stats, name="stats.json"):
    path = tmp_path / name
    path.write_text(json.dumps(stats))
    return str(path)


def test_slack_answering_plain_text_ok_is_sent_and_the_sinks_after_it_run(github, tmp_path, monkeypatch):
    """Before: real Slack's 200 `ok` (text/html, not JSON) crashed the sink and the ci sink after it never ran."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", github.url + "/slack/T000/B000/XXXX")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["slack", "ci"])
    assert len(github.slack) == 1 and "[error] 1 KPI(s) below target" in github.slack[0]["text"]
    assert "HRM-CodeGen Gate: FAILURE" in summary.read_text()


def test_slack_answering_anything_but_ok_is_an_error(github, tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", github.url + "/slack/T000/B000/XXXX")
    github.slack_fail.append((200, "no_service", {}))
    with pytest.raises(alerts.AlertSinkError, match="no_service"):
        alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["slack"])


def test_a_429_with_retry_after_is_waited_out(github, tmp_path, monkeypatch):
    import time
    monkeypatch.setenv("SLACK_WEBHOOK_URL", github.url + "/slack/T000/B000/XXXX")
    github.slack_fail.append((429, "rate_limited", {"Retry-After": "1"}))
    t0 = time.monotonic()
    alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["slack"])
    assert time.monotonic() - t0 >= 1.0 and len(github.slack) == 1


def test_each_sink_fails_alone_with_one_line(github, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GITHUB_TOKEN", "wrong-" + TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", github.url + "/slack/T000/B000/XXXX")
    with caplog.at_level(logging.ERROR, logger="core.publish.alerts"), \
            pytest.raises(alerts.AlertSinkError, match="1 of 2 alert sink"):
        alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["github", "slack"], repo="o/r", pr=7)
    assert len(github.slack) == 1  # the sink after the failing one still sent
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and "github: " in failures[0].getMessage() and "HTTP 401" in failures[0].getMessage()
    assert TOKEN not in caplog.text


def test_the_sticky_comment_is_found_past_the_first_page(github, tmp_path, monkeypatch):
    """Before: only the first 100 comments were read, so on a busy PR the sticky comment was posted again."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    for i in range(120):
        github.comments[github.new_id()] = {"issue": 7, "body": f"chatter {i}"}
    alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["github"], repo="o/r", pr=7)
    for i in range(30):
        github.comments[github.new_id()] = {"issue": 7, "body": f"more chatter {i}"}
    alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["github"], repo="o/r", pr=7)
    assert sum(alerts.MARKER in b for b in github.comments_on(7)) == 1
    assert any("page=2" in p for m, p, _, _ in github.requests if m == "GET")


def test_labels_cleared_and_the_alert_issue_closed_on_recovery(github, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    github.labels[7] = ["bug"]  # someone else's label stays
    alerts.dispatch(write_stats(tmp_path, STATS_FAIL), sinks=["github", "github-issue"], repo="o/r", pr=7)
    assert github.labels[7] == ["bug", "kpi-below-target", "INCONCLUSIVE"]
    (number, issue), = github.issues.items()
    assert issue["state"] == "open"
    alerts.dispatch(write_stats(tmp_path, STATS_OK), sinks=["github", "github-issue"], repo="o/r", pr=7)
    assert github.labels[7] == ["bug", "gate-passed"]
    assert issue["state"] == "closed" and "Recovered" in github.comments_on(number)[-1]
    alerts.dispatch(write_stats(tmp_path, STATS_OK), sinks=["github-issue"], repo="o/r")
    assert len(github.issues) == 1 and len(github.comments_on(number)) == 1  # nothing more to close
