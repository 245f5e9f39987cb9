"""The deployer's access: `ship rbac ENV` creates the Namespace first; `ship kubeconfig ENV` mints
a kubeconfig from a TokenRequest that reaches ENV's namespace with the Role's rights and nothing
more (live, against the local control plane)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time

import git
import pytest
import yaml
from typer.testing import CliRunner

from pipeline import scaffold
from pipeline.cli import app
from pipeline.kube import access


def test_a_minted_kubeconfig_has_one_cluster_user_and_context_in_the_namespace():
    body = access.kubeconfig("ship-dev", access.Server("https://127.0.0.1:6443", b"CA"), "shop-dev", "ship-deployer@shop-dev", "tok")
    assert body["current-context"] == "ship-dev"
    assert body["clusters"] == [{"name": "ship-dev", "cluster": {"server": "https://127.0.0.1:6443",
                                                                 "certificate-authority-data": base64.b64encode(b"CA").decode()}}]
    assert body["users"] == [{"name": "ship-deployer@shop-dev", "user": {"token": "tok"}}]
    assert body["contexts"][0]["context"] == {"cluster": "ship-dev", "user": "ship-deployer@shop-dev", "namespace": "shop-dev"}


def test_rbac_prints_the_namespace_before_the_deployer(tmp_path, monkeypatch):
    git.Repo.init(tmp_path)
    scaffold.init(tmp_path, "shop", scaffold.InitOptions(path="apps/shop", port=8080, registry="registry.example.com"))
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["rbac", "uat"])
    assert out.exit_code == 0, out.output
    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out.stdout)]
    assert kinds[:4] == [("Namespace", "shop-uat"), ("ServiceAccount", "ship-deployer"), ("Role", "ship-deployer"),
                         ("RoleBinding", "ship-deployer")]  # then the admission policies (security.md)
    written = [d["kind"] for d in yaml.safe_load_all((tmp_path / "deploy/rbac/uat.yaml").read_text())]
    assert written[:4] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]


def test_kubeconfig_refuses_a_duration_too_short_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["kubeconfig", "dev", "--duration", "5m"])
    assert out.exit_code == 2 and "Kubernetes mints tokens for 10m at least" in out.output


def kubectl(*args: str, kubeconfig: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": kubeconfig})


def wait_allowed(*args: str, kubeconfig: str) -> None:
    deadline = time.monotonic() + 30
    while (proc := kubectl(*args, kubeconfig=kubeconfig)).returncode != 0:  # the authorizer's cache catches up
        assert time.monotonic() < deadline, proc.stderr
        time.sleep(0.5)


@pytest.mark.cluster
def test_the_minted_kubeconfig_reaches_the_namespace_with_the_roles_rights_only(env_repo, local_parts, tmp_path):
    work, bare, namespaces = env_repo
    admin = local_parts["KUBECONFIG"]
    env = {**os.environ, "KUBECONFIG": admin}
    rbac_yaml = subprocess.run([sys.executable, "-m", "pipeline", "rbac", "dev"], cwd=work, env=env,
                               capture_output=True, text=True, check=True).stdout
    applied = kubectl("apply", "-f", "-", kubeconfig=admin, stdin=rbac_yaml)
    assert applied.returncode == 0, applied.stderr  # a fresh cluster: the Namespace comes first
    proc = subprocess.run([sys.executable, "-m", "pipeline", "kubeconfig", "dev", "--duration", "1h"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"minted a token of ServiceAccount/{namespaces['dev']}/ship-deployer valid for 1h" in proc.stderr
    minted = tmp_path / "deployer.kubeconfig"
    minted.write_text(proc.stdout)
    assert yaml.safe_load(proc.stdout)["contexts"][0]["context"]["namespace"] == namespaces["dev"]
    wait_allowed("get", "deployments", "-n", namespaces["dev"], kubeconfig=str(minted))
    assert kubectl("auth", "can-i", "patch", "deployments", "-n", namespaces["dev"], kubeconfig=str(minted)).stdout.strip() == "yes"
    for denied in (["get", "deployments", "-n", "default"], ["get", "namespaces"], ["get", "roles", "-n", namespaces["dev"]]):
        proc = kubectl(*denied, kubeconfig=str(minted))
        assert proc.returncode != 0 and "forbidden" in proc.stderr, denied


@pytest.mark.cluster
def test_kubeconfig_names_a_missing_service_account_and_how_to_create_it(env_repo, local_parts):
    work, bare, namespaces = env_repo
    env = {**os.environ, "KUBECONFIG": local_parts["KUBECONFIG"]}
    kubectl("create", "namespace", namespaces["uat"], kubeconfig=local_parts["KUBECONFIG"])
    proc = subprocess.run([sys.executable, "-m", "pipeline", "kubeconfig", "uat", "--service-account", "nobody"], cwd=work,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == (f"ConfigError: ServiceAccount/{namespaces['uat']}/nobody: not found; create it first "
                                   "with `ship rbac ENV --service-account nobody | kubectl apply -f -`")
