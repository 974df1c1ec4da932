"""Live alerts: the monitor's rows sent through a Slack-like loopback webhook as they happen,
deduplicated, rate limited, and remembered across restarts of the side-car."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core.base.store import JsonlAppender, RunDir
from core.publish.alerts import SlackSink
from core.publish.relay import Relay
from tests.conftest import REPO
from tests.github_standin import GitHubStandIn


@pytest.fixture
def slack():
    g = GitHubStandIn("o/r")
    yield g
    g.close()


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def row(run, rule, message="m", severity="warning"):
    return {"time": "t", "severity": severity, "rule": rule, "message": message, "run": run}


def test_dedup_rate_limit_and_state_across_restarts(slack, tmp_path):
    alerts = tmp_path / "alerts.jsonl"
    out = JsonlAppender(alerts)
    clock, state = Clock(), tmp_path / "sent.json"
    relay = Relay([SlackSink(slack.url + "/slack/T/B/X")], state, min_interval_s=30, dedup_s=600, clock=clock)
    out.append(row("r1", "loss_spike", "step 11"))
    out.append(row("r1", "loss_spike", "step 12"))  # same rule, same tick: one line, counted
    out.append(row("r1", "process_died", severity="critical"))
    assert relay.tick([alerts]) == 1
    text = slack.slack[0]["text"]
    assert text.count("loss_spike") == 1 and "process_died" in text and "critical system alert" in text
    out.append(row("r1", "grad_explosion"))
    clock.t += 10
    assert relay.tick([alerts]) == 0  # rate limited: waits
    clock.t += 30
    assert relay.tick([alerts]) == 1 and "grad_explosion" in slack.slack[1]["text"]
    out.append(row("r1", "loss_spike", "step 40"))
    clock.t += 60
    assert relay.tick([alerts]) == 0  # within dedup_s of the last loss_spike: held
    # a restarted side-car: a new Relay on the same state file sends nothing twice
    again = Relay([SlackSink(slack.url + "/slack/T/B/X")], state, min_interval_s=30, dedup_s=600, clock=clock)
    assert again.tick([alerts]) == 0 and len(slack.slack) == 2
    clock.t += 600
    out.append(row("r1", "loss_spike", "step 90"))
    assert again.tick([alerts]) == 1 and "step 90 (+2 more)" in slack.slack[2]["text"]
    out.close()


def test_a_failing_sink_keeps_its_rows_for_the_next_turn(slack, tmp_path):
    alerts = tmp_path / "alerts.jsonl"
    with JsonlAppender(alerts) as out:
        out.append(row("r1", "stalled"))
    slack.slack_fail.append((500, "internal_error", {}))
    relay = Relay([SlackSink(slack.url + "/slack/T/B/X")], tmp_path / "sent.json", min_interval_s=0)
    assert relay.tick([alerts]) == 0 and slack.slack == []
    assert relay.tick([alerts]) == 1 and "stalled" in slack.slack[0]["text"]


def side_car(store, slack_url, state):
    env = dict(os.environ, SLACK_WEBHOOK_URL=slack_url)
    return subprocess.Popen([sys.executable, "-m", "core", "monitor", "--store", str(store), "--interval", "0.1",
                             "--sinks", "slack", "--min-interval-s", "0", "--relay-state", str(state)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.1)


def rules(run):
    path = run.file("alerts.jsonl")
    return [json.loads(x)["rule"] for x in path.read_text().splitlines()] if path.exists() else []


def start_job(store, name):
    """A real job process that claims a run and then sleeps, as a training job would."""
    job = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom core.base.store import RunDir\n"
        f"RunDir(sys.argv[1]).claim({{'kind': 'train'}}, {{'kind': 'train'}})\ntime.sleep(120)\n"),
        str(store / name)], cwd=REPO)
    while not (store / name / "manifest.json").exists():
        time.sleep(0.05)
    return job, RunDir(store / name)


def test_a_restarted_side_car_reports_runs_that_died_while_it_was_down(slack, tmp_path):
    """Before: a side-car started after a run died watched only running runs, so the death was never reported."""
    store, state = tmp_path / "store", tmp_path / "sent.json"
    store.mkdir()
    url = slack.url + "/slack/T/B/X"
    seen, seen_run = start_job(store, "seen")
    car = side_car(store, url, state)
    try:
        wait_for(lambda: seen_run.file("system.jsonl").exists(), car)  # being watched
    finally:
        car.send_signal(signal.SIGTERM)
        car.wait(10)
    seen.kill()  # dies while no side-car is up
    seen.wait()
    unseen, unseen_run = start_job(store, "unseen")  # starts and dies while no side-car is up
    unseen.kill()
    unseen.wait()
    car = side_car(store, url, state)
    try:
        wait_for(lambda: "process_died" in rules(seen_run) and "process_died" in rules(unseen_run), car)
        wait_for(lambda: sum("process_died" in m["text"] for m in slack.slack) >= 1
                 and all(f"run {n}" in "".join(m["text"] for m in slack.slack) for n in ("seen", "unseen")), car)
    finally:
        car.send_signal(signal.SIGTERM)
        car.wait(10)
    sent = len(slack.slack)
    car = side_car(store, url, state)  # a third start: nothing new to say
    try:
        time.sleep(2)
        assert car.poll() is None
    finally:
        car.send_signal(signal.SIGTERM)
        car.wait(10)
    assert len(slack.slack) == sent
    assert rules(seen_run) == ["process_died"] and rules(unseen_run) == ["process_died"]


def test_a_live_warning_does_not_close_the_nightly_alert_issue(slack, tmp_path, monkeypatch):
    from core.publish.alerts import GitHubIssueSink, ISSUE_LABEL, MARKER
    from tests.github_standin import TOKEN
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    slack.issues[5] = {"number": 5, "title": "t", "body": MARKER, "labels": [ISSUE_LABEL], "state": "open"}
    alerts = tmp_path / "alerts.jsonl"
    with JsonlAppender(alerts) as out:
        out.append(row("r1", "loss_spike"))
    relay = Relay([GitHubIssueSink("o/r", api=slack.url)], tmp_path / "sent.json", min_interval_s=0)
    relay.tick([alerts])
    assert slack.issues[5]["state"] == "open" and slack.comments_on(5) == []
    with JsonlAppender(alerts) as out:
        out.append(row("r1", "process_died", severity="critical"))
    relay.tick([alerts])
    assert slack.issues[5]["state"] == "open" and "process_died" in slack.comments_on(5)[0]
