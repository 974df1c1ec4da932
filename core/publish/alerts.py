"""Alert rules (the seed's) routed to sinks: console, GitHub REST, CI annotations, Slack webhook.

Rules, from a gate's stats.json and a run's alerts.jsonl:
  ci_complete       every time: the run finished, with its verdict          (info)
  kpi_below_target  any KPI not met: the PR is marked (failing commit status, label
                    `kpi-below-target`) and the sticky comment lists the failing metrics (error)
  inconclusive      p >= alpha: label INCONCLUSIVE                          (warning)
  system_health     a critical alert from the reliability monitor           (error)
  gate_pass         verdict SUCCESS: label `gate-passed`, success status    (info)

GitHub: one sticky comment per PR (found by a hidden marker, then edited in place), labels, and
a commit status; or (github-issue, the nightly monitor) an issue when a threshold is violated.
On recovery the gate's labels that no longer hold are removed, and the open alert issue is closed
with a comment. Tokens come from the environment (GITHUB_TOKEN, SLACK_WEBHOOK_URL) and are never
written to a log or an error; GITHUB_API_URL points the client elsewhere (tests use loopback).

Each sink fails alone: `send_all` runs every sink, logs one line for each that failed, and only
then raises. `live_outcome` turns the reliability monitor's alerts.jsonl rows into an Outcome
the same sinks send while runs go (core.publish.relay).
"""
from __future__ import annotations

import logging
import os
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from core.base.errors import GateError
from core.base.settings import ALPHA
from core.decide import comparable
from core.publish.github import Http, api_base
from core.base.store import read_json, read_jsonl

log = logging.getLogger(__name__)
MARKER = "<!-- hrm-codegen-gate -->"
ISSUE_LABEL = "hrm-gate-alert"
GATE_LABELS = ("kpi-below-target", "INCONCLUSIVE", "gate-passed")  # the labels this gate sets and clears


class AlertSinkError(GateError):
    pass


@dataclass
class Alert:
    rule: str
    severity: str  # info | warning | error
    message: str
    details: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    alerts: list[Alert]
    verdict: str | None
    labels: list[str]
    state: str  # commit status: success | failure | pending
    comment: str
    live: bool = False  # the monitor's alerts while runs go, not a gate's outcome


def reported_only(kpi: dict) -> bool:
    """A KPI the seed reports beside the verdict without deciding it (kpis.toml's groups say which)."""
    return "(reported)" in (kpi.get("group") or "")


def evaluate_rules(stats: dict, monitor_alerts: list[dict] = (), run_url: str | None = None) -> Outcome:
    verdict = stats.get("verdict")
    gate = stats.get("gate") or {}
    alerts = [Alert("ci_complete", "info", f"CI run complete: verdict {verdict or 'not decided'}")]
    kpis = gate.get("kpis", [])
    # Only a KPI that was measured and missed its target is below target; reported-only KPIs inform the
    # verdict's reader but do not decide it, and an unmeasured KPI says so rather than "below".
    failing = [k for k in kpis if k.get("held") is False and not reported_only(k)]
    unmeasured = [k for k in kpis if k.get("held") is None and not reported_only(k)]
    labels = []
    if failing:
        alerts.append(Alert("kpi_below_target", "error", f"{len(failing)} KPI(s) below target",
                            [f"{k['label']}: {k['shown']} (target {k['target']})" for k in failing]))
        labels.append("kpi-below-target")
    if unmeasured:
        alerts.append(Alert("kpi_not_measured", "warning", f"{len(unmeasured)} KPI(s) not measured (count as not met)",
                            [f"{k['label']}: not measured (target {k['target']})" for k in unmeasured]))
    p1 = stats.get("pass_at_1") or {}
    p = p1.get("p_value_decision", p1.get("p_value"))
    alpha = stats.get("alpha", ALPHA)
    if p is not None and p >= alpha:
        alerts.append(Alert("inconclusive", "warning", f"p = {p:.4g} >= {alpha:g}: the difference is not established"))
        labels.append("INCONCLUSIVE")
    critical = [a for a in monitor_alerts if a.get("severity") == "critical"]
    if critical:
        alerts.append(Alert("system_health", "error", f"{len(critical)} critical system alert(s)",
                            [f"{a['rule']}: {a['message']}" for a in critical]))
    if verdict == "SUCCESS":
        alerts.append(Alert("gate_pass", "info", "release gate passed"))
        labels.append("gate-passed")
    state = "success" if verdict == "SUCCESS" else "failure"
    return Outcome(alerts, verdict, labels, state, render_comment(stats, alerts, run_url))


def render_comment(stats: dict, alerts: list[Alert], run_url: str | None) -> str:
    gate = stats.get("gate") or {}
    lines = [MARKER, f"## HRM-CodeGen Gate: {stats.get('verdict') or 'no verdict'}", ""]
    if gate.get("kpis"):
        lines += ["| KPI | target | measured | held |", "|---|---|---|---|"]
        for k in gate["kpis"]:
            held = "not measured" if k.get("held") is None else ("yes" if k.get("held") else "**no**")
            lines.append(f"| {k['label']} | {k['target']} | {k['shown']} | {held} |")
        lines.append("")
    for reason in gate.get("reasons", []):
        lines.append(f"- {reason}")
    lines += ["", *(f"- {line.strip()}" for line in comparable.describe(stats))]
    for a in alerts:
        if a.details:
            lines += ["", f"**{a.message}**"] + [f"- {d}" for d in a.details]
    if run_url:
        lines += ["", f"W&B: {run_url}"]
    return "\n".join(lines) + "\n"


class ConsoleSink:
    name = "console"

    def send(self, outcome: Outcome) -> None:
        for a in outcome.alerts:
            log.log({"info": logging.INFO, "warning": logging.WARNING}.get(a.severity, logging.ERROR),
                    "[%s] %s", a.rule, a.message)
            for d in a.details:
                log.log(logging.INFO, "    %s", d)


class CIAnnotationSink:
    """GitHub Actions workflow commands on stdout, and the comment as the job summary."""

    name = "ci"

    def __init__(self, stream=None, summary_path: str | None = None):
        self.stream = stream or sys.stdout
        self.summary_path = summary_path or os.environ.get("GITHUB_STEP_SUMMARY")

    def send(self, outcome: Outcome) -> None:
        for a in outcome.alerts:
            kind = {"info": "notice", "warning": "warning"}.get(a.severity, "error")
            text = a.message + ("; " + "; ".join(a.details) if a.details else "")
            self.stream.write(f"::{kind} title=hrm-gate {a.rule}::{_escape(text)}\n")
        if self.summary_path:
            with open(self.summary_path, "a", encoding="utf-8") as fh:
                fh.write(outcome.comment.replace(MARKER, ""))


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class GitHubSink:
    name = "github"

    def __init__(self, repo: str, pr: int | None, sha: str | None, token: str | None = None, api: str | None = None):
        self.repo, self.pr, self.sha = repo, pr, sha
        self.api = (api or api_base()).rstrip("/")
        self.http = Http(token if token is not None else os.environ.get("GITHUB_TOKEN"), AlertSinkError)

    def send(self, outcome: Outcome) -> None:
        base = f"{self.api}/repos/{self.repo}"
        if self.pr:
            comments = self.http.paged(f"{base}/issues/{self.pr}/comments?per_page=100")
            mine = [c for c in comments if MARKER in (c.get("body") or "")]
            if mine:
                self.http.request("PATCH", f"{base}/issues/comments/{mine[0]['id']}", {"body": outcome.comment})
            else:
                self.http.request("POST", f"{base}/issues/{self.pr}/comments", {"body": outcome.comment})
            if outcome.labels:
                self.http.request("POST", f"{base}/issues/{self.pr}/labels", {"labels": outcome.labels})
            have = [label.get("name") for label in self.http.paged(f"{base}/issues/{self.pr}/labels?per_page=100")]
            for name in have:
                if name in GATE_LABELS and name not in outcome.labels:  # recovered: the label no longer holds
                    self.http.request("DELETE", f"{base}/issues/{self.pr}/labels/{urllib.parse.quote(name)}")
                    log.info("removed label %s from #%s", name, self.pr)
        if self.sha:
            desc = f"verdict {outcome.verdict or 'none'}"
            self.http.request("POST", f"{base}/statuses/{self.sha}",
                              {"state": outcome.state, "context": "hrm-codegen-gate", "description": desc})


class GitHubIssueSink:
    """The nightly monitor's sink: an issue when a threshold is violated. While one such issue is
    open (label ISSUE_LABEL), later violations are added to it as comments instead of new issues."""

    name = "github-issue"
    violations = ("kpi_below_target", "system_health")

    def __init__(self, repo: str, token: str | None = None, api: str | None = None):
        self.repo = repo
        self.api = (api or api_base()).rstrip("/")
        self.http = Http(token if token is not None else os.environ.get("GITHUB_TOKEN"), AlertSinkError)

    def send(self, outcome: Outcome) -> None:
        violated = [a for a in outcome.alerts if a.rule in self.violations]
        base = f"{self.api}/repos/{self.repo}"
        body = outcome.comment
        open_issues = self.http.paged(f"{base}/issues?state=open&labels={ISSUE_LABEL}&per_page=100")
        mine = [i for i in open_issues if MARKER in (i.get("body") or "") and "pull_request" not in i]
        if not violated and outcome.live:
            return  # a live message without a critical alert says nothing about recovery
        if not violated:
            for issue in mine:  # recovered: close what was opened for it
                self.http.request("POST", f"{base}/issues/{issue['number']}/comments",
                                  {"body": f"{MARKER}\nRecovered: no threshold violated (verdict "
                                           f"{outcome.verdict or 'none'}). Closing.\n"})
                self.http.request("PATCH", f"{base}/issues/{issue['number']}", {"state": "closed"})
                log.info("no threshold violated: closed issue #%s", issue["number"])
            if not mine:
                log.info("no threshold violated: no issue opened")
            return
        if mine:
            self.http.request("POST", f"{base}/issues/{mine[0]['number']}/comments", {"body": body})
            log.info("threshold violated again: commented on issue #%s", mine[0]["number"])
            return
        title = f"HRM-CodeGen Gate: {'; '.join(a.message for a in violated)} (verdict {outcome.verdict or 'none'})"
        made = self.http.request("POST", f"{base}/issues", {"title": title[:250], "body": body, "labels": [ISSUE_LABEL]})
        log.info("threshold violated: opened issue #%s", (made or {}).get("number"))


class SlackSink:
    name = "slack"

    def __init__(self, webhook_url: str):
        self.url = webhook_url
        self.http = Http(None, AlertSinkError)

    def send(self, outcome: Outcome) -> None:
        text = "\n".join(f"[{a.severity}] {a.message}" + "".join(f"\n  - {d}" for d in a.details)
                         for a in outcome.alerts)
        answer = self.http.request("POST", self.url, {"text": text})
        # Slack's incoming webhooks answer 200 with the plain text `ok`; an error is a 4xx with a
        # plain-text reason (invalid_payload, no_text...) and fails in Http already.
        if isinstance(answer, str) and answer.strip() != "ok":
            raise AlertSinkError(f"the Slack webhook answered {answer.strip()[:80]!r} instead of 'ok'")


def build_sinks(names: list[str], repo=None, pr=None, sha=None) -> list:
    sinks = []
    for name in names:
        if name == "console":
            sinks.append(ConsoleSink())
        elif name == "ci":
            sinks.append(CIAnnotationSink())
        elif name == "github":
            if not repo:
                raise AlertSinkError("the github sink needs --repo OWNER/NAME (and --pr N and/or --sha SHA)")
            sinks.append(GitHubSink(repo, pr, sha))
        elif name == "github-issue":
            if not repo:
                raise AlertSinkError("the github-issue sink needs --repo OWNER/NAME")
            sinks.append(GitHubIssueSink(repo))
        elif name == "slack":
            url = os.environ.get("SLACK_WEBHOOK_URL")
            if url:
                sinks.append(SlackSink(url))
            else:
                log.info("slack sink skipped: SLACK_WEBHOOK_URL is not set")
        else:
            raise AlertSinkError(f"unknown sink {name!r}; use console, ci, github, github-issue or slack")
    return sinks


def send_all(sinks, outcome: Outcome) -> list[str]:
    """Send through every sink; a failing sink logs one line and the others still run. Returns the
    failures' lines ("sink: reason"), empty when all sent."""
    failed = []
    for sink in sinks:
        try:
            sink.send(outcome)
        except Exception as exc:  # noqa: BLE001 - one sink's failure must not silence the others
            line = f"{sink.name}: {exc}"
            log.error("alert sink failed: %s", line)
            failed.append(line)
    return failed


def dispatch(stats_path: str, alert_files=(), sinks=("console",), repo=None, pr=None, sha=None,
             run_url: str | None = None) -> Outcome:
    stats = read_json(Path(stats_path))
    monitor = [row for f in alert_files for row in read_jsonl(Path(f))]
    outcome = evaluate_rules(stats, monitor, run_url)
    built = build_sinks(list(sinks), repo, pr, sha)
    failed = send_all(built, outcome)
    if failed:
        raise AlertSinkError(f"{len(failed)} of {len(built)} alert sink(s) failed: " + "; ".join(failed))
    return outcome


def live_outcome(rows: list[dict]) -> Outcome:
    """The monitor's alerts.jsonl rows as one message: one alert per row, and a system_health alert
    (the rule the github-issue sink opens an issue for) when one of them is critical."""
    alerts = [Alert(r.get("rule", "unknown"), {"critical": "error"}.get(r.get("severity"), "warning"),
                    f"run {r.get('run', '?')}: {r.get('rule')}: {r.get('message', '')}"
                    + (f" (+{r['repeats']} more)" if r.get("repeats") else "")) for r in rows]
    critical = [a for a in alerts if a.severity == "error"]
    if critical:
        alerts.append(Alert("system_health", "error", f"{len(critical)} critical system alert(s)",
                            [a.message for a in critical]))
    lines = [MARKER, "## HRM-CodeGen Gate: live alerts", ""] + [f"- [{a.severity}] {a.message}" for a in alerts
                                                                 if a.rule != "system_health"]
    return Outcome(alerts, None, [], "pending", "\n".join(lines) + "\n", live=True)
