"""Gate C7 (release tag + PDF) in a temporary git repository, and the README badge."""
import json
import re
import subprocess

import pytest
from pypdf import PdfReader

from core.publish import release
from core.base.store import RunDir
from tests.test_evaluate import cli

# Efficiency is not measured in these tests (no bench.json), so these thresholds leave it out of
# SUCCESS; everything else is the repository's kpis.toml.
KPIS_WITHOUT_EFFICIENCY = """
[accuracy]
pass_at_1_min = 0.30
pass_at_10_min = 0.45
delta_pass_at_1_min_pp = 4.0
delta_pass_at_10_min_pp = 3.0
[efficiency]
latency_ms_max = 150.0
latency_ratio_max = 0.54
peak_train_ram_gb_max = 12.0
peak_train_ram_ratio_max = 0.50
throughput_tok_s_min = 1100.0
throughput_ratio_min = 2.0
params_nonembedding_max = 27_500_000
[significance]
alpha = 0.05
failure_p = 0.10
[stability]
train_failures_max = 0
[decision]
primary = ["pass_at_1", "delta_pass_at_1"]
accuracy_group = ACCURACY
efficiency_group = []
"""


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "README.md").write_text("gate test\n<!-- gate-badge:start -->\nold\n<!-- gate-badge:end -->\nmore\n")
    git(r, "add", ".")
    git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return r


@pytest.fixture
def stable_training(tmp_path):
    run = RunDir(tmp_path / "train")
    run.claim({"kind": "train"}, {"kind": "train"})
    run.update_manifest(status="done")
    return run.path


def kpis_file(tmp_path, accuracy_group):
    path = tmp_path / "kpis.toml"
    path.write_text(KPIS_WITHOUT_EFFICIENCY.replace("ACCURACY", json.dumps(accuracy_group)))
    return path


def gate_release(candidate, baseline, repo, kpis, train, *extra):
    return cli("gate", "--candidate", candidate, "--baseline", baseline, "--kpis", kpis, "--train-runs", train,
               "--out", repo.parent / "stats.json", "--release", "--repo-dir", repo, *extra, check=False)


def tags(repo):
    return git(repo, "tag", "--list").split()


def test_success_tags_and_writes_the_pdf(oracle_and_empty, repo, stable_training, tmp_path):
    oracle, empty = oracle_and_empty
    kpis = kpis_file(tmp_path, ["pass_at_1", "delta_pass_at_1"])
    proc = gate_release(oracle, empty, repo, kpis, stable_training)
    assert proc.returncode == 0 and "verdict: SUCCESS" in proc.stdout, proc.stdout + proc.stderr
    assert tags(repo) == ["v0.3.0"]
    assert git(repo, "rev-parse", "v0.3.0^{commit}") == git(repo, "rev-parse", "HEAD")
    assert "SUCCESS" in git(repo, "tag", "-n1", "v0.3.0")
    pdf = repo / "results" / "summary.pdf"
    assert "Verdict: SUCCESS" in "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert json.loads((repo / "results" / "stats.json").read_text())["verdict"] == "SUCCESS"
    assert "100.0%" in (repo / "results" / "badge.svg").read_text()
    readme = (repo / "README.md").read_text()
    assert "[![MBPP pass@1](results/badge.svg)](results/stats.json) verdict **SUCCESS**" in readme
    assert "old" not in readme and readme.endswith("<!-- gate-badge:end -->\nmore\n") and "W&B dashboard" in readme
    # a rerun on the same commit keeps the tag; a configured tag name is honoured
    again = gate_release(oracle, empty, repo, kpis, stable_training)
    assert again.returncode == 0 and "already there" in again.stdout
    other = gate_release(oracle, empty, repo, kpis, stable_training, "--tag", "v0.4.0-rc1")
    assert other.returncode == 0 and sorted(tags(repo)) == ["v0.3.0", "v0.4.0-rc1"]


def test_existing_tag_on_another_commit_is_one_clear_error(oracle_and_empty, repo, stable_training, tmp_path):
    oracle, empty = oracle_and_empty
    git(repo, "tag", "v0.3.0")
    (repo / "more.txt").write_text("x")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "second")
    proc = gate_release(oracle, empty, repo, kpis_file(tmp_path, ["pass_at_1", "delta_pass_at_1"]), stable_training)
    assert proc.returncode == 1 and proc.stderr.startswith("error: tag v0.3.0 already exists on commit")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_partial_does_not_tag(oracle_and_empty, repo, stable_training, tmp_path):
    oracle, empty = oracle_and_empty
    # pass@10 cannot be tested with one sample per task: the accuracy group is not met, efficiency (empty) is
    proc = gate_release(oracle, empty, repo, kpis_file(tmp_path, ["pass_at_1", "pass_at_10", "delta_pass_at_1"]),
                        stable_training)
    assert proc.returncode == 3 and "verdict: PARTIAL" in proc.stdout, proc.stdout
    assert tags(repo) == [] and "not tagged: the verdict is PARTIAL" in proc.stdout
    assert (repo / "results" / "summary.pdf").stat().st_size > 1000


def test_failure_does_not_tag(oracle_and_empty, repo, stable_training, tmp_path):
    oracle, empty = oracle_and_empty
    proc = gate_release(empty, oracle, repo, kpis_file(tmp_path, ["pass_at_1", "delta_pass_at_1"]), stable_training)
    assert proc.returncode == 4 and "verdict: FAILURE" in proc.stdout
    assert tags(repo) == [] and "not tagged: the verdict is FAILURE" in proc.stdout
    badge = (repo / "results" / "badge.svg").read_text()
    assert "0.0%" in badge and release.RED in badge


def _badge_value_and_colour(svg):
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    fills = re.findall(r'<rect x="\d+" width="\d+" height="20" fill="([^"]+)"', svg)
    return texts[1], fills[0]


@pytest.mark.parametrize("pass_at_1, shown, colour", [
    (0.0, "0.0%", release.RED), (0.2994, "29.9%", release.RED), (0.30, "30.0%", release.GREEN),
    (0.512, "51.2%", release.GREEN), (None, "not measured", release.GREY)])
def test_badge_follows_pass_at_1(pass_at_1, shown, colour, tmp_path):
    svg = release.write_badge(tmp_path / "badge.svg", pass_at_1).read_text()
    assert _badge_value_and_colour(svg) == (shown, colour)
    assert svg.startswith("<svg") and "MBPP pass@1" in svg


def test_gate_publish_regenerates_the_badge_from_the_measured_runs(oracle_and_empty, tmp_path):
    oracle, empty = oracle_and_empty
    for candidate, baseline, expected in ((oracle, empty, ("100.0%", release.GREEN)),
                                          (empty, oracle, ("0.0%", release.RED))):
        cli("gate", "--candidate", candidate, "--baseline", baseline, "--out", tmp_path / "s.json",
            "--publish", tmp_path / "results", check=False)
        assert _badge_value_and_colour((tmp_path / "results" / "badge.svg").read_text()) == expected
