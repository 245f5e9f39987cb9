"""`ship promote FROM TO` on the local cluster: the same digest with TO's own config, gated and
recorded; refused for a non-edge, an empty or an unhealthy source."""

from __future__ import annotations

import json
import subprocess

import git
import pytest
from typer.testing import CliRunner

from pipeline.cli import app

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def deployment(ns: str) -> dict:
    out = subprocess.run(["kubectl", "-n", ns, "get", "deployment", "hellok8s", "-o", "json"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def released_dev(env_repo, hellok8s_image, monkeypatch):
    work, bare, namespaces = env_repo
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "pw")
    out = ship("release", "dev", "--image", hellok8s_image, "--output", "json")
    assert out.exit_code == 0, out.output
    return work, bare, namespaces, json.loads(out.stdout)["release"]


def test_promote_moves_the_same_digest_with_the_target_config(released_dev):
    work, bare, namespaces, dev_rel = released_dev
    out = ship("promote", "dev", "uat", "--output", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    rel = data["release"]
    assert rel["id"] == dev_rel["id"] and rel["image"] == dev_rel["image"] and rel["promoted_from"] == "dev"
    assert rel["config"] == f"hellok8s-config-{dev_rel['id']}" and data["gate"]["passed"] is True
    live = deployment(namespaces["uat"])["spec"]["template"]["spec"]["containers"][0]
    assert live["image"] == dev_rel["image"]
    cm = json.loads(subprocess.run(["kubectl", "-n", namespaces["uat"], "get", "configmap", rel["config"], "-o", "json"],
                                   capture_output=True, text=True, check=True).stdout)
    assert cm["data"]["MESSAGE"] == "Hello from uat" and cm["immutable"] is True
    log = git.Repo(bare).git.log("--format=%s", "main").splitlines()
    assert f"promote(uat): hellok8s@{dev_rel['id']} from dev" in log
    history = json.loads(ship("history", "uat", "--output", "json").stdout)["releases"]
    assert history[0]["id"] == dev_rel["id"] and history[0]["outcome"] == "healthy"


def test_promote_refuses_an_edge_that_ship_yaml_does_not_have(released_dev):
    out = ship("promote", "dev", "prod")
    assert out.exit_code == 1
    assert "PromotionError: dev → prod is not a promotion edge in ship.yaml (dev promotes to: uat)" in out.stderr


def test_promote_refuses_an_empty_source(env_repo):
    out = ship("promote", "uat", "prod")
    assert out.exit_code == 1 and "PromotionError: nothing is released to uat yet" in out.stderr


def test_promote_refuses_a_source_that_is_unhealthy_live(released_dev):
    work, bare, namespaces, _ = released_dev
    patch = {"spec": {"template": {"metadata": {"annotations": {"ship.dev/simulate": "never-ready"}}}}}
    subprocess.run(["kubectl", "-n", namespaces["dev"], "patch", "deployment", "hellok8s", "-p", json.dumps(patch)],
                   check=True, capture_output=True)
    out = ship("promote", "dev", "uat")
    assert out.exit_code == 1
    assert f"PromotionError: dev is not healthy: Deployment/{namespaces['dev']}/hellok8s Progressing" in out.stderr
    assert "promote(uat)" not in git.Repo(bare).git.log("--format=%s", "main")
