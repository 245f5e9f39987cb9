"""The deployer's Role and admission policies as `ship rbac` prints them, and the Pod Security
labels on the Namespace ship writes (issue 27, item 5). Pure, and one sync on the in-memory cluster."""

from __future__ import annotations

from pipeline import names
from pipeline.commands import deploy, inspect
from pipeline import yamlsafe
from pipeline.kube import rbac
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
    deploy.release(ctx, "dev", None, image=GOOD)
    labels = cluster.get("v1", "Namespace", "hk-dev")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert names.pod_security_labels("none") == {}
    ctx.close()
