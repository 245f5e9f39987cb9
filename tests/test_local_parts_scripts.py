"""The set-up scripts: idempotent, recover from stale pid files and crashes, and fail with a
message naming the cause (port, package, module@version). Each test uses its own state
folder and ports, so the shared local parts are untouched."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
UP, DOWN, BUILD = ROOT / "hack/cluster-up.sh", ROOT / "hack/cluster-down.sh", ROOT / "hack/build-binaries.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def state(tmp_path):
    env = {**os.environ, "SHIP_STATE": str(tmp_path / "state"), "SHIP_REGISTRY_PORT": str(free_port())}
    yield env
    subprocess.run([str(DOWN)], env=env, capture_output=True)


def run(args, env, **kw):
    return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.registry
def test_registry_start_is_idempotent_and_survives_a_crash(state):
    first = run([UP, "registry"], state)
    assert first.returncode == 0, first.stderr
    port = state["SHIP_REGISTRY_PORT"]
    assert f"export SHIP_REGISTRY=127.0.0.1:{port}" in first.stdout
    pid_file = Path(state["SHIP_STATE"]) / "registry.pid"
    pid = int(pid_file.read_text())
    second = run([UP, "registry"], state)
    assert second.returncode == 0 and int(pid_file.read_text()) == pid  # reused, not restarted

    os.kill(pid, signal.SIGKILL)  # a crash leaves a stale pid file behind
    time.sleep(0.3)
    third = run([UP, "registry"], state)
    assert third.returncode == 0, third.stderr
    assert int(pid_file.read_text()) != pid
    assert httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 200

    down = run([DOWN], state)
    assert down.returncode == 0 and "stopped registry" in down.stderr
    assert not pid_file.exists()


@pytest.mark.registry
def test_busy_port_is_named(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        state["SHIP_REGISTRY_PORT"] = str(s.getsockname()[1])
        out = run([UP, "registry"], state)
    assert out.returncode != 0
    assert f"port 127.0.0.1:{state['SHIP_REGISTRY_PORT']} for the registry is busy" in out.stderr


def test_missing_debian_package_is_named(state, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mkdir", "cat", "python3"):
        os.symlink(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip(), bin_dir / tool)
    out = run(["/bin/bash", UP, "engine"], {**state, "PATH": str(bin_dir)})
    assert out.returncode != 0
    assert "missing Debian package podman" in out.stderr


def test_failed_go_build_names_module_and_version(state, tmp_path):
    env = {**state, "SHIP_CACHE": str(tmp_path / "cache"), "K8S_VERSION": "v1.34.999", "GOFLAGS": "-mod=mod"}
    out = run([BUILD], env)
    assert out.returncode != 0
    assert "k8s.io/kubernetes@v1.34.999" in out.stderr
