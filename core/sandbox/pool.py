"""Sandboxed, parallel execution of untrusted programs.

`SandboxPool` keeps a few pre-warmed worker interpreters (core/sandbox/worker.py, which holds
the isolation itself and says what it does). Each worker forks one child per sample, so a
sample costs a fork, not an interpreter start. The pool owns the workers from outside: it
gives each its own unprivileged uid when we are root, restarts a worker that a sample killed
or stopped (that sample fails; the run goes on), enforces a second, outer deadline, and at
the end kills every process left with a sandbox uid. Generated code never runs in this
process.

Outcomes are a function of the program alone (no worker, order or timing in them), so a run
gives the same results whatever the worker count.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import select
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Hashable, Iterable, Iterator

from core.base.errors import SandboxError
from core.sandbox.checks import split_checks

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
# Sandbox uids: UID_BASE + owner_pid * MAX_WORKERS + slot, far above any real account.
UID_BASE = 1_000_000_000
MAX_WORKERS = 16
UID_SPAN = (1 << 22) * MAX_WORKERS
OUTER_GRACE_S = 5.0
TMP_PREFIX = "hrm-gate-sandbox-"  # + the owning process's pid + "-": see _remove_stale_tmp_dirs
# Jobs sent to a worker ahead of its answers, so that it never waits for us between samples;
# larger requests wait until the worker is idle (a full pipe would stall the pool).
QUEUE_DEPTH = 2
QUEUE_AHEAD_MAX_BYTES = 32 * 1024
# Set where a root sandbox broker serves this unprivileged process (core/sandbox/broker.py).
SOCKET_ENV = "HRM_GATE_SANDBOX_SOCKET"
HOSTED_ENV = "HRM_GATE_HOSTED"
HELLO_MAX_BYTES = 1024
# What a sample's program sees: part of a run's protocol, recorded in its manifest and compared.
SAMPLE_ENVIRONMENT = {"python": ".".join(map(str, sys.version_info[:3])), "packages": "standard library only",
                      "recursion_limit": "the interpreter's default, from the sample's own module frame"}
STATUSES = ("passed", "failed", "timeout", "error")  # and "missing", for samples a file lacks


@dataclass(frozen=True)
class Limits:
    """Per-sample limits. cpu_s follows the timeout; memory is address space."""

    timeout_s: float = 10.0
    memory_mb: int = 2048
    file_mb: int = 64
    nproc: int = 64
    nofile: int = 256
    output_kb: int = 64
    tmpfs_mb: int = 256

    def for_worker(self) -> dict:
        d = asdict(self)
        d["cpu_s"] = int(self.timeout_s) + 1
        return d

    @cached_property
    def request_tail(self) -> bytes:
        """The part of every request to a worker that follows the program (the same for every sample)."""
        return json.dumps({"timeout": self.timeout_s, "limits": self.for_worker()}).encode()[1:]


@dataclass(frozen=True)
class Job:
    key: Hashable
    program: str
    # The expected values of the program's rewritten asserts (core/sandbox/checks.py), where the caller
    # rewrote them already; None: the pool rewrites the program's top-level `assert X == LITERAL` itself.
    checks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # passed | failed | timeout | error
    error: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def scrubbed_env() -> dict:
    # Nothing of the caller's environment (tokens, keys) reaches a sample.
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1"}


def _processes_by_uid() -> dict[int, list[int]]:
    """Live processes by real uid (zombies are dead already and left out)."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if "Uid" in fields and not fields.get("State", "").strip().startswith(("Z", "X")):
            out.setdefault(int(fields["Uid"].split()[0]), []).append(int(entry))
    return out


def kill_uids(wanted) -> int:
    """SIGKILL every process whose real uid satisfies wanted(uid); returns how many were found."""
    found = 0
    for _ in range(20):
        victims = [p for uid, pids in _processes_by_uid().items() if wanted(uid) for p in pids]
        if not victims:
            break
        found += len(victims)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    return found


def sweep_stale_sandboxes() -> int:
    """Kill sandbox processes whose pool owner is gone (a run killed with SIGKILL, say)."""
    if os.geteuid() != 0:
        return 0

    def stale(uid: int) -> bool:
        if not UID_BASE <= uid < UID_BASE + UID_SPAN:
            return False
        owner = (uid - UID_BASE) // MAX_WORKERS
        return owner != os.getpid() and not os.path.exists(f"/proc/{owner}")

    return kill_uids(stale)


def _remove_stale_tmp_dirs() -> int:
    """Remove the scratch directories of pools whose process is gone (a run killed with SIGKILL
    never cleans up): their names carry the owner's pid. Returns how many were removed."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        owner = path.name[len(TMP_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(path, ignore_errors=True)
            removed += not path.exists()
    return removed


class _BrokeredProcess:
    """A worker that the root broker started for us: its pipes, and the connection whose close
    makes the broker kill it (and every process of its uid)."""

    def __init__(self, path: str, tmpfs_mb: int):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            conn.sendall(json.dumps({"tmpfs_mb": tmpfs_mb}).encode())
            msg, fds, _, _ = socket.recv_fds(conn, HELLO_MAX_BYTES, 2)
        except OSError as exc:
            conn.close()
            raise SandboxError(f"cannot reach the sandbox broker at {path} ({exc.strerror or exc}): start it as "
                               f"root with `python -m core sandbox-broker`, or unset {SOCKET_ENV}") from exc
        reply = json.loads(msg or b'{"error": "it closed the connection"}')
        if not reply.get("ok") or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            conn.close()
            raise SandboxError(f"the sandbox broker refused a worker: {reply.get('error', 'no reason given')}")
        self.conn = conn
        self.stdin = os.fdopen(fds[0], "wb", buffering=0)
        self.stdout = os.fdopen(fds[1], "rb", buffering=0)

    def kill(self) -> None:
        for f in (self.stdin, self.stdout, self.conn):
            f.close()

    def wait(self, timeout=None) -> None:
        return None


class _Worker:
    def __init__(self, slot: int, limits: Limits, fallback_tmp: str, keep_visible: list[str]):
        self.slot = slot
        broker = os.environ.get(SOCKET_ENV) if os.geteuid() != 0 else None
        self.uid = UID_BASE + os.getpid() * MAX_WORKERS + slot if os.geteuid() == 0 else None
        self._stderr = tempfile.TemporaryFile()
        if broker:
            self.proc = _BrokeredProcess(broker, limits.tmpfs_mb)
        else:
            cfg = {"uid": self.uid, "owner_pid": os.getpid(), "tmpfs_mb": limits.tmpfs_mb,
                   "fallback_tmp": os.path.join(fallback_tmp, f"w{slot}"), "keep_visible": keep_visible}
            self.proc = subprocess.Popen(
                # -I -S: no user site, no site-packages: samples see the standard library only, whatever
                # the evaluator has installed (torch, pandas ... in our .venv)
                [sys.executable, "-I", "-S", str(WORKER_SCRIPT), json.dumps(cfg)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                env=scrubbed_env(), cwd="/", close_fds=True,
            )
        self.buf = bytearray()
        self.queue: collections.deque[Job] = collections.deque()  # sent, not answered yet; the first is running
        self.deadline = 0.0  # of the running job

    def wait_ready(self) -> "_Worker":
        """Waits for the worker's "ready" (its isolation report); workers started together boot in parallel."""
        ready = self._read_frame_blocking(timeout=60)
        if not ready or not ready.get("ready"):
            self._stderr.seek(0)
            tail = self._stderr.read()[-300:].decode(errors="replace").strip().splitlines()
            self.kill()
            raise SandboxError(f"sandbox worker failed to start ({tail[-1] if tail else 'no output'}); "
                               "check that Python can run core/sandbox/worker.py")
        self.isolation = ready["isolation"]
        return self

    def _read_frame_blocking(self, timeout: float):
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            frame = self.take_frame()
            if frame is not None:
                return frame
            if time.monotonic() > end:
                return None
            sel = selectors.DefaultSelector()
            sel.register(fd, selectors.EVENT_READ)
            if sel.select(max(0.0, end - time.monotonic())):
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
            sel.close()

    def take_frame(self):
        if len(self.buf) < 4:
            return None
        n = struct.unpack(">I", self.buf[:4])[0]
        if len(self.buf) < 4 + n:
            return None
        data = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        return json.loads(data)

    @staticmethod
    def request(job: Job, limits: Limits) -> bytes:
        program, checks = split_checks(job.program) if job.checks is None else (job.program, list(job.checks))
        payload = (b'{"program": ' + json.dumps(program).encode() + b', "checks": ' + json.dumps(checks).encode()
                   + b", " + limits.request_tail)
        return struct.pack(">I", len(payload)) + payload

    def submit(self, job: Job, frame: bytes, limits: Limits) -> None:
        """Queues the job on this worker; the worker reads it when it finishes the ones before it."""
        if not self.queue:
            self.deadline = time.monotonic() + limits.timeout_s + OUTER_GRACE_S
        self.queue.append(job)
        fd = self.proc.stdin.fileno()
        try:
            while frame:
                frame = frame[os.write(fd, frame):]
        except BrokenPipeError:
            pass  # the worker is gone: its end of the pipe says so, and its jobs go to the next one

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        if self.uid is not None:
            kill_uids(lambda uid: uid == self.uid)
        self._stderr.close()

    def end_input(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class SandboxPool:
    """Runs programs in the sandbox, `workers` at a time. Use as a context manager.

    keep_visible: directories samples may read (read-only) even where they lie under a
    directory the sandbox replaces, such as /tmp; the interpreter's own are always kept."""

    def __init__(self, workers: int = 2, limits: Limits = Limits(), keep_visible=(), wait: bool = True):
        """wait=False: the workers boot while the caller does other work; the first `run` or look at
        `isolation` waits for them (and raises what the boot raised)."""
        if not 1 <= workers <= MAX_WORKERS:
            raise SandboxError(f"--workers must be between 1 and {MAX_WORKERS}, got {workers}")
        self.limits = limits
        self.keep_visible = [str(Path(p).resolve()) for p in keep_visible]
        swept = sweep_stale_sandboxes()
        if swept:
            log.warning("killed %d sandbox processes left over by a run that died", swept)
        _remove_stale_tmp_dirs()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        os.chmod(self._tmp.name, 0o711)
        self._workers: list[_Worker] = []
        self._isolation: dict | None = None
        self._closed = False
        try:
            for slot in range(workers):
                self._workers.append(self._start(slot))
        except BaseException:
            self.close()
            raise
        if wait:
            self._wait_ready()

    def _wait_ready(self) -> None:
        if self._isolation is not None:
            return
        try:
            for w in self._workers:
                w.wait_ready()
        except BaseException:
            self.close()
            raise
        isolation = self._workers[0].isolation
        if "namespace_error" in isolation and os.environ.get(HOSTED_ENV) == "1":
            self.close()
            raise SandboxError(f"hosted, and the sandbox has no namespaces here ({isolation['namespace_error']}): "
                               "samples could read the app's secrets and kill it; start `python -m core sandbox-broker` as "
                               f"root (the image's entrypoint does) and set {SOCKET_ENV}, or run as root")
        if "namespace_error" in isolation:
            log.warning("sandbox runs without namespaces (%s): samples can reach the network "
                        "and the host's /tmp; run as root for full isolation", isolation["namespace_error"])
        self._isolation = isolation

    @property
    def isolation(self) -> dict:
        """What the workers could set up (namespaces, file system, uid), from the first worker's report."""
        self._wait_ready()
        return self._isolation

    def _start(self, slot: int) -> _Worker:
        fallback = os.path.join(self._tmp.name, f"w{slot}")
        os.makedirs(fallback, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(fallback, UID_BASE + os.getpid() * MAX_WORKERS + slot, -1)
        return _Worker(slot, self.limits, self._tmp.name, self.keep_visible)

    def _spawn(self, slot: int) -> _Worker:
        return self._start(slot).wait_ready()

    def run(self, jobs: Iterable[Job]) -> Iterator[tuple[Hashable, Outcome]]:
        """Yields (job.key, Outcome) as samples finish, in completion order."""
        self._wait_ready()
        self._replace_the_dead()
        pending = iter(jobs)
        retry: collections.deque[Job] = collections.deque()  # taken back from a replaced worker: first out
        held: tuple[Job, bytes] | None = None  # too large to queue behind another job: for an idle worker
        exhausted = False
        sel = selectors.DefaultSelector()
        for i, w in enumerate(self._workers):
            sel.register(w.proc.stdout.fileno(), selectors.EVENT_READ, i)

        def replace(slot: int) -> list[Job]:
            """A fresh worker in the slot; returns the jobs the old one had not answered."""
            old = self._workers[slot]
            sel.unregister(old.proc.stdout.fileno())
            left = list(old.queue)
            old.kill()
            new = self._workers[slot] = self._spawn(slot)
            sel.register(new.proc.stdout.fileno(), selectors.EVENT_READ, slot)
            return left

        try:
            while True:
                # every idle worker gets a job before any worker gets a second one
                for depth in range(1, QUEUE_DEPTH + 1):
                    for w in self._workers:
                        if len(w.queue) >= depth:
                            continue
                        if held is not None:
                            if w.queue:
                                continue
                            (job, frame), held = held, None
                        else:
                            job = retry.popleft() if retry else None if exhausted else next(pending, None)
                            if job is None:
                                exhausted = True
                                break
                            frame = w.request(job, self.limits)
                            if w.queue and len(frame) > QUEUE_AHEAD_MAX_BYTES:
                                held = (job, frame)
                                continue
                        w.submit(job, frame, self.limits)
                busy = [w for w in self._workers if w.queue]
                if not busy:
                    return
                wait = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                for key, _ in sel.select(timeout=wait):
                    slot = key.data
                    w = self._workers[slot]
                    if w.proc.stdout.fileno() != key.fd:
                        continue  # replaced while an earlier event of this round was handled
                    chunk = os.read(key.fd, 65536)
                    if not chunk:  # the worker died: its running sample fails, the ones behind it go on
                        left = replace(slot)
                        if left:
                            retry.extendleft(reversed(left[1:]))
                            yield left[0].key, Outcome("failed", "the sample killed its sandbox worker",
                                                       self._ran_for(w))
                        continue
                    w.buf += chunk
                    while w.queue and (reply := w.take_frame()) is not None:
                        job = w.queue.popleft()
                        w.deadline = time.monotonic() + self.limits.timeout_s + OUTER_GRACE_S
                        if reply.get("unrun"):  # it could not clean up after its last sample: a fresh one runs this
                            retry.extendleft(reversed([job, *replace(slot)]))
                            break
                        yield job.key, Outcome(reply["status"], reply["error"], reply["duration_s"])
                now = time.monotonic()
                for slot, w in enumerate(self._workers):
                    if w.queue and now > w.deadline:
                        job, *left = replace(slot)
                        retry.extendleft(reversed(left))
                        yield job.key, Outcome("timeout", "the sandbox worker stopped answering (the sample "
                                               "stopped or starved it) and was killed", self._ran_for(w))
        finally:
            sel.close()

    def _replace_the_dead(self) -> None:
        """A worker that died between runs (killed from outside, say) is replaced before it is given
        a job, so that no sample is blamed for it."""
        by_fd = {w.proc.stdout.fileno(): slot for slot, w in enumerate(self._workers)}
        ready, _, _ = select.select(list(by_fd), [], [], 0)
        for fd, slot in by_fd.items():
            w = self._workers[slot]
            closed = False
            if fd in ready:
                chunk = os.read(fd, 65536)
                closed = not chunk
                w.buf += chunk  # data is not expected from an idle worker: kept for the frame reader all the same
            # its end of the pipe closed, or (a worker we started) its outer process gone: the worker
            # inside follows that one (parent-death signal)
            if closed or getattr(w.proc, "poll", lambda: None)() is not None:
                w.kill()
                self._workers[slot] = self._spawn(slot)

    def _ran_for(self, dead: _Worker) -> float:
        return round(self.limits.timeout_s + OUTER_GRACE_S - max(0.0, dead.deadline - time.monotonic()), 4)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for w in self._workers:  # all of them at once: each cleans up after its last sample in parallel
            w.end_input()
        for w in self._workers:
            w.close()
        self._workers = []
        if os.geteuid() == 0:
            base = UID_BASE + os.getpid() * MAX_WORKERS
            kill_uids(lambda uid: base <= uid < base + MAX_WORKERS)
        self._tmp.cleanup()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
