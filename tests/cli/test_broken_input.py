"""Every command, fed broken input, ends in one line naming what is wrong and a documented exit
code: never a traceback, never something half-written.

Each case sets up a repository (tests.fakes' project: ship.yaml, one app, three environments)
and breaks one thing: ship.yaml, a kubeconfig, an argument, git, the disk. The cluster cases
need no cluster: a refused port and an unknown host must fail in seconds, not be retried.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.fakes import fake_project

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {user}}}]
contexts: [{{name: lab, context: {{cluster: c, user: u}}}}]
current-context: lab
"""
REFUSED = "https://127.0.0.1:1"


def kubeconfig(root: Path, server: str = REFUSED, user: str = "{token: abc}", name: str = "kubeconfig") -> Path:
    path = root / name
    path.write_text(KUBECONFIG.format(server=server, user=user))
    return path


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    code: int
    says: str  # in the one error line
    setup: Callable[[Path], dict[str, str]] | None = None  # breaks something; returns env variables to set
    lines: int = 1  # error lines: one, or one per environment


def _write(rel: str, text: str | bytes) -> Callable[[Path], dict[str, str]]:
    def setup(root: Path) -> dict[str, str]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return {}
    return setup


def _ship_yaml(old: str, new: str) -> Callable[[Path], dict[str, str]]:
    def setup(root: Path) -> dict[str, str]:
        path = root / "ship.yaml"
        path.write_text(path.read_text().replace(old, new))
        return {}
    return setup


def _kube(text: str | None = None, **kw: str) -> Callable[[Path], dict[str, str]]:
    def setup(root: Path) -> dict[str, str]:
        if text is not None:
            (root / "kubeconfig").write_text(text)
            return {"KUBECONFIG": str(root / "kubeconfig")}
        return {"KUBECONFIG": str(kubeconfig(root, **kw))}
    return setup


def _two_kubeconfigs(root: Path) -> dict[str, str]:
    good = kubeconfig(root, name="good")
    (root / "bad").write_text("clusters: [oops\n")
    return {"KUBECONFIG": f"{good}{os.pathsep}{root / 'bad'}"}


def _dir_at(rel: str) -> Callable[[Path], dict[str, str]]:
    def setup(root: Path) -> dict[str, str]:
        target = root / rel
        if target.exists():
            target.unlink()
        target.mkdir()
        return {}
    return setup


def _no_identity(root: Path) -> dict[str, str]:
    subprocess.run(["git", "config", "--unset", "user.email"], cwd=root, check=True)
    subprocess.run(["git", "config", "--unset", "user.name"], cwd=root, check=True)
    subprocess.run(["git", "config", "user.useConfigOnly", "true"], cwd=root, check=True)
    return {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _broken_overlay(root: Path) -> dict[str, str]:
    subprocess.run(["git", "checkout", "-qb", "change"], cwd=root, check=True)
    (root / "environments/dev/kustomization.yaml").write_text("resources: [missing.yaml]\n")
    return {}


CASES = [
    Case("no ship.yaml", ("status",), 1, "ConfigError: no ship.yaml in", lambda root: (root / "ship.yaml").unlink() or {}),
    Case("ship.yaml not YAML", ("status",), 1, "ConfigError: ship.yaml", _write("ship.yaml", "apps: [oops\n")),
    Case("ship.yaml a list", ("history", "dev"), 1, "ConfigError: ship.yaml", _write("ship.yaml", "- a\n- b\n")),
    Case("ship.yaml a folder", ("status",), 1, "ConfigError: ship.yaml: not a regular file", _dir_at("ship.yaml")),
    Case("ship.yaml not UTF-8", ("status",), 1, "ConfigError: ship.yaml: not UTF-8", _write("ship.yaml", b"\xff\xfe\x00")),
    Case("ship.yaml unknown key", ("status",), 1, "ConfigError: ship.yaml", _ship_yaml("registry:", "registri: x\nregistry:")),
    Case("promotes_from cycle", ("status",), 1, "promotes_from makes a cycle",
         _ship_yaml("dev: {namespace: hk-dev,", "dev: {namespace: hk-dev, promotes_from: prod,")),
    Case("unknown environment", ("history", "nope"), 1, "nope", None),
    Case("unknown app", ("history", "dev", "nope"), 1, "nope", None),
    Case("kubeconfig not YAML", ("status", "dev"), 1, "not valid YAML", _kube("clusters: [oops\n")),
    Case("kubeconfig a list", ("status", "dev"), 1, "not a kubeconfig", _kube("- a\n- b\n")),
    Case("kubeconfig a string", ("diff", "dev"), 1, "not a kubeconfig", _kube("just text\n")),
    Case("kubeconfig contexts not a list", ("status", "dev"), 1, "contexts must be a list", _kube("contexts: 3\n")),
    Case("kubeconfig missing", ("status", "dev"), 1, "file not found",
         lambda root: {"KUBECONFIG": str(root / "nowhere")}),
    Case("kubeconfig missing context", ("--context", "nope", "status", "dev"), 1, "context 'nope' cannot be used",
         _kube()),
    Case("KUBECONFIG list, one broken", ("status", "dev"), 1, "bad:2: not valid YAML", _two_kubeconfigs),
    Case("exec plugin missing", ("status", "dev"), 1, "credentials failed",
         _kube(user="{exec: {apiVersion: client.authentication.k8s.io/v1, command: /nonexistent/plugin}}")),
    Case("connection refused", ("status",), 1, "unreachable", _kube(), lines=3),
    Case("unknown host", ("status", "dev"), 1, "unreachable", _kube(server="https://no-such-host.invalid:6443")),
    Case("diff, unreachable", ("diff", "dev"), 1, "unreachable", _kube()),
    Case("--kubeconfig missing", ("--kubeconfig", "/nonexistent/k", "status", "dev"), 1, "file not found", None),
    Case("dashboard --out a file", ("dashboard", "--out", "ship.yaml"), 1, "ship.yaml: not a folder", None),
    Case("dashboard --out under a file", ("dashboard", "--out", "ship.yaml/site"), 1, "ship.yaml/site: cannot be created", None),
    Case("freeze, blank reason", ("freeze", "dev", "--reason", " "), 1, "needs --reason", None),
    Case("freeze, bad --until", ("freeze", "dev", "--reason", "x", "--until", "someday"), 1, "ConfigError", None),
    Case("metrics, bad --since", ("metrics", "--since", "lately"), 1, "lately", None),
    Case("rollback, nothing released", ("rollback", "dev", "hellok8s"), 1, "unreachable", _kube()),
    Case("release, image not pinned", ("release", "dev", "--image", "hellok8s:latest", "--no-sync"), 1, "hellok8s:latest",
         None),
    Case("init, bad app name", ("init", "Not_A_Name"), 1, "Not_A_Name", None),
    Case("commit without a git identity", ("freeze", "dev", "--reason", "incident"), 1, "git has no identity", _no_identity),
    Case("preview of an overlay that does not render", ("preview", "--base", "main"), 1, "does not render", _broken_overlay),
    Case("unknown command", ("shipit",), 2, "No such command", None),
    Case("canary out of range", ("promote", "uat", "prod", "--canary", "0"), 2, "--canary", None),
    Case("bad --output", ("status", "-o", "xml"), 2, "--output", None),
    Case("negative --lock-timeout", ("sync", "dev", "--lock-timeout", "-1"), 2, "--lock-timeout", None),
    Case("bad completion shell", ("completion", "tcsh"), 2, "SHELL", None),
    Case("dry run without an image", ("release", "dev", "--dry-run"), 2, "--image", None),
    Case("override without reason", ("release", "dev", "--override-freeze"), 2, "--reason", None),
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    root.mkdir()
    fake_project(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, name="default-kubeconfig")))
    monkeypatch.delenv("SHIP_KUBE_CONTEXT", raising=False)
    return root


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("·")]


def assert_one_line(out, case: Case) -> None:
    assert out.exception is None or isinstance(out.exception, SystemExit), f"{case.name}: {out.exception!r}"
    assert "Traceback" not in out.output, out.output
    assert out.exit_code == case.code, f"{case.name}: exit {out.exit_code}: {out.output}"
    lines = error_lines(out.stderr)
    assert any(case.says in line for line in lines), f"{case.name}: {out.stderr}"
    if case.code == 1:  # a usage error prints click's usage too; a failure, one line (status: one per environment)
        assert len(lines) == case.lines, f"{case.name}: {lines}"


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_input_is_one_line_and_a_documented_exit_code(case, project, monkeypatch):
    for key, value in (case.setup(project) if case.setup else {}).items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    out = CliRunner().invoke(app, list(case.args))
    assert_one_line(out, case)
    assert time.monotonic() - started < 60  # a refused port or unknown host is never retried for long
    assert not list((project / ".git").glob("ship-writing/*.json"))  # no half-written overlay left behind


def test_status_names_each_unreachable_environment_once_and_fails(project):
    out = CliRunner().invoke(app, ["status"])
    lines = error_lines(out.stderr)
    assert out.exit_code == 1
    assert [line.split(":")[0] for line in lines] == ["dev", "uat", "prod"]
    assert all(line.count("dev:") <= 1 for line in lines) and "dev: dev:" not in out.stderr


def test_ctrl_c_mid_write_exits_130_and_leaves_nothing_half_written(project, tmp_path):
    """A kustomize that hangs while `ship retire` checks the overlay it wrote: Ctrl-C there puts
    the overlay back and exits 130."""
    from pipeline.commands import deploy
    from tests.fakes import GOOD, fake_context

    os.environ["SHIP_SECRET_HELLOK8S_DB_PASSWORD"] = "x"
    try:
        ctx, _, _ = fake_context(project, [])
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    finally:
        del os.environ["SHIP_SECRET_HELLOK8S_DB_PASSWORD"]
    marker = tmp_path / "rendering"
    hang = tmp_path / "kustomize"
    hang.write_text(f"#!/bin/sh\ntouch {marker}\nexec sleep 60\n")
    hang.chmod(0o755)
    env = {**os.environ, "SHIP_KUSTOMIZE": str(hang)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "retire", "dev", "hellok8s", "--no-sync"], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()
    assert subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True).stdout  # mid-write
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and error_lines(stderr)[-1].startswith("Interrupted:")
    assert subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True).stdout == ""
    assert not list((project / ".git").glob("ship-writing/*.json"))


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root, as make test runs here); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line(project, small_disk, monkeypatch):
    (small_disk / "out").mkdir()
    with open(small_disk / "filler", "wb") as f:  # fill it to the last block
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    out = CliRunner().invoke(app, ["dashboard", "--out", str(small_disk / "out")])
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)
    assert out.exit_code == 1 and "Traceback" not in out.output
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and "No space left on device" in lines[0], out.stderr
