"""GitHub's REST API, the little we use: JSON requests, and the newest artifact of a workflow.

The token comes from GITHUB_TOKEN and is never written to a log or an error; GITHUB_API_URL
points the client elsewhere (tests use a loopback stand-in). Artifact downloads follow GitHub's
redirect to blob storage without the token, as GitHub's own clients do. Lists are read page by
page through the Link header (`Http.paged`); a 429 (or GitHub's 403 secondary limit) with
Retry-After is waited out and retried. An answer that is not JSON (Slack's webhook answers the
plain text `ok`) comes back as text.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from core.base.errors import GateError

log = logging.getLogger(__name__)


class GitHubError(GateError):
    pass


def redact(url: str) -> str:
    """Webhook URLs carry their secret in the path: keep scheme and host only."""
    parts = url.split("/")
    return "/".join(parts[:3]) + ("/..." if len(parts) > 3 else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


RETRIES = 3
MAX_WAIT_S = 60.0


def retry_after(headers) -> float | None:
    """Seconds to wait from Retry-After (seconds form) or x-ratelimit-reset; None when neither says."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    reset = (headers.get("x-ratelimit-reset") or "").strip()
    if reset.isdigit() and headers.get("x-ratelimit-remaining") == "0":
        return max(0.0, float(reset) - time.time())
    return None


def next_link(headers) -> str | None:
    for part in (headers.get("Link") or "").split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if m:
            return m.group(1)
    return None


class Http:
    def __init__(self, token: str | None, error=GitHubError, sleep=time.sleep):
        self._token = token
        self._error = error
        self._sleep = sleep

    def _headers(self, extra=None) -> dict:
        h = {"Accept": "application/vnd.github+json", "User-Agent": "hrm-codegen-gate", **(extra or {})}
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        return h

    def _open(self, req, opener=urllib.request.urlopen):
        for attempt in range(RETRIES + 1):
            try:
                return opener(req, timeout=60)
            except urllib.error.HTTPError as exc:
                if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                    return exc
                wait = retry_after(exc.headers) if exc.code in (429, 403) else None
                if wait is not None and attempt < RETRIES and wait <= MAX_WAIT_S:
                    log.warning("%s %s: HTTP %d, retrying after %.0f s", req.get_method(), redact(req.full_url),
                                exc.code, wait)
                    self._sleep(wait)
                    continue
                detail = f" (Retry-After {wait:.0f} s)" if wait is not None else ""
                raise self._error(f"{req.get_method()} {redact(req.full_url)} failed: HTTP {exc.code}{detail}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise self._error(f"{req.get_method()} {redact(req.full_url)} failed: {getattr(exc, 'reason', exc)}") from None
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        h = self._headers(headers)
        if data is not None:
            h["Content-Type"] = "application/json"
        with self._open(urllib.request.Request(url, data=data, headers=h, method=method)) as resp:
            raw = resp.read()
            kind = resp.headers.get("Content-Type") or ""
            link = next_link(resp.headers)
        if not raw.strip():
            return None, link
        if "json" in kind or raw.lstrip()[:1] in (b"{", b"["):
            try:
                return json.loads(raw), link
            except ValueError:
                pass
        return raw.decode("utf-8", "replace"), link

    def request(self, method: str, url: str, body=None, headers=None):
        """The answer: parsed JSON, text when it is not JSON, None when empty."""
        return self._send(method, url, body, headers)[0]

    def paged(self, url: str) -> list:
        """Every item of a list endpoint, following the Link header's rel="next" pages."""
        items: list = []
        while url:
            page, url = self._send("GET", url)
            items += page or []
        return items

    def download(self, url: str) -> bytes:
        """GET with the token; a redirect is followed once, without it."""
        opener = urllib.request.build_opener(_NoRedirect).open
        with self._open(urllib.request.Request(url, headers=self._headers()), opener) as resp:
            location = resp.headers.get("Location") if getattr(resp, "code", 200) in (301, 302, 303, 307, 308) else None
            if not location:
                return resp.read()
        with self._open(urllib.request.Request(location, headers={"User-Agent": "hrm-codegen-gate"})) as resp:
            return resp.read()


def api_base() -> str:
    return (os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")


def client() -> Http:
    return Http(os.environ.get("GITHUB_TOKEN"))


def fetch_latest_artifact(repo: str, workflow: str, artifact: str, out_dir: str | Path,
                          branch: str | None = None) -> dict:
    """Unpack `artifact` of the newest completed run of `workflow` into out_dir; returns that run's facts.
    With branch, only runs on that branch that no pull request triggered (the nightly monitor reads
    the default branch's results, never a pull request's)."""
    http, base = client(), f"{api_base()}/repos/{repo}"
    query = "status=completed&per_page=20" + (f"&branch={urllib.request.quote(branch)}" if branch else "")
    runs = (http.request("GET", f"{base}/actions/workflows/{workflow}/runs?{query}") or {}).get("workflow_runs", [])
    if branch:  # a pull request from a fork can name its branch like ours: only runs of our own branch
        runs = [r for r in runs if r.get("event") not in ("pull_request", "pull_request_target")]
    for run in runs:
        listed = http.request("GET", f"{base}/actions/runs/{run['id']}/artifacts?per_page=100") or {}
        match = [a for a in listed.get("artifacts", []) if a.get("name") == artifact and not a.get("expired")]
        if match:
            break
    else:
        raise GitHubError(f"no completed run of {workflow} in {repo}"
                          + (f" on branch {branch} (pull requests excluded)" if branch else "")
                          + f" has an artifact named {artifact!r}; run the benchmark workflow first")
    blob = http.download(match[0]["archive_download_url"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _extract(blob, out)
    log.info("fetched %s from run %s (%s): %d file(s)", artifact, run["id"], run.get("head_sha", "")[:12], len(names))
    return {"run_id": run["id"], "html_url": run.get("html_url"), "head_sha": run.get("head_sha"),
            "created_at": run.get("created_at"), "files": names}


def _extract(blob: bytes, out: Path) -> list[str]:
    """Unzip plain files only; a member that would land outside out is refused."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile:
        raise GitHubError("the artifact download is not a zip archive") from None
    root = out.resolve()
    names = []
    for member in archive.infolist():
        if member.is_dir():
            continue
        target = (root / member.filename).resolve()
        if root not in target.parents:
            raise GitHubError(f"the artifact holds a path outside its folder: {member.filename!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(member))
        names.append(member.filename)
    return names
