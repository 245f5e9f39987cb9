"""The set-up scripts: idempotent, recover from stale pid files and crashes, and fail with a
message naming the cause (port, package, module@version). Each test uses its own state
folder and ports, so the shared local parts are untouched."""

from __future__ import annotations

import os
import signal
import socket
import ssl
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


@pytest.mark.registry
def test_private_registries_start_once_come_back_after_a_crash_and_refuse_strangers(state):
    ports = {key: str(free_port()) for key in ("SHIP_PRIVATE_REGISTRY_PORT", "SHIP_BASIC_REGISTRY_PORT",
                                                "SHIP_TOKEN_ISSUER_PORT")}
    env = {**state, **ports}
    first = run([UP, "private"], env)
    assert first.returncode == 0, first.stderr
    exports = dict(line[len("export "):].split("=", 1) for line in first.stdout.splitlines() if line.startswith("export "))
    host, ca = exports["SHIP_PRIVATE_REGISTRY"], exports["SHIP_PRIVATE_REGISTRY_CA"]
    assert host == f"127.0.0.1:{ports['SHIP_PRIVATE_REGISTRY_PORT']}"
    pid_file = Path(state["SHIP_STATE"]) / "private-registry.pid"
    pid = int(pid_file.read_text())
    assert run([UP, "private"], env).returncode == 0 and int(pid_file.read_text()) == pid  # reused
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    assert run([UP, "private"], env).returncode == 0 and int(pid_file.read_text()) != pid

    tls = ssl.create_default_context(cafile=ca)
    challenge = httpx.get(f"https://{host}/v2/team/x/manifests/1", verify=tls)
    assert challenge.status_code == 401 and challenge.headers["WWW-Authenticate"].startswith("Bearer realm=")
    realm = challenge.headers["WWW-Authenticate"].split('"')[1]
    user, password = exports["SHIP_PRIVATE_REGISTRY_USERNAME"], exports["SHIP_PRIVATE_REGISTRY_PASSWORD"]
    params = {"service": "ship-lab-registry", "scope": "repository:team/x:pull"}
    assert httpx.get(realm, params=params, auth=(user, "wrong"), verify=tls).status_code == 401
    token = httpx.get(realm, params=params, auth=(user, password), verify=tls).json()["token"]
    # The registry itself verifies the issuer's JWT: a known token reaches the repository (404: empty).
    assert httpx.get(f"https://{host}/v2/team/x/manifests/1", headers={"Authorization": f"Bearer {token}"},
                     verify=tls).status_code == 404
    basic = f"https://{exports['SHIP_BASIC_REGISTRY']}/v2/"
    assert httpx.get(basic, auth=(user, password), verify=tls).status_code == 200
    assert httpx.get(basic, auth=(user, "wrong"), verify=tls).status_code == 401
    down = run([DOWN], env)
    assert down.returncode == 0 and "stopped private-registry" in down.stderr
