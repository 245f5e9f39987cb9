"""Start-up stays short: `ship version` and `ship --help` import none of the heavy libraries,
nor any of ship's flows (`python -X importtime` lists what a command imported). The seconds
themselves are measured by `make bench` (bench/startup.py), not here: this machine's load varies."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = {"httpx", "httpcore", "git", "kubernetes", "docker", "yaml", "rich", "pydantic", "urllib3", "requests"}
FLOWS = ("pipeline.commands", "pipeline.kube", "pipeline.gitops", "pipeline.rollout", "pipeline.image", "pipeline.supply",
         "pipeline.state", "pipeline.report", "pipeline.config", "pipeline.context")


def imported(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [("version",), ("--version",), ("--help",), ("-h",), ("sync", "--help"),
                                  ("completion", "bash")])
def test_no_heavy_import_at_start_up(args):
    modules = imported(*args)
    assert {m.split(".")[0] for m in modules} & HEAVY == set()
    assert [m for m in modules if m.startswith(FLOWS)] == []


def test_version_loads_not_even_the_cli():
    modules = imported("version")
    assert "typer" not in modules and "click" not in modules and "pipeline.cli" not in modules


def test_a_deploying_command_loads_neither_kubernetes_nor_rich_nor_docker():
    """A sync or promote pays for httpx, GitPython and yaml only: kubeconfig is read natively, and
    httpx's own CLI (click, rich, pygments) is never loaded (pipeline/__init__.py)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c",
                          "import pipeline.cli, pipeline.commands.deploy, pipeline.commands.context"],
                         capture_output=True, text=True, timeout=120)
    top = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in out.stderr.splitlines()
           if line.startswith("import time:")}
    assert top & {"kubernetes", "pydantic", "rich", "pygments", "docker", "requests", "urllib3"} == set()
