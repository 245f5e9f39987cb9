"""The deployer's Role and admission policies as `ship rbac` prints them, and the Pod Security
labels on the Namespace ship writes (issue 27, item 5). Pure, and one sync on the in-memory cluster."""

from __future__ import annotations

from pipeline import names, yamlsafe
from pipeline.commands import deploy, inspect
from pipeline.kube import rbac
from pipeline.kube.services import proxied_services
from tests.fakes import GOOD, fake_context, fake_project


def rules_for(objects: list[dict], resource: str) -> list[dict]:
    role = next(o for o in objects if o["kind"] == "Role")
    return [r for r in role["rules"] if resource in r["resources"]]


def test_secrets_get_patch_and_delete_only_by_name_and_never_list_or_watch():
    objects = rbac.deployer_objects("hk-dev", environment="dev", secrets=["hellok8s-secrets"])
    secrets = rules_for(objects, "secrets")
    assert {(tuple(r["verbs"]), tuple(r.get("resourceNames", ()))) for r in secrets} >= {
        (("create",), ()), (("get", "patch", "delete"), ("hellok8s-secrets",) if not getattr(names, "PULL_SECRET", None)
                            else tuple(sorted({"hellok8s-secrets", names.PULL_SECRET})))}
    assert not any(v in r["verbs"] for r in secrets for v in ("list", "watch", "update", "*"))
    assert all(r.get("resourceNames") for r in secrets if "delete" in r["verbs"])


def test_no_secret_rule_without_names_since_an_empty_list_means_every_name():
    assert [r for r in rbac.scoped_rules("dev", []) if "secrets" in r["resources"]] == []


def test_the_pull_secret_is_among_the_secrets_the_deployer_may_patch():
    assert rbac.secret_names([]) == [names.PULL_SECRET]


def test_no_serviceaccount_deletes_and_only_ships_own_lease():
    objects = rbac.deployer_objects("hk-dev", environment="dev")
    assert all("delete" not in r["verbs"] for r in rules_for(objects, "serviceaccounts"))
    leases = rules_for(objects, "leases")
    assert {(tuple(r["verbs"]), tuple(r.get("resourceNames", ()))) for r in leases} == {
        (("create",), ()), (("get", "update", "delete"), ("ship-lock-dev",))}


def test_the_service_account_may_live_in_another_namespace():
    objects = rbac.deployer_objects("hk-dev", "deployer", "ci", environment="dev")
    sa, _, binding = objects
    assert sa["metadata"]["namespace"] == "ci" and binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]
    policies = rbac.admission_objects("hk-dev", "deployer", "ci")
    assert {p["spec"]["matchConditions"][0]["expression"] for p in policies if p["kind"] == "ValidatingAdmissionPolicy"} \
        == {"request.userInfo.username == 'system:serviceaccount:ci:deployer'"}


def test_ship_rbac_prints_the_role_with_the_apps_secrets_and_the_admission_policies(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "x")
    fake_project(tmp_path)
    ctx, _, _ = fake_context(tmp_path, [])
    docs = yamlsafe.loads_all(inspect.rbac(ctx, "dev", "ship-deployer").text(), "rbac")
    kinds = [d["kind"] for d in docs]
    assert kinds[:4] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]  # the Namespace first: a fresh cluster
    assert docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert kinds.count("ValidatingAdmissionPolicy") == kinds.count("ValidatingAdmissionPolicyBinding") == 5
    by_name = next(r for r in rules_for(docs, "secrets") if r.get("resourceNames"))
    assert "hellok8s-secrets" in by_name["resourceNames"]
    pods = next(d for d in docs if d["metadata"]["name"] == "ship-deployer-hk-dev-pods" and d["kind"].endswith("Policy"))
    assert "'default', 'hellok8s'" in pods["spec"]["validations"][3]["expression"]
    ctx.close()


def test_the_namespace_ship_writes_carries_pod_security_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "x")
    fake_project(tmp_path)
    ctx, cluster, _ = fake_context(tmp_path, [])
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    labels = cluster.get("v1", "Namespace", "hk-dev")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert names.pod_security_labels("none") == {}
    ctx.close()


def test_the_services_the_analysis_proxies_to_in_other_namespaces():
    urls = ["http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc.cluster.local:9090/",
            "http://metrics.{namespace}.svc:8080", "http://{service}.mon.svc:9090", "https://thanos.example.com",
            "http://vm.observability.svc/"]
    assert proxied_services(urls, "shop-prod") == [("monitoring", "prometheus", "9090"), ("observability", "vm", "80")]


def test_the_deployer_may_get_the_prometheus_service_and_its_proxy_by_name_only():
    objects = rbac.proxy_objects([("monitoring", "prometheus", "9090"), ("monitoring", "thanos", "web")], "shop-prod",
                                 subject_namespace="ci")
    role, binding = objects
    assert (role["kind"], role["metadata"]["namespace"], role["metadata"]["name"]) == ("Role", "monitoring",
                                                                                         "ship-deployer-shop-prod")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "resourceNames": ["prometheus", "thanos"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services/proxy"],
         "resourceNames": ["prometheus", "prometheus:9090", "thanos", "thanos:web"], "verbs": ["get"]}]
    assert binding["roleRef"]["name"] == "ship-deployer-shop-prod" and binding["metadata"]["namespace"] == "monitoring"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ship-deployer", "namespace": "ci"}]
    assert rbac.proxy_objects([], "shop-prod") == []


def test_ship_rbac_grants_the_prometheus_of_the_canary_analysis_and_dev_nothing_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "x")
    fake_project(tmp_path)
    cfg = tmp_path / "ship.yaml"
    canary = 'canary: {router: gateway, host: "{app}.example.com", interval: 1s,'
    assert canary in cfg.read_text()
    cfg.write_text(cfg.read_text().replace(canary, canary + " traffic: {provider: traefik, prometheus: "
                                                            "'http://prometheus.monitoring.svc:9090'},"))
    ctx, _, _ = fake_context(tmp_path, [])
    for env, expected in (("prod", [("Role", "monitoring"), ("RoleBinding", "monitoring")]), ("dev", [])):
        docs = yamlsafe.loads_all(inspect.rbac(ctx, env, "ship-deployer").text(), "rbac")
        own = docs[0]["metadata"]["name"]
        assert [(d["kind"], d["metadata"]["namespace"]) for d in docs
                if d["metadata"].get("namespace") not in (None, own)] == expected
    ctx.close()
