"""The sandbox worker: a small pre-warmed interpreter that forks one child per sample.

Started by core.sandbox.pool.SandboxPool as `python -I -S worker.py CONFIG_JSON`, never
imported by the library. Standard library only, because it must run before (and after)
privileges are dropped and the file system is locked down.

Set-up, once per worker (see `_isolate`):
  * new mount and network namespaces (as root; otherwise through a user namespace where the
    kernel allows it): no network at all, loopback included; every existing mount re-bound
    read-only; private size-limited tmpfs over /tmp, /var/tmp, /dev/shm and /run/lock;
  * privileges dropped to a per-worker unprivileged uid/gid when started as root, no new
    privileges, not dumpable (a sample cannot ptrace or read its worker's memory), child
    subreaper (orphans of a sample come back to the worker), killed when the pool dies.

Per sample (see `_run_sample`): the worker compiles the program (which runs none of it; a
program that does not compile is answered without a process); fork; the child starts a new
session, closes every descriptor but a result pipe, takes stdin from /dev/null, sends
stdout/stderr to a pipe the worker drains up to a bound, sets resource limits, runs the code in
a fresh globals dict and reports through the result pipe only when the whole program ran to its
end. The worker enforces the wall-clock timeout. Once the child's last record is in (or it
exited), the worker kills every process of the sandbox (kill(-1) in its PID namespace or as
its own uid; otherwise every descendant), answers, and then reaps them and wipes the private
temp directories while the pool reads the answer (the pool sends the next request ahead, so
the worker never waits for it); a worker that could not wipe answers its next request "unrun"
and is replaced.

Protocol on stdin/stdout: 4-byte big-endian length + JSON; requests are answered in order, one
reply each.
"""
import _signal
import _thread
import ast
import ctypes
import gc
import json
import os
import resource
import select
import signal
import stat
import struct
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
SKIP_READONLY_UNDER = ("/proc", "/sys", "/dev")
# What MBPP solutions import most (re, math, collections, heapq, itertools ...). Modules that
# grow the heap or hook fork (random reseeds in every child) would slow every sample's fork,
# so they are imported on demand instead.
PREWARM = "re math cmath collections itertools heapq bisect functools operator string array copy".split()
SAMPLE_DIR_NAME = "sample"
KEY_LEN = 32  # hex digits of the pass channel's key
CHECK_NAME = "__hrm_check__"  # what core/sandbox/checks.py rewrites top-level `assert X == LITERAL` to
MAX_REPORTS_BYTES = 8 << 20
# Programs up to this size are compiled in the worker (see _compiled); MBPP's are under 10,000.
WORKER_COMPILE_MAX_CHARS = 1 << 16
CODE_TYPE = type(compile("", "<x>", "exec"))
SIGNALS = sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP})
DEFAULT_RECURSION_LIMIT = sys.getrecursionlimit()  # the interpreter's own (1000), read before anything changes it

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option, value):
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _mount_points():
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            points.append((fields[4].replace("\\040", " "), fields[5]))
    return points


def _blocked_ancestor(path):
    """The first ancestor of path that others cannot traverse (e.g. /root, mode 0700), or None."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        ancestor = "/" + "/".join(parts[:i])
        try:
            if not os.stat(ancestor).st_mode & 0o001:
                return ancestor
        except OSError:
            return None
    return None


def _lock_down_filesystem(keep_visible, tmpfs_mb):
    """Read-only view of every mount, private tmpfs for writable places, interpreter still visible.
    Returns the kept paths that had to be bound back under a private tmpfs."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = sorted({os.path.realpath(p) for p in keep_visible if os.path.isdir(p)})
    held = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep}
    for point, opts in _mount_points():
        if any(point == s or point.startswith(s + "/") for s in SKIP_READONLY_UNDER):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt, bit in (("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC)):
            if opt in opts.split(","):
                flags |= bit
        try:
            _mount(None, point, None, flags)
        except OSError:
            pass  # a mount whose flags are locked stays as it is
    for d in PRIVATE_TMP_DIRS:
        if os.path.isdir(d):
            _mount("sandbox", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={tmpfs_mb}m,mode=1777")
    # The interpreter may live under a directory others cannot enter (/root/.pyenv). Hide that
    # directory behind an empty tmpfs and bind the interpreter's tree back into it, read-only.
    overlays = {a for a in (_blocked_ancestor(p) for p in keep) if a}
    for a in sorted(overlays):
        _mount("sandbox", a, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    rebound = []
    for p in keep:
        if any(p.startswith(d + "/") for d in list(overlays) + list(PRIVATE_TMP_DIRS)):
            os.makedirs(p, exist_ok=True)  # root-owned, 0755: samples cannot write beside it
            _mount(f"/proc/self/fd/{held[p]}", p, None, MS_BIND | MS_REC)
            _mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
            rebound.append(p)
    for fd in held.values():
        os.close(fd)
    for a in overlays:
        _mount(None, a, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return rebound


def _become_namespace_init(channel_fds):
    """Fork into the PID namespace made by unshare: the child, pid 1 there, becomes the worker;
    this process stays outside, waits for it and exits with it. Samples see and signal only the
    processes of their own namespace, and cannot kill its init (the worker) at all."""
    pid = os.fork()
    if pid:
        for fd in channel_fds:  # the pool must see the worker's end of the pipes close when it dies
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _hide_proc():
    """An empty, read-only /proc: no other process's environment, memory or file descriptors by
    path, and not this process's own memory either (/proc/self/mem)."""
    _mount("sandbox", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")
    _mount(None, "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _isolate(cfg, channel_fds):
    """Namespaces, file system and privileges; returns a report of what could be done."""
    report = {"network": "none (shared with the host)", "filesystem": "host (unchanged)",
              "processes": "host (other processes visible)"}
    uid = cfg["uid"]
    is_root = os.geteuid() == 0
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != cfg["owner_pid"]:
        os._exit(1)
    try:
        flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
        if is_root:
            _check(_libc.unshare(flags), "unshare")
        else:
            outer_uid, outer_gid = os.getuid(), os.getgid()
            _check(_libc.unshare(CLONE_NEWUSER | flags), "unshare")
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"{outer_uid} {outer_uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"{outer_gid} {outer_gid} 1")
        report["network"] = "private network namespace (no interfaces up)"
        rebound = _lock_down_filesystem([sys.base_prefix, sys.prefix, *cfg.get("keep_visible", [])],
                                         cfg["tmpfs_mb"])
        # e.g. a virtualenv under /tmp: the wipe after each sample must leave its path alone
        cfg["protected"] = sorted({os.path.join(d, p[len(d) + 1:].split("/")[0])
                                   for p in rebound for d in PRIVATE_TMP_DIRS if p.startswith(d + "/")})
        report["filesystem"] = "read-only view, private tmpfs /tmp /var/tmp /dev/shm, /proc hidden"
        _become_namespace_init(channel_fds)
        _hide_proc()
        report["processes"] = "own PID namespace (nothing else visible or reachable)"
    except OSError as exc:
        report["namespace_error"] = str(exc)
    os.chdir("/")
    for name in PREWARM:
        __import__(name)
    # The first compile() in a process builds the parser's AST types (about 3 ms); do it once
    # here so that no child pays for it.
    compile("def _warm(x):\n    return [x for _ in range(2)]\n", "<warm-up>", "exec")
    if is_root and uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        report["user"] = f"uid {uid} (unprivileged, one per worker)"
    else:
        report["user"] = f"uid {os.getuid()} (the caller's own: run as root for a separate uid)"
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the change of uid above
    return report


def _own_uid_mode(cfg):
    """True once we run as the dedicated sandbox uid that the pool gave us (never the caller's)."""
    return cfg["uid"] is not None and os.getuid() == cfg["uid"] != 0


def _kill_all_mode(cfg):
    """kill(-1) reaches only the sample's processes: inside our own PID namespace, or as our own uid."""
    return cfg.get("pid_namespace") or _own_uid_mode(cfg)


def _kill_all(cfg):
    """SIGKILL every process of the sample at once (reaped later); without a namespace or uid of
    our own, the slower walk over our descendants, which reaps as it goes."""
    if not _kill_all_mode(cfg):
        _kill_leftovers(cfg)
        return
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_leftovers(cfg):
    """Kill every process a sample left behind and reap what comes back to us."""
    if _kill_all_mode(cfg):
        try:
            os.kill(-1, signal.SIGKILL)  # every process of our namespace (or uid) except ourselves
        except ProcessLookupError:
            pass
    else:
        for _ in range(50):
            pids = _descendants(os.getpid())
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _reap(block_s=0.05)
    _reap(block_s=1.0)


def _descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _reap(block_s):
    deadline = time.monotonic() + block_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.002)


def _force_remove(path):
    """Remove a file or tree a sample left, whatever modes it set (we own it: same uid, or root),
    however deep, without following links."""
    stack = [(path, False)]
    while stack:
        p, emptied = stack.pop()
        try:
            is_dir = stat.S_ISDIR(os.lstat(p).st_mode)
        except OSError:
            continue
        try:
            if not is_dir:
                os.unlink(p)
            elif emptied:
                os.rmdir(p)
            else:
                os.chmod(p, 0o700)
                stack.append((p, True))
                stack.extend((os.path.join(p, name), False) for name in os.listdir(p))
        except OSError:
            pass


def _wipe(dirs, keep, protected=()):
    """Empty the sandbox's own scratch directories (never the host's: see main); `keep` (the
    sample directory) stays, emptied, for the next sample; `protected` paths (read-only
    binds of the interpreter) are left alone. Returns True when every directory is clean."""
    clean = True
    for d in dirs:
        if d not in _NOT_OURS_TO_CHMOD:
            try:
                os.chmod(d, 0o1777 if d in PRIVATE_TMP_DIRS else 0o700)
            except OSError:
                _NOT_OURS_TO_CHMOD.add(d)  # a tmpfs root that root mounted: not ours to change, nor the sample's
        try:
            entries = list(os.scandir(d))
        except OSError:
            clean = False
            continue
        removed = False
        for entry in entries:
            if entry.path in protected:
                continue
            if entry.path == keep and entry.is_dir(follow_symlinks=False):
                clean = _wipe([keep], None) and clean
                continue
            _force_remove(entry.path)
            removed = True
        if removed:  # every process of the sample is gone: nothing can appear between the two looks
            try:
                left = {e.path for e in os.scandir(d)} - set(protected) - {keep}
            except OSError:
                left = {d}
            clean = clean and not left
    return clean


_NOT_OURS_TO_CHMOD = set()


def _short(exc):
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not hide the failure
        text = type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _pass_channel(res_w, resume_at):
    """A generator that holds the one secret able to say "passed", and says it only when resumed
    by the harness frame that created it. Its key is made here, after the fork, and lives only
    in this generator's frame: a sample that walks the frames up to the harness finds the
    generator, but cannot read its frame (the audit hook refuses gi_frame, gc's referents and
    every other way in) and cannot resume it from anywhere but the harness. Whatever is thrown
    into it ends the process on the spot: no exception ever leaves this frame with a traceback,
    and nothing after the yield is looked up by name (a sample may rebind any name)."""
    write, close, getframe, _exit = os.write, os.close, sys._getframe, os._exit
    home = getframe(1)
    key = os.urandom(16).hex().encode()
    write(res_w, b"K" + key)
    try:
        yield
        caller = getframe(1)
        if caller is home and resume_at[0] < caller.f_lasti <= resume_at[1]:
            write(res_w, b"P" + key)
            close(res_w)
    finally:
        _exit(1)


def _encode(value, depth=0):
    """A value as plain data, by its type (never by its own methods beyond the builtin base's);
    None where it is not plain data. Honest results only need this to be right."""
    if depth > 100:
        return None
    t = type(value)
    if t.__module__ in ("fractions", "decimal") and t.__name__ in ("Fraction", "Decimal"):
        return ["q", t.__name__, str(value)]  # compared exactly, as `==` would in the sample's process
    for base, tag in ((bool, "b"), (int, "i"), (float, "f"), (complex, "c"), (str, "u"), (bytes, "y"),
                      (list, "l"), (tuple, "t"), (set, "S"), (frozenset, "F"), (dict, "d")):
        # subclasses that keep their base's equality (namedtuple, IntEnum, defaultdict; Counter and
        # OrderedDict equal a plain dict as a dict does) are told as their base
        if t is base or (isinstance(value, base) and (t.__eq__ is base.__eq__ or t.__module__ == "collections")):
            break
    else:
        return ["n"] if value is None else None
    if tag == "b":
        return [tag, bool(value)]
    if tag == "i":
        return [tag, hex(int(value))]
    if tag == "f":
        return [tag, float(value).hex()]
    if tag == "c":
        return [tag, complex(value).real.hex(), complex(value).imag.hex()]
    if tag in ("u", "y"):
        return [tag, base(value)]
    items = list(dict.items(value)) if tag == "d" else list(base.__iter__(value))
    out = []
    for item in items:
        enc = [_encode(item[0], depth + 1), _encode(item[1], depth + 1)] if tag == "d" else _encode(item, depth + 1)
        if enc is None or (tag == "d" and None in enc):
            return None
        out.append(enc)
    return [tag, out]


def _report_function(res_w):
    """__hrm_check__(index, value) in the sample's globals: writes "R" + length + (index, value as
    plain data) to the result pipe; the worker compares it with the expected value."""
    write = os.write

    def check(index, value):
        try:
            payload = repr([int(index), _encode(value)]).encode()
        except Exception:  # noqa: BLE001 - a value that cannot be told is reported as such
            payload = repr([int(index), None]).encode()
        write(res_w, b"R" + b"%08x" % len(payload) + payload)
    return check


def _decode(enc):
    tag = enc[0]
    if tag == "n":
        return None
    if tag == "q":
        import decimal
        import fractions
        return {"Fraction": fractions.Fraction, "Decimal": decimal.Decimal}[enc[1]](enc[2])
    if tag == "b":
        return bool(enc[1])
    if tag == "i":
        return int(enc[1], 16)
    if tag == "f":
        return float.fromhex(enc[1])
    if tag == "c":
        return complex(float.fromhex(enc[1]), float.fromhex(enc[2]))
    if tag in ("u", "y"):
        return enc[1]
    if tag == "d":
        return {_decode(k): _decode(v) for k, v in enc[1]}
    items = [_decode(x) for x in enc[1]]
    return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)


# Crafted code objects (code.replace, marshal) are how pure Python reads memory it should not.
_FORBIDDEN_EVENTS = frozenset((
    "sys.addaudithook", "sys.settrace", "sys.setprofile", "sys._current_frames",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.monitoring.register_callback",
    "sys.remote_exec", "code.__new__", "function.__new__", "marshal.loads", "marshal.load",
    "cpython.PyInterpreterState_New"))  # subinterpreters have no audit hook
_UNSAFE_EXTENSIONS = ("_test", "_xx", "_ctypes")  # extension modules with unaudited memory access


def _audit_guard(channel):
    """The audit hook of every sample's process: refuses what would let a sample read the pass
    channel's frame or rewrite the harness (frames of other threads, trace and profile functions,
    more audit hooks, ctypes, the objects gc holds, /proc), with a PermissionError. It holds no
    secret of its own, so its frame may be seen."""
    # Taken into the hook's closure here, before any sample code runs: rebinding the module's
    # names later (the sample can reach this module as __main__) changes nothing.
    forbidden, unsafe_ext = _FORBIDDEN_EVENTS, _UNSAFE_EXTENSIONS
    realpath, str_, bytes_, int_ = os.path.realpath, str, bytes, int

    def hook(event, args):
        if event in forbidden or event.startswith("ctypes."):
            raise PermissionError(f"the sandbox does not allow {event}")
        if event == "object.__getattr__" and args[0] is channel:
            raise PermissionError("the sandbox does not allow reading its own frames")
        if event == "object.__setattr__" and args[1] == "__code__":
            raise PermissionError("the sandbox does not allow replacing a function's code")
        if event == "import":
            name, filename = args[0], args[1]
            if (type(name) is str_ and name.rpartition(".")[2].startswith(unsafe_ext)) or \
                    (type(filename) is str_ and filename.rpartition("/")[2].startswith(unsafe_ext)):
                raise PermissionError(f"the sandbox does not allow importing {name}")
            return
        if event == "open":
            path = args[0]
            kind = type(path)
            if kind is int_:
                return
            if kind is not str_ and kind is not bytes_:
                raise PermissionError("the sandbox opens files by str or bytes path only")
            real = realpath(path)
            if real in ("/proc", b"/proc") or real.startswith("/proc/" if kind is str_ else b"/proc/"):
                raise PermissionError("the sandbox does not allow /proc")
    return hook


def _last_word(res_w, record):
    """Writes the child's last record, closes the result pipe and ends the child, whatever happens."""
    try:
        os.write(res_w, record)
        os.close(res_w)
    finally:
        os._exit(0)


def _child(program, res_w, out_w, limits, workdir, depth):
    """Runs in the forked child; never returns. `program` is the sample's code, compiled by the
    worker (see `_compiled`), or its source where the worker left compiling to the child.

    The result pipe carries, in order: "K" + the pass channel's key (written before any sample
    code runs), then either "E" + text (set-up or compile error), "F" + text (the program raised)
    or "P" + key (written by the pass channel, only after the program ran to its end); the child
    closes its end right after that last record, so the worker need not wait for the exit."""
    # Every page this code touches is copied from the worker, so everything that can be set
    # once (environment, signal dispositions, recursion limit) is set in the worker instead.
    # What follows the sample's code uses only references taken here, before it runs.
    _exit, write, getsignal, setsignal, sig_dfl = os._exit, os.write, _signal.getsignal, _signal.signal, 0
    threads_started, gc_disable, is_callable, signals = _thread._count, gc.disable, callable, SIGNALS
    sys_module, unraisable, set_attribute, short = sys, sys.unraisablehook, object.__setattr__, _short
    close = os.close
    try:
        os.setsid()
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.closerange(3, res_w)
        os.closerange(res_w + 1, 1 << 16)
        os.chdir(workdir)
        mb = 1024 * 1024
        for res, value in (
            (resource.RLIMIT_AS, limits["memory_mb"] * mb),
            (resource.RLIMIT_CPU, limits["cpu_s"]),
            (resource.RLIMIT_FSIZE, limits["file_mb"] * mb),
            (resource.RLIMIT_NPROC, limits["nproc"]),
            (resource.RLIMIT_NOFILE, limits["nofile"]),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(res, (value, value))
        channel = _pass_channel(res_w, _RESUME_AT)
        next(channel)
        resume = channel.send
        sys.addaudithook(_audit_guard(channel))
    except BaseException as exc:  # noqa: BLE001
        _last_word(res_w, b"E" + f"sandbox set-up failed: {_short(exc)}".encode())
    try:
        code = program if type(program) is CODE_TYPE else compile(program, "<sample>", "exec")
        del program
    except BaseException as exc:  # noqa: BLE001
        _last_word(res_w, b"E" + _short(exc).encode())
    # A sample gets the recursion depth `python program.py` would give it: the interpreter's default
    # limit, counted from the sample's own module frame rather than from the worker's frames below it.
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT + depth)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__, CHECK_NAME: _report_function(res_w)})
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt fail too
        try:
            write(res_w, b"F" + short(exc).encode(errors="replace"))
            close(res_w)
        finally:
            _exit(0)
    if threads_started():
        try:
            write(res_w, b"F" + b"a thread the sample started was still running after its tests")
            close(res_w)
        finally:
            _exit(0)
    # No sample code may run inside the pass channel: no collection (finalizers, gc callbacks),
    # no Python signal handler, no sample hook for errors nobody raises.
    gc_disable()
    set_attribute(sys_module, "unraisablehook", unraisable)
    for sig in signals:
        if is_callable(getsignal(sig)):
            setsignal(sig, sig_dfl)
    resume(None)
    _exit(1)


def _resume_site():
    import dis
    ins = list(dis.get_instructions(_child))
    sites = [a.offset for a, b in zip(ins, ins[1:]) if a.opname == "LOAD_FAST" and a.argval == "resume"]
    assert len(sites) == 1, sites
    call = next(i for i in ins if i.offset > sites[0] and i.opname == "CALL")
    return sites[0], call.offset


_RESUME_AT = _resume_site()


def _frames_from(frame):
    depth = 0
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


class _Child:
    """A sample's process: forked with its program, followed until its verdict is known."""

    def __init__(self, program, limits, workdir):
        self.limits = limits
        if not os.path.isdir(workdir) or os.path.islink(workdir):
            _force_remove(workdir)
            os.mkdir(workdir, 0o700)
        self.out_r, out_w = os.pipe()
        self.res_r, res_w = os.pipe()
        depth = _frames_from(sys._getframe()) + 1  # _child's frame and those below it, counted here once
        self.started = time.monotonic()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.out_r)
            os.close(self.res_r)
            _child(program, res_w, out_w, limits, workdir, depth)
        os.close(out_w)
        os.close(res_w)
        self.pidfd = os.pidfd_open(self.pid)

    def run(self, timeout):
        """Follows the child until its last record is in (the child closes its result pipe right
        after it), it exited, or the timeout passed. Returns what the verdict needs."""
        started = self.started
        limits, pid, res_r, out_r = self.limits, self.pid, self.res_r, self.out_r
        out_keep, out_total, res_buf = bytearray(), 0, bytearray()
        deadline = started + timeout
        timed_out, status = False, None
        open_fds = [out_r, res_r, self.pidfd]
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                _, status = os.waitpid(pid, 0)
                break
            ready, _, _ = select.select(open_fds, [], [], left)
            if self.pidfd in ready:
                _, status = os.waitpid(pid, 0)
                continue
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                elif fd == res_r:
                    if len(res_buf) < MAX_REPORTS_BYTES:
                        res_buf += chunk
                else:
                    out_total += len(chunk)
                    if len(out_keep) < limits["output_kb"] * 1024:
                        out_keep += chunk
            if _has_last_record(res_buf):
                # The verdict is known (a record is one write, never split): the worker kills the
                # child rather than wait for its exit. A sample writing a last record of its own
                # only fails itself; one that closes the pipe without one is followed to its exit.
                break
        duration = time.monotonic() - started
        for fd in (res_r, out_r):  # what the child wrote before it ended is already in the pipe
            os.set_blocking(fd, False)
            try:
                while len(res_buf) < MAX_REPORTS_BYTES and fd == res_r:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    res_buf += chunk
            except BlockingIOError:
                pass
        os.close(out_r)
        os.close(res_r)
        self.reaped = status is not None
        return bytes(res_buf), status, timed_out, duration, bytes(out_keep), out_total

    def reap(self):
        """Waits (a second at most) for the killed child to be gone, then collects it."""
        if not self.reaped:
            select.select([self.pidfd], [], [], 1.0)
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
                self.reaped = pid != 0
            except ChildProcessError:
                self.reaped = True
        os.close(self.pidfd)


def _has_last_record(res):
    """Whether the child's result stream ends in its last record: "F" or "E", or "P" with the key
    it began with, after the key and the reports."""
    key, said = (res[1:KEY_LEN + 1], res[KEY_LEN + 1:]) if res[:1] == b"K" else (None, res)
    _, said = _split_reports(said)
    return said[:1] in (b"F", b"E") or (key is not None and len(key) == KEY_LEN and said == b"P" + key)


def _compiled(program):
    """The sample's code object, compiled here in the worker where that is cheap (a forked child
    would copy every page the compiler touches): compiling runs none of the sample's code. Returns
    (code, None), (None, why it does not compile), or (program, None) for a program too large to
    compile here, which its child then compiles under its own limits."""
    if len(program) > WORKER_COMPILE_MAX_CHARS:
        return program, None
    try:
        return compile(program, "<sample>", "exec"), None
    except BaseException as exc:  # noqa: BLE001 - the child would report any compile error the same way
        return None, _short(exc)


def _run_sample(req, cfg, scratch, workdir):
    """One sample: its verdict is sent as soon as it is known and its processes are killed; the
    reaping and wiping that follow overlap with the pool's handling of the reply, and end before
    the next sample starts. Returns False when something the sample left could not be removed
    (this worker must not serve another)."""
    timeout = float(req["timeout"])
    program, compile_error = _compiled(req["program"])
    if compile_error is not None:
        _send(cfg["reply_fd"], _verdict(b"E" + compile_error.encode(errors="replace"), None, False, timeout, 0.0,
                                        b"", 0, req.get("checks") or []))
        return True
    child = _Child(program, req["limits"], workdir)
    del program
    res, status, timed_out, duration, output, out_total = child.run(timeout)
    _kill_all(cfg)  # the child and everything it started: nothing of the sample runs past its verdict
    _send(cfg["reply_fd"], _verdict(res, status, timed_out, timeout, duration, output, out_total,
                                    req.get("checks") or []))
    child.reap()  # while the pool reads the verdict; nothing of the sample outlives this
    _kill_leftovers(cfg)
    return _wipe(scratch, workdir, cfg.get("protected", ()))


def _split_reports(said):
    """The "R" frames at the head of what the child said, and the rest."""
    reports = []
    while said[:1] == b"R":
        try:
            n = int(said[1:9], 16)
        except ValueError:
            break
        reports.append(said[9:9 + n])
        said = said[9 + n:]
    return reports, said


def _checks_failed(reports, checks):
    """Why the reported values do not match the expected ones (which the sample never saw), or None."""
    try:
        expected = [ast.literal_eval(c) for c in checks]
    except (ValueError, SyntaxError) as exc:
        return f"the sandbox could not read an expected value ({exc})"
    seen = set()
    for raw in reports:
        try:
            index, enc = ast.literal_eval(raw.decode())
            index = int(index)
            if not 0 <= index < len(expected):
                return "a test result with no such test"
            if enc is None:
                return f"test {index + 1}: the result is not plain data (numbers, strings, lists, tuples, sets, dicts)"
            value = _decode(enc)
        except Exception:  # noqa: BLE001 - anything malformed fails the sample
            return "a malformed test result"
        if not value == expected[index]:
            shown = repr(value)
            return f"test {index + 1} failed: got {shown[:150]}{'...' if len(shown) > 150 else ''}, expected {checks[index][:150]}"
        seen.add(index)
    if len(seen) < len(expected):
        return f"test {min(set(range(len(expected))) - seen) + 1} never reported its result"
    return None


def _verdict(res, status, timed_out, timeout, duration, output, out_total, checks=()):
    reply = {"duration_s": round(duration, 4), "output_bytes": out_total}
    key, said = (res[1:KEY_LEN + 1], res[KEY_LEN + 1:]) if res[:1] == b"K" else (None, res)
    reports, said = _split_reports(said)
    ran_to_end = key and len(key) == KEY_LEN and b"P" + key in said
    mismatch = _checks_failed(reports, checks) if ran_to_end or reports else None
    if timed_out:
        reply.update(status="timeout", error=f"timed out after {timeout:g} s")
    elif ran_to_end and mismatch is None:
        reply.update(status="passed", error="")
    elif mismatch and not said.startswith((b"E", b"F")):
        reply.update(status="failed", error=mismatch)
    elif said.startswith(b"F"):
        reply.update(status="failed", error=said[1:].decode(errors="replace"))
    elif said.startswith(b"E"):
        reply.update(status="error", error=said[1:].decode(errors="replace"))
    elif status is None:  # not reached: the worker waits for the exit unless a last record is in
        reply.update(status="failed", error="the sample ended without a result")
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        reply.update(status="failed", error=f"killed by {name} before the tests finished")
    else:
        code = os.WEXITSTATUS(status)
        reply.update(status="failed", error=f"exited with status {code} before the tests finished")
    reply["passed"] = reply["status"] == "passed"
    if reply["status"] == "failed" and not res and output:
        tail = output[-200:].decode(errors="replace").strip()
        if tail:
            reply["error"] += f" (last output: {tail})"
    return reply


def _prepare_for_samples(workdir_parent):
    """What every sample's process inherits: stdin at /dev/null, a clean environment, default
    signal dispositions. (The recursion limit is set in the child, where its depth is known.)"""
    workdir = os.path.join(workdir_parent, SAMPLE_DIR_NAME)
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    # Samples may not unmarshal code (the audit hook refuses it), so what they import is compiled
    # from its source: no cached bytecode is looked for, and none is written.
    sys.pycache_prefix = "/nonexistent/hrm-gate-no-bytecode"
    sys.dont_write_bytecode = True
    # Programs compile in the worker (see _compiled): their compile-time warnings ("is" with a
    # literal...) would go to the worker's stderr, once per sample; they never decided a test.
    import warnings
    warnings.filterwarnings("ignore", module="<sample>")


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _send(fd, obj):
    data = json.dumps(obj).encode()
    os.write(fd, struct.pack(">I", len(data)) + data)


def main():
    cfg = json.loads(sys.argv[1])
    # Our channel to the pool lives on fds that no sample ever sees.
    req_fd, rep_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    report = _isolate(cfg, (req_fd, rep_fd))
    cfg["pid_namespace"] = os.getpid() == 1
    if "namespace_error" in report:  # /tmp is the host's: work in a directory of our own only
        workdir_parent, scratch = cfg["fallback_tmp"], [cfg["fallback_tmp"]]
    else:
        workdir_parent, scratch = "/tmp", list(PRIVATE_TMP_DIRS)
    os.makedirs(workdir_parent, exist_ok=True)
    if _own_uid_mode(cfg):
        _kill_leftovers(cfg)
    _prepare_for_samples(workdir_parent)
    # A collection in a child would touch every object header and copy the whole heap page by
    # page; frozen objects are never collected, so forks stay cheap.
    gc.collect()
    gc.freeze()
    # Every fork copies the page tables of all our memory: hand back the heap's free pages first.
    trim = getattr(_libc, "malloc_trim", None)  # glibc's; absent elsewhere
    if trim is not None:
        trim(0)
    _send(rep_fd, {"ready": True, "isolation": report, "pid": os.getpid()})
    cfg["reply_fd"] = rep_fd
    workdir = os.path.join(workdir_parent, SAMPLE_DIR_NAME)
    clean = True
    while True:
        header = _read_exact(req_fd, 4)
        if header is None:
            break
        req = json.loads(_read_exact(req_fd, struct.unpack(">I", header)[0]))
        if not clean:  # the last sample left something behind: this one goes to a fresh worker
            _send(rep_fd, {"unrun": True, "restart": True})
            break
        clean = _run_sample(req, cfg, scratch, workdir)
    _kill_leftovers(cfg)
    _wipe(scratch, None, cfg.get("protected", ()))


if __name__ == "__main__":
    main()
    os._exit(0)  # everything is cleaned up: no interpreter teardown for the pool to wait on
