"""Smoke tests proving each local part is the real thing: a control plane whose controllers
roll Deployments out, KWOK failure injection, server-side apply conflicts, RBAC, and a build
engine plus registry whose digests check out byte for byte."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from kubernetes import client, watch

pytestmark = pytest.mark.cluster


def deployment(name: str, replicas: int = 3, annotations: dict | None = None, deadline: int = 60,
               image: str = "example.invalid/app:1") -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def wait_deployment(api_client, namespace, name, done, timeout=60):
    apps = client.AppsV1Api(api_client)
    w = watch.Watch()
    for event in w.stream(apps.list_namespaced_deployment, namespace, field_selector=f"metadata.name={name}",
                          timeout_seconds=timeout):
        if done(event["object"]):
            w.stop()
            return event["object"]
    raise AssertionError(f"deployment {namespace}/{name} did not reach the expected state in {timeout}s")


def condition(dep, kind):
    return next((c for c in (dep.status.conditions or []) if c.type == kind), None)


def test_deployment_rolls_out_on_fake_nodes(api_client, namespace):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("web"))
    dep = wait_deployment(api_client, namespace, "web",
                          lambda d: (d.status.available_replicas or 0) == 3 and d.status.observed_generation == 1)
    assert dep.status.updated_replicas == 3 and dep.status.ready_replicas == 3
    assert condition(dep, "Progressing").reason == "NewReplicaSetAvailable"
    rs = apps.list_namespaced_replica_set(namespace).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].kind == "Deployment"
    nodes = {n.metadata.name for n in core.list_node().items}
    assert len(nodes) >= 3
    pods = core.list_namespaced_pod(namespace).items
    assert len(pods) == 3
    assert all(p.spec.node_name in nodes and p.status.phase == "Running" for p in pods)


def test_rolling_update_creates_a_second_replicaset(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("web"))
    wait_deployment(api_client, namespace, "web", lambda d: (d.status.available_replicas or 0) == 3)
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "example.invalid/app:2"}]}}}})
    dep = wait_deployment(api_client, namespace, "web", lambda d: d.status.observed_generation == 2
                          and (d.status.updated_replicas or 0) == 3 and (d.status.available_replicas or 0) == 3
                          and (d.status.replicas or 0) == 3)
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert len(apps.list_namespaced_replica_set(namespace).items) == 2


@pytest.mark.parametrize("marker", [{"annotations": {"ship.dev/simulate": "never-ready"}},
                                    {"image": "127.0.0.1:1/app-never-ready:1@sha256:" + "0" * 64}],
                         ids=["annotation", "image"])
def test_never_ready_ends_in_progress_deadline_exceeded(api_client, namespace, marker):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("stuck", replicas=2, deadline=3, **marker))
    dep = wait_deployment(api_client, namespace, "stuck",
                          lambda d: getattr(condition(d, "Progressing"), "reason", "") == "ProgressDeadlineExceeded")
    assert condition(dep, "Progressing").status == "False"
    assert not dep.status.available_replicas
    pods = core.list_namespaced_pod(namespace).items
    assert pods and all(p.status.phase == "Running" for p in pods)
    assert all(not c.ready for p in pods for c in p.status.container_statuses)


@pytest.mark.parametrize("marker", [{"annotations": {"ship.dev/simulate": "crashloop"}},
                                    {"image": "127.0.0.1:1/app-crashloop:1"}], ids=["annotation", "image"])
def test_crashloop_restarts_pods(api_client, namespace, marker):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("crash", replicas=1, **marker))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace).items
        statuses = [c for p in pods for c in (p.status.container_statuses or [])]
        if statuses and statuses[0].restart_count >= 2:
            assert statuses[0].state.waiting.reason == "CrashLoopBackOff"
            assert statuses[0].last_state.terminated.exit_code == 1
            return
        time.sleep(0.5)
    raise AssertionError("crash-looping pod did not restart twice within 60s")


def test_server_side_apply_conflicts_between_field_managers(api_client, namespace):
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ConflictError

    dyn = DynamicClient(api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": namespace},
            "data": {"color": "blue"}}
    cms.server_side_apply(body=body, name="cfg", namespace=namespace, field_manager="ship")
    other = {**body, "data": {"color": "red"}}
    with pytest.raises(ConflictError) as err:
        cms.server_side_apply(body=other, name="cfg", namespace=namespace, field_manager="someone-else")
    assert err.value.status == 409 and "ship" in err.value.body
    forced = cms.server_side_apply(body=other, name="cfg", namespace=namespace, field_manager="someone-else",
                                   force_conflicts=True)
    assert forced.data.color == "red"
    body2 = {**body, "data": {"size": "L"}}
    obj = cms.server_side_apply(body=body2, name="cfg", namespace=namespace, field_manager="ship")
    managers = {m.manager for m in obj.metadata.managedFields}
    assert {"ship", "someone-else"} <= managers


def test_rbac_is_enforced_for_a_namespaced_service_account(api_client, namespace):
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "deployer"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "read-cm"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "deployer-read-cm"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-cm"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}]})
    token = core.create_namespaced_service_account_token(
        "deployer", namespace, {"spec": {"expirationSeconds": 600}}).status.token
    cfg = client.Configuration()
    cfg.host = api_client.configuration.host
    cfg.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    scoped = client.CoreV1Api(client.ApiClient(cfg))
    deadline = time.monotonic() + 10
    while True:  # the authorizer's cache sees a new binding within a moment
        try:
            scoped.list_namespaced_config_map(namespace)
            break
        except client.ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with pytest.raises(client.ApiException) as err:
        scoped.list_namespaced_config_map("default")
    assert err.value.status == 403
    with pytest.raises(client.ApiException) as err:
        scoped.list_namespaced_secret(namespace)
    assert err.value.status == 403


def test_gateway_api_crds_accept_an_httproute(api_client, namespace):
    from kubernetes.dynamic import DynamicClient

    routes = DynamicClient(api_client).resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
    route = routes.create(namespace=namespace, body={
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [
            {"name": "stable", "port": 3000, "weight": 90}, {"name": "canary", "port": 3000, "weight": 10}]}]}})
    assert [b.weight for b in route.spec.rules[0].backendRefs] == [90, 10]


@pytest.mark.engine
@pytest.mark.registry
def test_scratch_image_builds_pushes_and_digest_matches_manifest_bytes(docker_client, registry, tmp_path):
    import subprocess

    (tmp_path / "main.go").write_text('package main\nfunc main() { println("smoke") }\n')
    (tmp_path / "go.mod").write_text("module smoke\ngo 1.22\n")
    subprocess.run(["go", "build", "-o", "app", "."], cwd=tmp_path, check=True, env={
        **__import__("os").environ, "CGO_ENABLED": "0"})
    (tmp_path / "Dockerfile").write_text('FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n')
    repo = f"{registry}/smoke"
    docker_client.images.build(path=str(tmp_path), tag=f"{repo}:t1", rm=True)
    pushed = None
    for line in docker_client.images.push(repo, tag="t1", stream=True, decode=True):
        assert "error" not in line, line
        if "digest:" in line.get("status", ""):
            pushed = line["status"].split("digest: ")[1].split()[0]
    accept = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    resp = httpx.get(f"http://{registry}/v2/smoke/manifests/t1", headers={"Accept": accept})
    resp.raise_for_status()
    digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
    assert digest == resp.headers["Docker-Content-Digest"] == pushed
    by_digest = httpx.get(f"http://{registry}/v2/smoke/manifests/{digest}", headers={"Accept": accept})
    assert by_digest.status_code == 200 and by_digest.content == resp.content
