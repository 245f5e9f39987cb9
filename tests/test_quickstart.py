"""The README's quickstart, run as written: its four shell blocks, in order, in a fresh clone of a
repository holding an app in apps/shop, against the lab (the local cluster and registry).

What a newcomer has is what the test gives: `ship` from the built wheel on PATH (tests/newteam.py),
kubectl with the cluster admin's kubeconfig, and `gh`, here a recorder (tests/gh_standin.py).
Only the lab's names replace GitHub's: the owner (GITHUB_REPOSITORY=your-org/your-repo, so the
registry in ship.yaml is ghcr.io/your-org as the README says) and the registry the `gh variable
set SHIP_REGISTRY` line gives. The push of block 1 runs the pipeline under act with no secret or
variable yet (GitHub would): it must stop at once with a job summary naming them. Block 4's `gh
workflow run pipeline.yml` runs it again with what blocks 2 and 3 recorded: through dev, uat and
prod. What the test adds, and why:
  - after block 1, one commit making ship.yaml quick for the lab (short bakes, no users' traffic,
    which KWOK pods never get) and its namespaces unique (the lab is shared);
  - act has one set of secrets per run, where GitHub has one per environment: the run gets dev's
    KUBECONFIG, and dev's deployer is bound in uat's and prod's namespaces (tests/deployer.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import git
import pytest

from tests.conftest import ROOT, bare_and_clone, commit_all
from tests.deployer import bind_first_deployer
from tests.newteam import add_go_app, delete_namespaces, pipeline_act, quick_for_the_lab

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine, pytest.mark.binaries]

README = (ROOT / "README.md").read_text()
APP = "shop"
ENVS = ("dev", "uat", "prod")


def quickstart_blocks() -> list[str]:
    """The shell blocks of the README's section "Quickstart", in order, unindented."""
    section = README[README.index("## Quickstart"):]
    section = section[:section.index("\n## ")]
    return [textwrap.dedent(b) for b in re.findall(r"^ *```sh\n(.*?)^ *```", section, flags=re.S | re.M)]


def newcomer_env(tmp: Path, user_ship: Path, admin: str) -> dict[str, str]:
    """A shell with the wheel's ship and the gh recorder first on PATH (not the test venv's ship),
    the admin's kubeconfig, and none of the lab's SHIP_* settings."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "ship").symlink_to(user_ship)
    (bin_dir / "gh").write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "tests/gh_standin.py"} "$@"\n')
    (bin_dir / "gh").chmod(0o755)
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([str(bin_dir), *(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)])
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SHIP_")}, "PATH": path, "KUBECONFIG": admin,
            "GITHUB_REPOSITORY": "your-org/your-repo", "GH_STANDIN_STATE": str(tmp / "gh.json")}


def run_block(block: str, cwd: Path, env: dict[str, str], stdin: str = "") -> str:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-x", "-c", block], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{block}\n{proc.stderr[-5000:]}"
    return proc.stdout


def unique_namespaces(ship_yaml: Path) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:6]
    namespaces = {env: f"{APP}-{env}-{suffix}" for env in ENVS}
    text = ship_yaml.read_text()
    for env, ns in namespaces.items():
        assert f"namespace: {APP}-{env}\n" in text
        text = text.replace(f"namespace: {APP}-{env}\n", f"namespace: {ns}\n")
    ship_yaml.write_text(text)
    return namespaces


@pytest.mark.timeout(1800)
def test_the_readme_quickstart_runs_as_written(user_ship, local_parts, tmp_path):
    blocks = quickstart_blocks()
    assert len(blocks) == 4 and blocks[0].startswith("cd your-repo\n"), blocks
    assert blocks[2].count("--body ghcr.io/your-org") == 1
    blocks[2] = blocks[2].replace("--body ghcr.io/your-org", f"--body {local_parts['SHIP_REGISTRY']}")
    admin = local_parts["KUBECONFIG"]
    bare, work, repo = bare_and_clone(tmp_path, "your-repo")
    add_go_app(work, APP)
    commit_all(work, "shop, a Go app")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    env = newcomer_env(tmp_path, user_ship, admin)
    namespaces: dict[str, str] = {}
    try:
        out = run_block(blocks[0], tmp_path, env)
        assert "wrote apps/shop/Dockerfile" in out and "wrote .github/workflows/pipeline.yml" in out, out
        assert "registry: ghcr.io/your-org" in (work / "ship.yaml").read_text()
        # The push runs the pipeline before any secret or variable exists: it stops at once, and says what to set.
        first = pipeline_act(work, tmp_path, local_parts, {}, {}).run("pipeline.yml")
        assert first.results() == {"changes": ["failure"]}, first.output()[-6000:]
        assert "- variable `SHIP_REGISTRY` is not set: `gh variable set SHIP_REGISTRY --body ghcr.io/OWNER`" \
            in first.summary("changes")
        namespaces = unique_namespaces(work / "ship.yaml")
        quick_for_the_lab(work / "ship.yaml")
        commit_all(work, "the lab: quick bakes, no users' traffic, namespaces of its own")
        out = run_block(blocks[1], work, env)
        assert out.count("✓ Set secret KUBECONFIG for environment") == 3, out
        run_block(blocks[2], work, env, stdin="an-api-key\n")
        run_block(blocks[3], work, env)
        state = json.loads((tmp_path / "gh.json").read_text())
        assert state["variables"] == {"SHIP_REGISTRY": local_parts["SHIP_REGISTRY"]} and state["runs"] == ["pipeline.yml"]
        assert set(state["secrets"]) == set(ENVS) and state["secrets"]["prod"]["SHIP_SECRET_SHOP_API_KEY"] == "an-api-key"
        # GitHub gives each job its environment's secrets; act one set per run: dev's, its deployer bound everywhere.
        bind_first_deployer(work, admin, namespaces)
        act = pipeline_act(work, tmp_path, local_parts, state["secrets"]["dev"], state["variables"])
        run = act.run("pipeline.yml", "workflow_dispatch")
        assert run.results() == {"changes": ["success"], "build": ["success"], "sign": ["success"], "dev": ["success"],
                                 "uat": ["success"], "prod": ["success"]}, run.output()[-10000:]
        for ns in namespaces.values():
            ready = subprocess.run(["kubectl", "-n", ns, "get", "deployment", APP, "-o", "jsonpath={.status.readyReplicas}"],
                                   env=env, capture_output=True, text=True).stdout
            assert ready == "3", (ns, ready)
        log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
        assert any(s.startswith(f"promote(prod): {APP}@") for s in log), log
    finally:
        delete_namespaces(namespaces.values(), admin)
