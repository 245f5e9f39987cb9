"""Reproductions against the real API server, impersonating the deployer `ship rbac` makes: each
thing the review's deployer could do is now refused, by RBAC or by the admission policy, and
what ship needs still works (issue 27, item 5). Its ServiceAccount lives in another namespace."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import yaml

from pipeline.kube import rbac

pytestmark = pytest.mark.cluster
SA = "ship-deployer"
SECRET = "hellok8s-secrets"


def kubectl(*args: str, body: dict | None = None, as_user: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["kubectl", "--kubeconfig", os.environ["KUBECONFIG"], *args]
    if as_user:
        cmd += [f"--as={as_user}"]
    return subprocess.run(cmd, input=json.dumps(body) if body else None, capture_output=True, text=True, timeout=120)


@pytest.fixture
def deployer(namespace, kubeconfig):
    """`namespace` holds the ServiceAccount; ship deploys into a second namespace, `target`."""
    target = f"t-deploy-{uuid.uuid4().hex[:8]}"
    assert kubectl("create", "namespace", target).returncode == 0
    objects = rbac.deployer_objects(target, SA, namespace, environment="dev", secrets=[SECRET])
    objects += rbac.admission_objects(target, SA, namespace, accounts=["hellok8s"])
    applied = kubectl("apply", "-f", "-", body={"apiVersion": "v1", "kind": "List", "items": objects})
    assert applied.returncode == 0, applied.stderr
    yield target, f"system:serviceaccount:{namespace}:{SA}"
    kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-",
            body={"apiVersion": "v1", "kind": "List", "items": [o for o in objects if "namespace" not in o["metadata"]]})
    kubectl("delete", "namespace", target, "--wait=false")


def can(user: str, target: str, verb: str, resource: str) -> bool:
    return kubectl("auth", "can-i", verb, resource, "-n", target, as_user=user).stdout.strip() == "yes"


def pod_template(**spec: object) -> dict:
    container = {"name": "app", "image": "127.0.0.1:15000/hellok8s@sha256:" + "a" * 64,
                 "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    return {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container], **spec}}


def deployment(name: str, target: str, **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": target},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": pod_template(**spec)}}


def dry_run(body: dict, user: str) -> subprocess.CompletedProcess:
    return kubectl("create", "--dry-run=server", "--validate=false", "-f", "-", body=body, as_user=user)


def refused_by_policy(body: dict, user: str, message: str) -> str:
    """The deployer's dry-run of `body` refused with `message`; the admission policy may take a
    moment to be loaded after it was created, so this asks again for up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        result = dry_run(body, user)
        if result.returncode != 0 and message in result.stderr:
            return result.stderr
        assert result.returncode == 0 or "ValidatingAdmissionPolicy" not in result.stderr, result.stderr
        if time.monotonic() > deadline:
            raise AssertionError(f"not refused with {message!r}: {result.stdout}{result.stderr}")
        time.sleep(1)


def test_the_deployer_cannot_list_or_watch_secrets_nor_delete_service_accounts(deployer):
    target, user = deployer
    assert not can(user, target, "list", "secrets") and not can(user, target, "watch", "secrets")
    assert not can(user, target, "get", "secrets/someone-elses") and can(user, target, "get", f"secrets/{SECRET}")
    assert can(user, target, "patch", f"secrets/{SECRET}") and can(user, target, "create", "secrets")
    assert not can(user, target, "delete", "serviceaccounts")
    assert can(user, target, "update", "leases/ship-lock-dev") and not can(user, target, "get", "leases/other-lock")
    listed = kubectl("get", "secrets", "-n", target, as_user=user)
    assert listed.returncode != 0 and "forbidden" in listed.stderr


def test_the_deployer_cannot_mint_a_token_secret_for_another_service_account(deployer):
    target, user = deployer
    body = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "stolen", "namespace": target, "annotations": {"kubernetes.io/service-account.name":
                                                                                   "default"}}}
    refused_by_policy(body, user, "ship's deployer may not create a ServiceAccount token Secret")
    created = kubectl("create", "-f", "-", body=body, as_user=user)
    assert created.returncode != 0 and kubectl("get", "secret", "stolen", "-n", target).returncode != 0
    assert kubectl("get", "secret", "stolen", "-n", target, as_user=user).returncode != 0  # nor read one back


def test_the_deployer_cannot_set_external_ips(deployer):
    target, user = deployer
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mitm", "namespace": target},
            "spec": {"ports": [{"port": 80}], "externalIPs": ["10.0.0.1"]}}
    refused_by_policy(body, user, "ship's deployer may not set a Service's externalIPs")


@pytest.mark.parametrize("spec, message", [
    ({"hostPID": True}, "may not share the host's PID, IPC or network namespace"),
    ({"hostNetwork": True}, "may not share the host's PID, IPC or network namespace"),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "may not mount a hostPath volume"),
    ({"serviceAccountName": SA}, "may run pods only as ServiceAccount default, hellok8s"),
])
def test_the_deployer_cannot_run_a_pod_that_reaches_the_host_or_another_identity(deployer, spec, message):
    target, user = deployer
    refused_by_policy(deployment("escape", target, **spec), user, f"ship's deployer {message}")


def test_the_deployer_cannot_run_a_privileged_container_in_any_pod_template(deployer):
    target, user = deployer
    body = deployment("privileged", target)
    body["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    refused_by_policy(body, user, "ship's deployer may not run a privileged container")
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cron", "namespace": target},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never", "initContainers": [
                    {"name": "i", "image": "busybox@sha256:" + "b" * 64, "securityContext": {"privileged": True}}],
                         "containers": [{"name": "c", "image": "busybox@sha256:" + "b" * 64}]}}}}}}
    assert kubectl("create", "--dry-run=server", "-f", "-", body=cron).returncode == 0  # the admin may
    # the deployer may apply CronJobs (a base or chart brings them) but the policy refuses this one
    refused_by_policy(cron, user, "ship's deployer may not run a privileged container")


def test_what_ship_does_still_goes_through(deployer):
    target, user = deployer
    refused_by_policy(deployment("escape", target, hostPID=True), user, "host's PID")  # the policy is loaded
    ok = dry_run(deployment("hellok8s", target), user)
    assert ok.returncode == 0, ok.stderr
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": SECRET, "namespace": target},
              "stringData": {"DB_PASSWORD": "x"}}
    made = kubectl("create", "-f", "-", body=secret, as_user=user)
    assert made.returncode == 0, made.stderr
    read = kubectl("get", "secret", SECRET, "-n", target, "-o", "yaml", as_user=user)
    assert read.returncode == 0 and yaml.safe_load(read.stdout)["metadata"]["name"] == SECRET
