"""The acceptance test "a new team": from an empty repository to a prod canary, and on (a freeze,
a push that changes no app). The README's quickstart itself runs as written in tests/test_readme.py.

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
import subprocess
import uuid
from pathlib import Path

import git
import pytest

from tests.conftest import bare_and_clone, commit_all
from tests.deployer import deployer_kubeconfig
from tests.newteam import add_go_app, delete_namespaces, pipeline_act, quick_for_the_lab

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine, pytest.mark.binaries]


def run(*args, cwd: Path, kubeconfig: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIP_")} | {"KUBECONFIG": kubeconfig}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


@pytest.mark.timeout(1800)  # act runs the whole workflow, 180-200 s on a quiet 2-core machine
def test_a_new_team_goes_from_an_empty_repository_to_a_prod_canary(user_ship, local_parts, tmp_path):
    admin = local_parts["KUBECONFIG"]
    app = f"team{uuid.uuid4().hex[:6]}"
    namespaces = {env: f"{app}-{env}" for env in ("dev", "uat", "prod")}
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    add_go_app(work, app)
    # README, Quickstart: ship init, commit, push
    out = run(user_ship, "init", app, "--port", "3000", "--registry", local_parts["SHIP_REGISTRY"], cwd=work, kubeconfig=admin)
    assert f"wrote apps/{app}/Dockerfile" in out and ".github/workflows/pipeline.yml" in out
    quick_for_the_lab(work / "ship.yaml")
    commit_all(work, "ship init")
    # the platform team: namespaces and the deployer, then its kubeconfig for the KUBECONFIG secret
    try:
        minted = deployer_kubeconfig([user_ship], work, admin, namespaces)
        act = pipeline_act(work, tmp_path, local_parts, {"KUBECONFIG": minted}, {"SHIP_REGISTRY": local_parts["SHIP_REGISTRY"]})
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
        delete_namespaces(namespaces.values(), admin)
