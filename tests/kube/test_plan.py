"""Reconcile planning and secrets, pure: no cluster, no files but the YAML fixtures."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
import yaml

from pipeline.config import App, Environment
from pipeline.errors import SecretError
from pipeline.gitops.secrets import secret_for
from pipeline.kube import plan
from pipeline.kube.normalize import REDACTED, normalized, redact
from pipeline.kube.ownership import (
    ENV_LABEL,
    HASH_ANNOTATION,
    MANAGED_BY,
    drifted,
    is_subset,
    with_ownership,
)
from pipeline.kube.plan import (
    DEFAULT_RANK,
    Action,
    ChangeSetEntry,
    PlanOptions,
    key,
    kubectl_ref,
    make_plan,
    referenced_configmaps,
    stage_of,
    subject,
    validate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plan"
ENV, NS = "dev", "hellok8s-dev"


def load(name: str) -> list[dict]:
    return list(yaml.safe_load_all((FIXTURES / f"{name}.yaml").read_text()))


def obj(kind: str, name: str, api: str = "v1", ns: str | None = NS, **fields) -> dict:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": api, "kind": kind, "metadata": meta, **fields}


def cm(name: str, **data) -> dict:
    return obj("ConfigMap", name, data=data or {"MESSAGE": "hi"})


def secret(name: str = "hellok8s-secrets", **data) -> dict:
    return obj("Secret", name, type="Opaque", data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})


def owned(o: dict, env: str = ENV) -> dict:
    return with_ownership(o, env)


def live_of(desired: dict, env: str = ENV) -> dict:
    """What the server returns after ship applied `desired`: ownership, hash, server fields."""
    out = with_ownership(desired, env)
    out["metadata"].update(uid="u-1", resourceVersion="1", creationTimestamp="2026-11-24T10:00:00Z")
    return out


def by_key(*objects: dict) -> dict:
    return {key(o): o for o in objects}


def names(objects: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


# --- key, subject, kubectl_ref -------------------------------------------------------------

def test_key_is_group_kind_namespace_name():
    assert key(obj("Deployment", "hellok8s", api="apps/v1")) == ("apps", "Deployment", NS, "hellok8s")


def test_key_of_core_cluster_scoped_object_has_empty_group_and_namespace():
    assert key(obj("Namespace", NS, ns=None)) == ("", "Namespace", "", NS)


@pytest.mark.parametrize("o, expected", [
    (obj("Deployment", "hellok8s", api="apps/v1"), "Deployment/hellok8s-dev/hellok8s"),
    (obj("Namespace", NS, ns=None), "Namespace/hellok8s-dev"),
    (obj("ClusterRole", "reader", api="rbac.authorization.k8s.io/v1", ns=None), "ClusterRole/reader"),
])
def test_subject(o, expected):
    assert subject(o) == expected


@pytest.mark.parametrize("o, expected", [
    (obj("Deployment", "hellok8s", api="apps/v1"), "deployment.apps/hellok8s"),
    (obj("ConfigMap", "x"), "configmap/x"),
    (obj("HTTPRoute", "r", api="gateway.networking.k8s.io/v1"), "httproute.gateway.networking.k8s.io/r"),
    (obj("Namespace", NS, ns=None), "namespace/hellok8s-dev"),
])
def test_kubectl_ref(o, expected):
    assert kubectl_ref(o) == expected


# --- stages --------------------------------------------------------------------------------

def test_rank_orders_namespace_config_services_workloads_routing():
    ranks = [stage_of({"kind": k}) for k in ("Namespace", "ConfigMap", "Service", "Deployment", "Ingress")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 5


@pytest.mark.parametrize("kind, stage", [
    ("Namespace", 0),
    ("ConfigMap", 1), ("Secret", 1), ("ServiceAccount", 1), ("Role", 1),
    ("Service", 2),
    ("Deployment", 3),
    ("Ingress", 4), ("HTTPRoute", 4),
])
def test_stage_of(kind, stage):
    assert stage_of({"kind": kind}) == stage
    assert plan.STAGE_NAMES[stage]  # every rank names a stage


def test_unknown_kind_gets_default_rank():
    assert stage_of({"kind": "Certificate"}) == DEFAULT_RANK


# --- with_ownership ------------------------------------------------------------------------

def test_with_ownership_adds_labels_and_hash():
    out = with_ownership(cm("c"), ENV)
    assert out["metadata"]["labels"] == {MANAGED_BY: "ship", ENV_LABEL: "dev"}
    assert out["metadata"]["annotations"][HASH_ANNOTATION]


def test_with_ownership_keeps_existing_labels():
    o = cm("c")
    o["metadata"]["labels"] = {"app.kubernetes.io/name": "hellok8s"}
    assert with_ownership(o, ENV)["metadata"]["labels"]["app.kubernetes.io/name"] == "hellok8s"


def test_with_ownership_does_not_mutate_its_input():
    o = cm("c")
    before = copy.deepcopy(o)
    with_ownership(o, ENV)
    assert o == before


def applied_hash(o: dict, env: str = ENV) -> str:
    return with_ownership(o, env)["metadata"]["annotations"][HASH_ANNOTATION]


def test_same_input_gives_same_hash():
    assert applied_hash(cm("c", A="1", B="2")) == applied_hash(cm("c", B="2", A="1"))


def test_hash_is_stable_when_applied_twice():
    once = with_ownership(cm("c"), ENV)
    assert with_ownership(once, ENV) == once


@pytest.mark.parametrize("other", [cm("c", MESSAGE="bye"), cm("d"), cm("c", MESSAGE="hi", EXTRA="x")])
def test_changed_field_gives_different_hash(other):
    assert applied_hash(cm("c", MESSAGE="hi")) != applied_hash(other)


def test_hash_depends_on_environment():
    assert applied_hash(cm("c"), "dev") != applied_hash(cm("c"), "uat")


def test_secret_hash_does_not_depend_on_values():
    assert applied_hash(secret(DB_PASSWORD="one")) == applied_hash(secret(DB_PASSWORD="two"))


def test_secret_hash_depends_on_keys():
    assert applied_hash(secret(DB_PASSWORD="one")) != applied_hash(secret(DB_PASSWORD="one", API_KEY="k"))


def test_secret_hash_annotation_holds_no_value():
    out = with_ownership(secret(DB_PASSWORD="hunter2"), ENV)
    assert "hunter2" not in str(out["metadata"]) and out["data"]["DB_PASSWORD"] not in str(out["metadata"])


# --- is_subset / drifted -------------------------------------------------------------------

def deployment_pair() -> tuple[dict, dict]:
    """(what ship applies, what the server returns for it) from the fixtures."""
    [desired], [live] = load("deployment"), load("deployment-live")
    desired = with_ownership(desired, ENV)
    live["metadata"]["annotations"][HASH_ANNOTATION] = desired["metadata"]["annotations"][HASH_ANNOTATION]
    return desired, live


def test_server_defaults_and_status_are_not_drift():
    desired, live = deployment_pair()
    assert not drifted(desired, live)


def test_changed_value_in_live_is_drift():
    desired, live = deployment_pair()
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "hand-edited"
    assert drifted(desired, live)


def test_list_of_different_length_is_drift():
    desired, live = deployment_pair()
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "sidecar"})
    assert drifted(desired, live)


def test_changed_hash_is_drift_even_if_rest_is_subset():
    desired, live = deployment_pair()
    del desired["spec"]["minReadySeconds"]  # git removed a field: still a subset of live
    desired = with_ownership(desired, ENV)
    assert is_subset({k: v for k, v in desired.items() if k != "metadata"}, live)
    assert drifted(desired, live)


def test_live_without_hash_is_drift():
    desired, live = deployment_pair()
    del live["metadata"]["annotations"][HASH_ANNOTATION]
    assert drifted(desired, live)


@pytest.mark.parametrize("want, have", [
    ({"a": 1}, {"a": 1, "added": "default"}),
    ({"minReadySeconds": 0}, {}),
    ({"paused": False, "name": "", "args": [], "resources": {}, "x": None}, {}),
    ({"replicas": 3}, {"replicas": 3}),
    ({"replicas": 3}, {"replicas": 3.0}),
    ({"port": "8080"}, {"port": 8080}),
    ([{"name": "a"}], [{"name": "a", "protocol": "TCP"}]),
])
def test_is_subset_true(want, have):
    assert is_subset(want, have)


@pytest.mark.parametrize("want, have", [
    ({"replicas": 3}, {"replicas": 2}),
    ({"replicas": 3}, {}),
    ({"args": ["a", "b"]}, {"args": ["a"]}),
    ({"args": ["a"]}, {"args": ["a", "b"]}),
    ({"spec": {"a": 1}}, {"spec": "a"}),
    ({"args": ["a"]}, {"args": "a"}),
])
def test_is_subset_false(want, have):
    assert not is_subset(want, have)


def test_secret_value_changed_in_data_is_drift():
    desired = owned(secret(DB_PASSWORD="new"))
    assert drifted(desired, live_of(secret(DB_PASSWORD="old")))


def test_secret_value_changed_in_string_data_is_drift():
    desired = owned(obj("Secret", "s", stringData={"TOKEN": "new"}))
    live = live_of(obj("Secret", "s", stringData={"TOKEN": "old"}))  # as data, as the server stores it
    assert live["data"] == {"TOKEN": base64.b64encode(b"old").decode()} and "stringData" not in live
    assert drifted(desired, live)


# --- make_plan -----------------------------------------------------------------------------

@pytest.mark.parametrize("o", [
    obj("Namespace", NS, ns=None), cm("c"), obj("Service", "s"), obj("Deployment", "d", api="apps/v1"),
    obj("HTTPRoute", "r", api="gateway.networking.k8s.io/v1"),
])
def test_new_object_is_applied_in_its_stage(o):
    p = make_plan([owned(o)], {}, ENV)
    assert p.stages[stage_of(o)] == [owned(o)]
    assert p.to_apply == [owned(o)] and not p.unchanged


def test_to_apply_is_in_stage_order():
    desired = [owned(o) for o in (obj("Deployment", "d", api="apps/v1"), obj("Service", "s"), cm("c"))]
    assert [o["kind"] for o in make_plan(desired, {}, ENV).to_apply] == ["ConfigMap", "Service", "Deployment"]


def test_unchanged_owned_object_is_skipped():
    p = make_plan([owned(cm("c"))], by_key(live_of(cm("c"))), ENV)
    assert names(p.unchanged) == ["c"] and not p.to_apply


def test_drifted_owned_object_is_applied():
    p = make_plan([owned(cm("c", MESSAGE="new"))], by_key(live_of(cm("c", MESSAGE="old"))), ENV)
    assert names(p.stages[1]) == ["c"] and not p.unchanged


def unowned_live() -> dict:
    return by_key({**cm("c"), "metadata": {"name": "c", "namespace": NS, "uid": "u"}})


def test_unowned_live_object_is_refused():
    p = make_plan([owned(cm("c"))], unowned_live(), ENV)
    assert not p.to_apply and not p.prune
    [message] = p.refused
    assert "ConfigMap/hellok8s-dev/c" in message and "--adopt" in message


def test_object_owned_by_another_environment_is_refused():
    p = make_plan([owned(cm("c"))], by_key(live_of(cm("c"), "uat")), ENV)
    assert len(p.refused) == 1 and not p.to_apply


def test_adopt_applies_unowned_live_object():
    p = make_plan([owned(cm("c"))], unowned_live(), ENV, PlanOptions(adopt=True))
    assert names(p.to_apply) == ["c"] and not p.refused


def test_owned_live_object_not_desired_is_pruned():
    p = make_plan([owned(cm("keep"))], by_key(live_of(cm("keep")), live_of(cm("gone"))), ENV)
    assert names(p.prune) == ["gone"]


def deleting(o: dict) -> dict:
    o["metadata"]["deletionTimestamp"] = "2026-11-24T10:00:00Z"
    return o


@pytest.mark.parametrize("live", [
    live_of(obj("Namespace", NS, ns=None)),
    live_of(cm("other-env"), "uat"),
    {**cm("unowned"), "metadata": {"name": "unowned", "namespace": NS}},
    deleting(live_of(cm("deleting"))),
], ids=["namespace", "other-environment", "not-ship", "being-deleted"])
def test_not_pruned(live):
    p = make_plan([], by_key(live), ENV)
    assert not p.prune and not p.keep


def test_prune_false_prunes_nothing():
    assert not make_plan([], by_key(live_of(cm("gone"))), ENV, PlanOptions(prune=False)).prune


def test_configmap_needed_by_workload_is_kept_not_pruned():
    live = by_key(live_of(cm("hellok8s-config-r1")), live_of(cm("hellok8s-config-r0")))
    p = make_plan([], live, ENV, PlanOptions(needed_configmaps={"hellok8s-config-r1"}))
    assert names(p.keep) == ["hellok8s-config-r1"] and names(p.prune) == ["hellok8s-config-r0"]


def test_needed_name_keeps_only_configmaps():
    p = make_plan([], by_key(live_of(obj("Service", "x"))), ENV, PlanOptions(needed_configmaps={"x"}))
    assert names(p.prune) == ["x"] and not p.keep


# --- referenced_configmaps -----------------------------------------------------------------

def test_referenced_configmaps_from_replicaset_and_pod():
    assert referenced_configmaps(load("workloads")) == {
        "rs-init-envfrom", "rs-envfrom", "rs-keyref", "rs-volume",
        "pod-envfrom", "pod-keyref", "pod-projected",
    }


@pytest.mark.parametrize("kind", ["ReplicaSet", "Pod"])
def test_referenced_configmaps_of_one_workload(kind):
    [workload] = [w for w in load("workloads") if w["kind"] == kind]
    assert all(n.startswith("rs-" if kind == "ReplicaSet" else "pod-") for n in referenced_configmaps([workload]))


def test_a_replicaset_scaled_to_zero_keeps_no_configmap():
    """Old revisions are history, not a reason to keep a ConfigMap past keep_configs."""
    [rs] = [w for w in load("workloads") if w["kind"] == "ReplicaSet"]
    old = {**rs, "spec": {**rs["spec"], "replicas": 0}, "status": {"replicas": 0}}
    draining = {**old, "status": {"replicas": 1}}  # scaled down, its last pod still terminating
    assert referenced_configmaps([old]) == set()
    assert "rs-volume" in referenced_configmaps([draining])


def test_referenced_configmaps_of_nothing():
    assert referenced_configmaps([]) == set()
    assert referenced_configmaps([obj("Pod", "p", spec={"containers": [{"name": "c"}]})]) == set()


# --- validate ------------------------------------------------------------------------------

def namespaced(o: dict) -> bool:
    return o.get("kind") not in ("ClusterRole", "Namespace")


def test_valid_input_has_no_problems():
    desired = [obj("Namespace", NS, ns=None), cm("c"), obj("Deployment", "d", api="apps/v1"),
               obj("Service", "no-namespace-yet", ns=None)]
    assert validate(desired, ENV, NS, namespaced) == []


@pytest.mark.parametrize("bad, named", [
    (obj("Namespace", "kube-system", ns=None), "Namespace/kube-system"),
    (obj("ClusterRole", "admin", api="rbac.authorization.k8s.io/v1", ns=None), "ClusterRole/admin"),
    (obj("ConfigMap", "c", ns="hellok8s-prod"), "ConfigMap/hellok8s-prod/c"),
    (cm("dup"), "ConfigMap/hellok8s-dev/dup"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": NS}}, "Service"),
])
def test_each_problem_names_the_object(bad, named):
    desired = [cm("dup"), cm("ok"), bad]
    [problem] = validate(desired, ENV, NS, namespaced)
    assert problem.startswith(named)


def test_all_problems_are_reported():
    desired = [obj("Namespace", "other", ns=None), cm("c"), cm("c"), obj("ConfigMap", "x", ns="elsewhere")]
    assert len(validate(desired, ENV, NS, namespaced)) == 3


# --- change set ----------------------------------------------------------------------------

@pytest.mark.parametrize("action", list(Action))
def test_change_set_entry_reads_like_kubectl(action):
    entry = ChangeSetEntry("Deployment/dev/hellok8s", "deployment.apps/hellok8s", action)
    assert str(entry) == f"deployment.apps/hellok8s {action.value}"


def test_change_set_entry_to_json():
    entry = ChangeSetEntry("Deployment/dev/hellok8s", "deployment.apps/hellok8s", Action.CONFIGURED)
    assert entry.to_json() == {"subject": "Deployment/dev/hellok8s", "action": "configured"}


# --- normalized / redact -------------------------------------------------------------------

def test_normalized_strips_server_fields_and_status():
    [live] = load("deployment-live")
    out = normalized(live)
    assert "status" not in out
    assert not {"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} & set(out["metadata"])
    assert out["spec"] == live["spec"] and out["metadata"]["labels"] == live["metadata"]["labels"]


def test_normalized_does_not_mutate_its_input():
    [live] = load("deployment-live")
    before = copy.deepcopy(live)
    normalized(live)
    assert live == before


@pytest.mark.parametrize("section", ["data", "stringData"])
def test_secret_values_are_redacted_keys_kept(section):
    s = obj("Secret", "s", **{section: {"DB_PASSWORD": "aHVudGVyMg==", "API_KEY": "x"}})
    for out in (redact(s), normalized(s)):
        assert out[section] == {"DB_PASSWORD": REDACTED, "API_KEY": REDACTED}
    assert s[section]["DB_PASSWORD"] == "aHVudGVyMg=="  # input untouched


def test_redact_drops_last_applied_configuration_of_secret():
    s = secret(DB_PASSWORD="hunter2")
    s["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{...hunter2...}"}
    assert "hunter2" not in str(redact(s))


def test_redact_leaves_non_secrets_alone():
    c = cm("c", PASSWORD="not-a-secret")
    assert redact(c) == cm("c", PASSWORD="not-a-secret")


def test_rotated_secret_value_is_not_same_as_live():
    from pipeline.kube.plan import Plan, key, settle

    new, old = live_of(secret(DB_PASSWORD="new")), live_of(secret(DB_PASSWORD="old"))
    assert drifted(owned(secret(DB_PASSWORD="new")), old)  # planning sees the change ...
    planned = Plan(stages=[[], [new], [], [], []])
    settled = settle(planned, {key(new): new}, {key(old): old}, "dev")  # ... the dry-run comparison must too
    assert settled.to_apply == [new] and settled.unchanged == []


def test_settle_moves_what_the_server_says_is_identical_to_unchanged():
    from pipeline.kube.plan import Plan, key, settle

    same = live_of(secret(DB_PASSWORD="same"))
    planned = Plan(stages=[[], [same], [], [], []])
    settled = settle(planned, {key(same): same}, {key(same): same}, "dev")
    assert settled.to_apply == [] and settled.unchanged == [same] and planned.to_apply == [same]


# --- secrets.secret_for --------------------------------------------------------------------

APP = App(name="hellok8s", path=Path("apps/hellok8s"), image="hellok8s", secrets=("DB_PASSWORD",))
ENVIRONMENT = Environment(name="dev", namespace="hellok8s-dev")
VAR = "SHIP_SECRET_HELLOK8S_DB_PASSWORD"


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_secret_value_from_environ():
    s = secret_for(APP, ENVIRONMENT, None, {VAR: "hunter2"})
    assert (s["kind"], s["metadata"]["name"], s["metadata"]["namespace"]) == ("Secret", "hellok8s-secrets", NS)
    assert s["data"] == {"DB_PASSWORD": b64("hunter2")}


def test_environ_wins_over_live_value():
    live = {"data": {"DB_PASSWORD": b64("old")}}
    assert secret_for(APP, ENVIRONMENT, live, {VAR: "new"})["data"] == {"DB_PASSWORD": b64("new")}


def test_secret_value_kept_from_live_when_not_in_environ():
    live = {"data": {"DB_PASSWORD": b64("from-cluster")}}
    assert secret_for(APP, ENVIRONMENT, live, {})["data"] == {"DB_PASSWORD": b64("from-cluster")}


def test_an_empty_variable_is_unset_as_a_github_secret_nobody_set_is():
    live = {"data": {"DB_PASSWORD": b64("from-cluster")}}
    assert secret_for(APP, ENVIRONMENT, live, {VAR: ""})["data"] == {"DB_PASSWORD": b64("from-cluster")}
    with pytest.raises(SecretError, match=VAR):
        secret_for(APP, ENVIRONMENT, None, {VAR: ""})


@pytest.mark.parametrize("live", [None, {"data": {"OTHER": b64("other-value")}}])
def test_missing_secret_names_the_variable(live):
    with pytest.raises(SecretError, match=VAR):
        secret_for(APP, ENVIRONMENT, live, {"SHIP_SECRET_HELLOK8S_OTHER": "environ-value"})


def test_missing_secret_message_holds_no_value():
    app = App(name="hellok8s", path=Path("apps/hellok8s"), image="hellok8s", secrets=("API_KEY", "DB_PASSWORD"))
    live = {"data": {"OTHER": b64("cluster-value")}}
    with pytest.raises(SecretError) as info:
        secret_for(app, ENVIRONMENT, live, {"SHIP_SECRET_HELLOK8S_API_KEY": "environ-value"})
    message = str(info.value)
    assert VAR in message
    assert not [v for v in ("environ-value", "cluster-value", b64("environ-value"), b64("cluster-value"))
                if v in message]


def test_app_without_secrets_has_no_secret():
    app = App(name="hellok8s", path=Path("apps/hellok8s"), image="hellok8s")
    assert secret_for(app, ENVIRONMENT, None, {VAR: "ignored"}) is None


def test_configmaps_of_a_deployment_pruned_in_the_same_sync_are_not_kept():
    from pipeline.kube.plan import referenced_configmaps

    def rs(name, owner, config):
        return {"kind": "ReplicaSet", "metadata": {"name": name, "ownerReferences": [{"name": owner, "controller": True}]},
                "spec": {"template": {"spec": {"containers": [{"envFrom": [{"configMapRef": {"name": config}}]}]}}}}

    def pod(name, owner, config):
        return {"kind": "Pod", "metadata": {"name": name, "ownerReferences": [{"name": owner, "controller": True}]},
                "spec": {"containers": [{"envFrom": [{"configMapRef": {"name": config}}]}]}}

    live = [rs("web-1", "web", "cfg-r1"), pod("web-1-a", "web-1", "cfg-r1"),
            rs("web-canary-1", "web-canary", "cfg-r2"), pod("web-canary-1-a", "web-canary-1", "cfg-r2")]
    assert referenced_configmaps(live) == {"cfg-r1", "cfg-r2"}
    assert referenced_configmaps(live, {"web-canary"}) == {"cfg-r1"}
