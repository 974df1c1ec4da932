"""The container's contract, checked without a Docker daemon: the Dockerfile's settings, and its
entrypoint run here for real (app + monitor side-car), probed with the image's own HEALTHCHECK."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.conftest import REPO
from tests.test_browser import free_port
from tests.test_prom import wait_http

DOCKERFILE = (REPO / "Dockerfile").read_text()


def healthcheck_command() -> list[str]:
    m = re.search(r"HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])", DOCKERFILE)
    return json.loads(m.group(1))


def test_dockerfile_is_cpu_by_default_app_unprivileged_with_a_gpu_variant():
    """The image starts as root for the sandbox broker only; the entrypoint runs the app and the
    monitor as the `gate` user (uid 10001) and points their jobs at the broker's socket."""
    assert re.search(r"^ARG VARIANT=cpu$", DOCKERFILE, re.M) and "TORCH_INDEX_GPU" in DOCKERFILE
    assert re.findall(r"^USER (\S+)$", DOCKERFILE, re.M) == []
    assert "useradd --system --uid 10001" in DOCKERFILE and "HRM_GATE_APP_USER=gate" in DOCKERFILE
    assert "HRM_GATE_SANDBOX_SOCKET=" in DOCKERFILE and "--cap-add SYS_ADMIN" in DOCKERFILE
    entrypoint = (REPO / "scripts" / "docker" / "entrypoint.sh").read_text()
    assert "core sandbox-broker" in entrypoint and "setpriv" in entrypoint
    assert "/_stcore/health" in " ".join(healthcheck_command())
    assert 'ENTRYPOINT ["scripts/docker/entrypoint.sh"]' in DOCKERFILE
    assert re.search(r"^EXPOSE .*\b9108\b", DOCKERFILE, re.M)  # the Prometheus exporter
    assert "torch==2.13.0" in (REPO / "requirements.txt").read_text()


def test_entrypoint_serves_the_app_with_the_monitor_side_car(tmp_path):
    port, prom_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "HRM_GATE_STORE": str(tmp_path / "runs"),
           "MONITOR_INTERVAL": "0.5", "PROM_PORT": str(prom_port),
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(REPO / "scripts" / "docker" / "entrypoint.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    probe = healthcheck_command()
    probe[0] = sys.executable
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(probe, env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the app never answered its health check"
            time.sleep(1)
        children = [" ".join(c.cmdline()) for c in psutil.Process(proc.pid).children(recursive=True)]
        assert any("core monitor --store" in c for c in children), children
        assert any("streamlit run app.py" in c for c in children), children
        wait_http(f"http://127.0.0.1:{prom_port}/metrics", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=10) as resp:
            assert b"hrm_gate_runs" in resp.read()  # the exporter runs and answers beside the app
        assert (tmp_path / "runs").is_dir()
        # the side-car dying takes the container down (the orchestrator restarts it)
        monitor = next(c for c in psutil.Process(proc.pid).children(recursive=True)
                       if "core monitor --store" in " ".join(c.cmdline()))
        monitor.kill()
        assert proc.wait(30) != 0
        assert subprocess.run(probe, env=env, capture_output=True).returncode != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _user_who_can_run_the_app():
    """An existing unprivileged account that can run our interpreter with streamlit (our .venv may
    live where only root can reach)."""
    import pwd
    import shutil
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    for name in ("gate", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        ok = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                             "python", "-c", "import streamlit, subprocess, sys; subprocess.run([sys.executable, '-c', '0'], check=True)"],
                            env={"PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin"}, capture_output=True)
        if ok.returncode == 0:
            return name
    return None


APP_USER = _user_who_can_run_the_app()


@pytest.mark.skipif(APP_USER is None, reason="needs root and an unprivileged account that can run our interpreter")
def test_entrypoint_as_root_runs_the_broker_as_root_and_the_app_unprivileged(tmp_path):
    port = free_port()
    os.chmod(tmp_path, 0o755)
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "HRM_GATE_STORE": str(tmp_path / "runs"),
           "HRM_GATE_APP_USER": APP_USER, "HRM_GATE_SANDBOX_SOCKET": str(tmp_path / "run" / "sandbox.sock"),
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(REPO / "scripts" / "docker" / "entrypoint.sh")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            kids = {" ".join(c.cmdline()): c.uids().real for c in psutil.Process(proc.pid).children(recursive=True)}
            if len([k for k in kids if "python" in k]) >= 3:
                break
            assert proc.poll() is None and time.monotonic() < deadline, kids
            time.sleep(0.2)
        broker = [uid for cmd, uid in kids.items() if "sandbox-broker" in cmd]
        app = [uid for cmd, uid in kids.items() if "streamlit run" in cmd or "core monitor" in cmd]
        assert broker == [0] and app and all(uid != 0 for uid in app), kids
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_entrypoint_stops_both_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "HRM_GATE_STORE": str(tmp_path / "runs"),
           "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(REPO / "scripts" / "docker" / "entrypoint.sh")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(psutil.Process(proc.pid).children(recursive=True)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        children = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [c.cmdline() for c in alive]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
