"""GitHub's REST API, the little we use: JSON requests, and the newest artifact of a workflow.

The token comes from GITHUB_TOKEN and is never written to a log or an error; GITHUB_API_URL
points the client elsewhere (tests use a loopback stand-in). Artifact downloads follow GitHub's
redirect to blob storage without the token, as GitHub's own clients do.
"""
from __future__ import annotations

import io
import json
import logging
import os
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


class Http:
    def __init__(self, token: str | None, error=GitHubError):
        self._token = token
        self._error = error

    def _headers(self, extra=None) -> dict:
        h = {"Accept": "application/vnd.github+json", "User-Agent": "hrm-codegen-gate", **(extra or {})}
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        return h

    def _open(self, req, opener=urllib.request.urlopen):
        try:
            return opener(req, timeout=60)
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                return exc
            raise self._error(f"{req.get_method()} {redact(req.full_url)} failed: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise self._error(f"{req.get_method()} {redact(req.full_url)} failed: {getattr(exc, 'reason', exc)}") from None

    def request(self, method: str, url: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        h = self._headers(headers)
        if data is not None:
            h["Content-Type"] = "application/json"
        with self._open(urllib.request.Request(url, data=data, headers=h, method=method)) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

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
    """Unpack `artifact` of the newest completed run of `workflow` into out_dir; returns that run's facts."""
    http, base = client(), f"{api_base()}/repos/{repo}"
    query = "status=completed&per_page=20" + (f"&branch={urllib.request.quote(branch)}" if branch else "")
    runs = (http.request("GET", f"{base}/actions/workflows/{workflow}/runs?{query}") or {}).get("workflow_runs", [])
    for run in runs:
        listed = http.request("GET", f"{base}/actions/runs/{run['id']}/artifacts?per_page=100") or {}
        match = [a for a in listed.get("artifacts", []) if a.get("name") == artifact and not a.get("expired")]
        if match:
            break
    else:
        raise GitHubError(f"no completed run of {workflow} in {repo} has an artifact named {artifact!r}; "
                          "run the benchmark workflow first")
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
