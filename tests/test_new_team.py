"""The acceptance test "a new team": README's quickstart, from an empty repository to a prod canary.

A fresh repository with a small Go app (hellok8s' source, without its Dockerfile, base or config);
ship installed from the built wheel into a venv of its own, as `pipx install` would, not from the
source tree; `ship init` writes everything; a platform team applies `ship rbac ENV` and mints the
deployer's kubeconfig with `ship kubeconfig` (tests/deployer.py); then the workflow `ship init` wrote runs under act
on each push, deploying with that least-privilege kubeconfig (never the admin's). dev, uat and
prod go through; a push while prod is frozen stops at uat; the next push, which changes no app,
builds nothing and still promotes what uat has to prod, through the canary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import git
import pytest

from tests.act import Act, export_source, runner_env
from tests.conftest import ROOT, bare_and_clone, commit_all
from tests.deployer import deployer_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine, pytest.mark.binaries]


@pytest.fixture(scope="session")
def user_ship(tmp_path_factory) -> Path:
    """`ship` as a user has it: the wheel built from this repository, installed in a venv of its own
    (its dependencies are the test venv's, so nothing is downloaded)."""
    tmp = tmp_path_factory.mktemp("user-ship")
    source = export_source(tmp / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(source)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("ship-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([venv / "bin/python", "-c", "import pipeline; print(pipeline.__file__)"], capture_output=True,
                           text=True, check=True, cwd=tmp).stdout
    assert where.startswith(site), where  # the wheel's copy, not the source tree
    return venv / "bin/ship"


def run(*args, cwd: Path, kubeconfig: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIP_")} | {"KUBECONFIG": kubeconfig}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


def test_a_new_team_goes_from_an_empty_repository_to_a_prod_canary(user_ship, local_parts, tmp_path):
    admin = local_parts["KUBECONFIG"]
    app = f"team{uuid.uuid4().hex[:6]}"
    namespaces = {env: f"{app}-{env}" for env in ("dev", "uat", "prod")}
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    (work / "apps" / app).mkdir(parents=True)
    for name in ("main.go", "go.mod"):
        shutil.copy(ROOT / "apps/hellok8s" / name, work / "apps" / app / name)
    # README, Quickstart: ship init, commit, push
    out = run(user_ship, "init", app, "--port", "3000", "--registry", local_parts["SHIP_REGISTRY"], cwd=work, kubeconfig=admin)
    assert f"wrote apps/{app}/Dockerfile" in out and ".github/workflows/pipeline.yml" in out
    # short bakes, for the test's sake; and no users' traffic to judge the canary on (KWOK pods get
    # none): the template's `traffic:` needs a gateway's metrics in a Prometheus the deployer may reach
    cfg = work / "ship.yaml"
    text = cfg.read_text().replace("bake: 30s", "bake: 1s").replace("bake: 1m", "bake: 1s").replace("bake: 5m", "bake: 2s")
    text = re.sub(r"\n      traffic:.*?\n(?=      # http:)", "\n", text, flags=re.S)
    assert "traffic:" not in text
    cfg.write_text(text)
    commit_all(work, "ship init")
    # the platform team: namespaces and the deployer, then its kubeconfig for the KUBECONFIG secret
    try:
        minted = deployer_kubeconfig([user_ship], work, admin, namespaces)
        act = Act(work, tmp_path, export_source(tmp_path / "ship-action"),
                  secrets={"KUBECONFIG": minted, "GITHUB_TOKEN": "a-token"},
                  variables={"SHIP_REGISTRY": local_parts["SHIP_REGISTRY"]},
                  env=runner_env(DOCKER_HOST=local_parts.get("DOCKER_HOST", "")))
        first = act.run("pipeline.yml")
        assert first.results() == {"changes": ["success"], "build": ["success"], "sign": ["success"], "dev": ["success"],
                                   "uat": ["success"], "prod": ["success"]}, first.output()[-10000:]
        for env, ns in namespaces.items():
            ready = run("kubectl", "-n", ns, "get", "deployment", app, "-o", "jsonpath={.status.readyReplicas}", cwd=work,
                        kubeconfig=admin)
            assert ready == "3", (env, ready)
        # prod frozen: a change goes to dev and uat, prod's job is held
        repo.git.pull("-q", "origin", "main")
        run(user_ship, "freeze", "prod", "--reason", "launch week", cwd=work, kubeconfig=admin)
        (work / "apps" / app / "config/dev.env").write_text("ENVIRONMENT=dev\nMESSAGE=second\n")
        commit_all(work, "a second message")
        held = act.run("pipeline.yml")
        assert held.results().get("prod") == ["success"] and "### prod: held by freeze" in held.summary("prod"), \
            held.output()[-10000:]
        # unfrozen, and a push that changes no app: nothing is built, uat's release goes to prod through the canary
        repo.git.pull("-q", "origin", "main")
        run(user_ship, "unfreeze", "prod", cwd=work, kubeconfig=admin)
        repo.git.push("-q", "origin", "HEAD:main")
        again = act.run("pipeline.yml")
        assert again.results() == {"changes": ["success"], "uat": ["success"], "prod": ["success"]}, again.output()[-10000:]
        log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
        assert any(s.startswith(f"promote(prod): {app}") and "after canary 10% passed" in s for s in log), log
    finally:
        for ns in namespaces.values():
            subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], env={**os.environ, "KUBECONFIG": admin},
                           capture_output=True)
