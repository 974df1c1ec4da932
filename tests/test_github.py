"""core/publish/github.py against the loopback stand-in: Link-header paging and the nightly's branch filter."""
import io
import json
import zipfile

import pytest

from core.publish.github import GitHubError, Http, fetch_latest_artifact, next_link
from tests.github_standin import TOKEN, GitHubStandIn


@pytest.fixture
def github(monkeypatch):
    g = GitHubStandIn("o/r")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", g.url)
    yield g
    g.close()


def artifact(verdict: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("stats.json", json.dumps({"verdict": verdict}))
    return buf.getvalue()


def test_paged_reads_every_page(github):
    for i in range(250):
        github.comments[github.new_id()] = {"issue": 3, "body": f"c{i}"}
    http = Http(TOKEN)
    first = http.request("GET", f"{github.url}/repos/o/r/issues/3/comments?per_page=100")
    assert len(first) == 100  # what was read before: the first page only
    every = http.paged(f"{github.url}/repos/o/r/issues/3/comments?per_page=100")
    assert [c["body"] for c in every] == [f"c{i}" for i in range(250)]
    assert next_link({"Link": '<https://x/a?page=2>; rel="next", <https://x/a?page=3>; rel="last"'}) == \
        "https://x/a?page=2"


def test_the_nightly_reads_the_default_branch_only(github, tmp_path):
    github.add_run("benchmark.yml", "a" * 40, {"gate-results": artifact("FAILURE")})  # main, push
    github.add_run("benchmark.yml", "b" * 40, {"gate-results": artifact("SUCCESS")}, head_branch="feature")
    github.add_run("benchmark.yml", "c" * 40, {"gate-results": artifact("SUCCESS")}, head_branch="main",
                   event="pull_request")  # a fork's branch named main
    newest = fetch_latest_artifact("o/r", "benchmark.yml", "gate-results", tmp_path / "any")
    assert newest["head_sha"] == "c" * 40  # without a branch: whatever ran last
    info = fetch_latest_artifact("o/r", "benchmark.yml", "gate-results", tmp_path / "main", branch="main")
    assert info["head_sha"] == "a" * 40
    assert json.loads((tmp_path / "main" / "stats.json").read_text())["verdict"] == "FAILURE"
    with pytest.raises(GitHubError, match="on branch release"):
        fetch_latest_artifact("o/r", "benchmark.yml", "gate-results", tmp_path / "r", branch="release")
