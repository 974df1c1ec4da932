"""The sandbox broker: the root sandbox for processes that are not root.

In the container the entrypoint starts `python -m core sandbox-broker` as root, then runs the app
and the monitor as an unprivileged user. A pool in any of the app's jobs (core/sandbox/pool.py,
when HRM_GATE_SANDBOX_SOCKET names the broker's socket) connects once per worker; the broker
starts that worker exactly as a root pool does (its own uid, namespaces, read-only mounts) and
passes the worker's two pipe ends back over the socket (SCM_RIGHTS). The pool then speaks to the
worker directly; the broker only starts workers, and kills each one, with every process of its
uid, when its connection closes (the job finished, or died).

Who may connect is the socket's file mode: the owner and the group given with --group.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from core.base.errors import SandboxError
from core.sandbox.pool import (HELLO_MAX_BYTES, UID_BASE, UID_SPAN, WORKER_SCRIPT, kill_uids, scrubbed_env,
                               sweep_stale_sandboxes)

log = logging.getLogger(__name__)

# Broker uids sit above every pool's range: BROKER_UID_BASE + slot.
BROKER_UID_BASE = UID_BASE + UID_SPAN
MAX_TMPFS_MB = 1024


@dataclass
class _Lease:
    slot: int
    uid: int
    proc: subprocess.Popen
    peer_uid: int


@dataclass
class Broker:
    """Serves workers on a unix socket until stopped; one lease per connection."""

    path: str
    max_workers: int = 32
    group: int | None = None
    leases: dict = field(default_factory=dict)  # connection -> _Lease

    def __post_init__(self):
        if os.geteuid() != 0:
            raise SandboxError("the sandbox broker must start as root (it gives each worker its own uid); "
                               "start it from the container's entrypoint, before dropping privileges")
        self._tmp = tempfile.mkdtemp(prefix="hrm-gate-broker-")
        os.chmod(self._tmp, 0o711)

    def serve(self, stop_after: float | None = None) -> None:
        swept = sweep_stale_sandboxes()
        if swept:
            log.warning("killed %d sandbox processes left over by a broker that died", swept)
        kill_uids(lambda uid: BROKER_UID_BASE <= uid < BROKER_UID_BASE + self.max_workers)
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o660)
        if self.group is not None:
            os.chown(self.path, 0, self.group)
        listener.listen(64)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        log.info("sandbox broker listening on %s (up to %d workers)", self.path, self.max_workers)
        try:
            while True:
                for key, _ in sel.select(timeout=stop_after):
                    if key.fileobj is listener:
                        conn, _ = listener.accept()
                        if self._open(conn):
                            sel.register(conn, selectors.EVENT_READ)
                    else:
                        sel.unregister(key.fileobj)
                        self._close(key.fileobj)
                if stop_after is not None and not self.leases:
                    return
        finally:
            for conn in list(self.leases):
                self._close(conn)
            listener.close()
            os.unlink(self.path)

    def _open(self, conn: socket.socket) -> bool:
        """Reads the hello, starts a worker, hands its pipes over; False when refused."""
        conn.settimeout(10)
        try:
            peer_pid, peer_uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                        struct.calcsize("3i")))
            hello = json.loads(conn.recv(HELLO_MAX_BYTES) or b"{}")
            tmpfs_mb = int(hello.get("tmpfs_mb", 256))
            if not 1 <= tmpfs_mb <= MAX_TMPFS_MB:
                raise ValueError(f"tmpfs_mb must be between 1 and {MAX_TMPFS_MB}")
            free = sorted(set(range(self.max_workers)) - {lease.slot for lease in self.leases.values()})
            if not free:
                raise ValueError(f"all {self.max_workers} sandbox workers are in use; try again later")
            slot = free[0]
            uid = BROKER_UID_BASE + slot
            kill_uids(lambda u: u == uid)
            fallback = os.path.join(self._tmp, f"w{slot}")
            os.makedirs(fallback, exist_ok=True)
            os.chown(fallback, uid, -1)
            cfg = {"uid": uid, "owner_pid": os.getpid(), "tmpfs_mb": tmpfs_mb,
                   "fallback_tmp": fallback, "keep_visible": []}
            proc = subprocess.Popen([sys.executable, "-I", "-S", str(WORKER_SCRIPT), json.dumps(cfg)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    env=scrubbed_env(), cwd="/", close_fds=True)
            socket.send_fds(conn, [b'{"ok": true}'], [proc.stdin.fileno(), proc.stdout.fileno()])
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            try:
                conn.sendall(json.dumps({"ok": False, "error": str(exc)}).encode())
            except OSError:
                pass
            conn.close()
            return False
        proc.stdin.close()  # the pool holds the only other ends now: its close is the worker's EOF
        proc.stdout.close()
        self.leases[conn] = _Lease(slot, uid, proc, peer_uid)
        log.info("worker %d (uid %d) for pid %d (uid %d)", slot, uid, peer_pid, peer_uid)
        return True

    def _close(self, conn: socket.socket) -> None:
        lease = self.leases.pop(conn, None)
        conn.close()
        if lease is None:
            return
        lease.proc.kill()
        lease.proc.wait()
        kill_uids(lambda u: u == lease.uid)

