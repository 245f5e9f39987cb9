"""The whole story against the lab's private registry (TLS from the lab's CA, token auth), on the
real node: `ship build` with a login from the environment → `release dev` → `promote uat` →
`promote prod` → a prod canary at 10% through the real gateway, then full prod. The node pulls
the private image through Secret ship-registry, which each sync makes in the namespace from the
same login (never from git) and every pod spec names; pods are Running from the private image.
Without a login a sync keeps the Secret the cluster has."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import git
import pytest

from pipeline import names
from pipeline.imageref import ImageRef
from tests.conftest import ROOT, commit_all
from tests.test_real_node import (
    delete_namespaces,
    host_for,
    kubectl_json,
    new_repo,
    set_canary,
    set_config,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]


@pytest.fixture(scope="module")
def private(local_parts) -> dict[str, str]:
    proc = subprocess.run([str(ROOT / "hack/cluster-up.sh"), "registry", "private", "engine"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {k: v for k, _, v in (line[len("export "):].partition("=") for line in proc.stdout.splitlines()
                                 if line.startswith("export "))}


def ship(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=work, capture_output=True, text=True,
                          timeout=600, env=env)


def pods_on_node(ns: str, node: str) -> list[dict]:
    pods = kubectl_json("-n", ns, "get", "pods", "-l", "app.kubernetes.io/name=hellok8s")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and p["spec"].get("nodeName") == node]


def assert_running_from(ns: str, node: str, ref: ImageRef) -> None:
    pods = pods_on_node(ns, node)
    assert pods, f"no hellok8s pod on {node} in {ns}"
    for pod in pods:
        assert pod["status"]["phase"] == "Running", pod["status"]
        assert {"name": names.PULL_SECRET} in pod["spec"]["imagePullSecrets"]
        status = pod["status"]["containerStatuses"][0]
        assert status["imageID"] == f"{ref.repository}@{ref.digest}", status  # pulled from the private registry


def pull_refused_without_the_secret(ns: str, node: str, ref: ImageRef, timeout: float = 90) -> str:
    """The node's own pull of REF without the pull secret (imagePullPolicy Always) is refused: the
    registry really is private to the node. The kubelet's reason, e.g. ErrImagePull … 401."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-pull-secret", "namespace": ns},
           "spec": {"nodeName": node, "tolerations": [{"key": "ship.dev/real-node", "operator": "Exists"}],
                    # what the namespace's Pod Security level (restricted) asks of every pod
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "app", "image": f"{ref.repository}@{ref.digest}", "imagePullPolicy": "Always",
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}}]}}
    applied = subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(pod), text=True, capture_output=True)
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            status = kubectl_json("-n", ns, "get", "pod", "no-pull-secret").get("status", {})
            waiting = ((status.get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                return f"{waiting['reason']}: {waiting.get('message', '')}"
            assert status.get("phase") != "Running", "the node pulled the private image without the pull secret"
            time.sleep(1)
        raise AssertionError(f"pod no-pull-secret neither pulled nor failed to pull within {timeout:.0f}s")
    finally:
        subprocess.run(["kubectl", "-n", ns, "delete", "pod", "no-pull-secret", "--wait=false"], capture_output=True)


def test_private_image_from_build_to_prod_canary_pulled_through_the_pull_secret(real_node, local_parts, private,
                                                                               project_repo, tmp_path):
    work, bare, namespaces = new_repo(tmp_path, project_repo)
    host = private["SHIP_PRIVATE_REGISTRY"]
    where = f"{host}/team-{uuid.uuid4().hex[:6]}"
    login = {"SHIP_REGISTRY_USERNAME": private["SHIP_PRIVATE_REGISTRY_USERNAME"],
             "SHIP_REGISTRY_PASSWORD": private["SHIP_PRIVATE_REGISTRY_PASSWORD"]}
    empty = tmp_path / "no-docker-config"
    empty.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHIP_REGISTRY")}, **local_parts,
           "SHIP_REGISTRY": where, "SSL_CERT_FILE": private["SHIP_PRIVATE_REGISTRY_CA"], "DOCKER_CONFIG": str(empty),
           "SHIP_SECRET_HELLOK8S_DB_PASSWORD": "pw", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e", **login}
    set_canary(work, f"router: gateway\ngateway: {local_parts['SHIP_GATEWAY']}\nhost: {host_for(namespaces['prod'])}\n"
                     "interval: 1s\nsteps:\n  - {weight: 10, bake: 2s}")
    commit_all(work, "prod: a canary routed by ship's gateway")
    try:
        out = ship(work, env, "build", "--output", "json")
        assert out.returncode == 0, out.stderr
        ref = ImageRef.parse(json.loads(out.stdout)["image"])
        for step in (["release", "dev", "--image", str(ref)], ["promote", "dev", "uat"], ["promote", "uat", "prod"]):
            out = ship(work, env, *step)
            assert out.returncode == 0, (step, out.stderr[-3000:])
        for env_name in ("dev", "uat", "prod"):
            assert_running_from(namespaces[env_name], real_node, ref)
        secret = kubectl_json("-n", namespaces["dev"], "get", "secret", names.PULL_SECRET)
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert secret["metadata"]["labels"][names.ENV_LABEL] == "dev"
        auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
        assert list(auths) == [host]
        assert not any(names.PULL_SECRET in p.read_text() for p in (work / "environments").rglob("*.yaml"))  # not in git
        assert pull_refused_without_the_secret(namespaces["dev"], real_node, ref)
        set_config(work, "dev", MESSAGE="Hello from a private image")
        commit_all(work, "dev: a new greeting")
        for step in (["release", "dev", "--image", str(ref)], ["promote", "dev", "uat"],
                     ["promote", "uat", "prod", "--canary", "10"]):
            out = ship(work, env, *step)
            assert out.returncode == 0, (step, out.stderr[-3000:])
        assert "after its canary passed" in out.stdout, out.stdout
        assert_running_from(namespaces["prod"], real_node, ref)
        assert private["SHIP_PRIVATE_REGISTRY_PASSWORD"] not in git.Repo(bare).git.log("-p", "main")
        # A run without a login keeps the Secret the cluster has: nothing to prune, no rollout.
        anonymous = {k: v for k, v in env.items() if k not in login}
        out = ship(work, anonymous, "diff", "dev")
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        delete_namespaces(namespaces.values())
