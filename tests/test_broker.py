"""The container's set-up: the app and its jobs run as uid 10001, and samples run in the sandbox
that a root broker starts for them. Reproduced here with real processes: a root broker, a client
running as uid 10001, and (for the finding) uid 10001 where user namespaces are refused."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APP_UID = 10001
SECRET = "sk-test-" + "5ecret" * 4


def _app_user_interpreter():
    """An interpreter uid 10001 can run, and start again as a worker (ours may live under /root)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    probe = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'pass'], check=True); import core.sandbox.pool"
    system = "/usr/local/bin:/usr/bin:/bin"
    for python in dict.fromkeys([sys.executable, shutil.which("python3.11", path=system), shutil.which("python3", path=system)]):
        if python and subprocess.run(["setpriv", f"--reuid={APP_UID}", f"--regid={APP_UID}", "--clear-groups",
                                      python, "-c", probe], cwd=REPO, capture_output=True,
                                     env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).returncode == 0:
            return python
    return None


PYTHON = _app_user_interpreter()
pytestmark = pytest.mark.skipif(PYTHON is None,
                                reason="needs root, setpriv and an interpreter uid 10001 can run (as in CI)")

# Each program passes only when the attack it tries fails.
ATTACKS = {
    "read-secrets": f"""
import os, subprocess
seen = subprocess.run(['sh', '-c', 'cat /proc/[0-9]*/environ'], capture_output=True).stdout
assert b'{SECRET}' not in seen and '{SECRET}' not in str(os.environ)
""",
    "rewrite-results": """
import os
target = os.environ.get('VICTIM') or '{victim}'
try:
    open(target, 'w').write('{{"passed": true}}')
except OSError:
    pass
else:
    raise SystemExit('rewrote ' + target)
""",
    "kill-everything": "import os\ntry:\n    os.kill(-1, 9)\nexcept ProcessLookupError:\n    pass\n",
}

CLIENT = """
import json, os, subprocess, sys
from core.sandbox.pool import Job, Limits, SandboxPool
from core.base.errors import SandboxError
programs = json.loads(sys.argv[1])
app = subprocess.Popen(['sleep', '60'])  # stands for the app and the monitor: same uid as this job
print(json.dumps({"app_pid": app.pid}), flush=True)
try:
    # the attack on every process last, alone: where it works, this job dies with the app
    for batch in ([k for k in programs if k != "kill-everything"], ["kill-everything"]):
        with SandboxPool(2, Limits(timeout_s=3)) as pool:
            for key, o in pool.run(Job(k, programs[k]) for k in batch):
                print(json.dumps({"name": key, "status": o.status, "isolation": pool.isolation}), flush=True)
except SandboxError as exc:
    print(json.dumps({"refused": str(exc)}))
    app.kill()
    sys.exit(0)
print(json.dumps({"app_alive": app.poll() is None}), flush=True)
app.kill()
"""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and line.split()[1] in "ZX" for line in fh)
    except OSError:
        return False


def _programs(victim):
    programs = {k: v.replace("{victim}", str(victim)) for k, v in ATTACKS.items()}
    programs["forge"] = ("import sys, os\nf = sys._getframe()\nwhile f is not None:\n"
                         "    for v in list(f.f_locals.values()):\n"
                         "        if hasattr(v, 'send') and hasattr(v, 'gi_running'):\n"
                         "            try:\n                v.send(None)\n            except BaseException:\n                pass\n"
                         "    f = f.f_back\nassert solve(1) == 2\n")
    programs["honest"] = "def solve(x):\n    return x + 1\nassert solve(1) == 2\n"
    return programs


@pytest.fixture
def victim():
    """Another run's results file, owned by the app's user, as on the /data volume."""
    d = Path(tempfile.mkdtemp(prefix="hrm-gate-victim-"))
    os.chmod(d, 0o755)
    f = d / "results.jsonl"
    f.write_text('{"passed": false}\n')
    os.chown(d, APP_UID, APP_UID)
    os.chown(f, APP_UID, APP_UID)
    yield f
    shutil.rmtree(d, ignore_errors=True)


def _run_client(programs, env_extra, prefix=()):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OPENAI_API_KEY": SECRET, "HRM_GATE_ACCESS_TOKEN": SECRET,
           "PYTHONPATH": str(REPO), **env_extra}
    cmd = [*prefix, "setpriv", f"--reuid={APP_UID}", f"--regid={APP_UID}", "--clear-groups",
           PYTHON, "-c", CLIENT, json.dumps(programs)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    got = {"returncode": proc.returncode, "out": {}}
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        if "name" in row:
            got["out"][row["name"]] = row["status"]
            got["isolation"] = row["isolation"]
        else:
            got.update(row)
    assert proc.returncode in (0, -9), proc.stderr[-2000:]
    return got


def _without_user_namespaces():
    """A chroot of the whole tree: the kernel refuses user namespaces inside a chroot, as Docker's
    default seccomp profile refuses them to uid 10001 in the image."""
    root = tempfile.mkdtemp(prefix="hrm-gate-chroot-")
    return root, ["unshare", "-m", "sh", "-c", f'mount --rbind / {root} && exec chroot {root} "$@"', "sh"]


def test_finding_without_namespaces_a_sample_owns_the_deployment(victim):
    """Before: the image ran the sandbox as uid 10001 without user namespaces (limits only): a
    sample read the app's secrets, rewrote another run's results and killed the app."""
    root, prefix = _without_user_namespaces()
    try:
        got = _run_client(_programs(victim), {}, prefix)
    finally:
        os.rmdir(root)
    assert "namespace_error" in got["isolation"]
    assert got["out"]["read-secrets"] == "failed"      # it found the secret
    assert got["out"]["rewrite-results"] == "failed"   # it rewrote the file
    assert victim.read_text() != '{"passed": false}\n'
    assert got["returncode"] == -9 and "app_alive" not in got  # kill(-1) took this job down ...
    time.sleep(0.2)
    assert not _alive(got["app_pid"])                              # ... and the app beside it


def test_hosted_refuses_a_limits_only_sandbox(victim):
    root, prefix = _without_user_namespaces()
    try:
        got = _run_client(_programs(victim), {"HRM_GATE_HOSTED": "1"}, prefix)
    finally:
        os.rmdir(root)
    assert "refused" in got and "hosted" in got["refused"] and "sandbox-broker" in got["refused"]
    assert victim.read_text() == '{"passed": false}\n'


def test_through_the_root_broker_a_sample_reaches_nothing(victim):
    sock_dir = Path(tempfile.mkdtemp(prefix="hrm-gate-broker-test-"))
    os.chmod(sock_dir, 0o711)
    sock = sock_dir / "sandbox.sock"
    broker = subprocess.Popen([sys.executable, "-m", "core", "sandbox-broker", "--socket", str(sock),
                               "--group", str(APP_UID), "--max-workers", "4"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        got = _run_client(_programs(victim), {"HRM_GATE_SANDBOX_SOCKET": str(sock), "HRM_GATE_HOSTED": "1"})
        assert "namespace_error" not in got["isolation"], got
        assert "unprivileged" in got["isolation"]["user"] and "PID namespace" in got["isolation"]["processes"]
        assert all(got["out"][k] == "passed" for k in ("read-secrets", "rewrite-results", "honest"))
        assert got["out"]["forge"] == "failed" and got["app_alive"]
        assert victim.read_text() == '{"passed": false}\n'
        # the broker kills each worker when its job disconnects: no process of a broker uid is left
        time.sleep(0.3)
        from core.sandbox.broker import BROKER_UID_BASE
        from core.sandbox.pool import _processes_by_uid
        assert not [p for uid, ps in _processes_by_uid().items() if BROKER_UID_BASE <= uid < BROKER_UID_BASE + 4
                    for p in ps]
        assert broker.poll() is None
    finally:
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(sock_dir, ignore_errors=True)


def test_a_job_without_the_broker_gets_one_clear_line(tmp_path, monkeypatch):
    from core.base.errors import SandboxError
    from core.sandbox.pool import Limits, SandboxPool
    monkeypatch.setattr(os, "geteuid", lambda: APP_UID)  # a pool that is not root asks the broker
    monkeypatch.setenv("HRM_GATE_SANDBOX_SOCKET", str(tmp_path / "nobody-listens.sock"))
    with pytest.raises(SandboxError, match="cannot reach the sandbox broker .* sandbox-broker"):
        SandboxPool(1, Limits())
