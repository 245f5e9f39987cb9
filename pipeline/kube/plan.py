"""Reconcile planning, pure: pair desired objects with live ones and decide what to do.

    desired (rendered from git) + live (listed from the cluster) ──► Plan
        create / update (in stages) · unchanged (skipped) · prune · refused (not ship's)

No Kubernetes client is imported here; apply.py performs a Plan. Which objects are ship's and
whether one drifted is ownership.py's to say; how an object compares once the server's
bookkeeping is gone, normalize.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pipeline import names
from pipeline.kube.normalize import normalized
from pipeline.kube.ownership import drifted, owned
from pipeline.kube.podspec import configmap_refs, pod_spec_of
from pipeline.refs import subject

# Apply order, lowest first: what others depend on goes before them (lightkube's sort_objects).
RANK = {
    "Namespace": 0,
    "CustomResourceDefinition": 0,
    "ResourceQuota": 1,
    "LimitRange": 1,
    "ServiceAccount": 1,
    "Secret": 1,
    "ConfigMap": 1,
    "Role": 1,
    "RoleBinding": 1,
    "PersistentVolumeClaim": 1,
    "NetworkPolicy": 1,
    "Service": 2,
    "Deployment": 3,
    "StatefulSet": 3,
    "DaemonSet": 3,
    "ReplicaSet": 3,
    "Job": 3,
    "CronJob": 3,
    "HorizontalPodAutoscaler": 3,
    "PodDisruptionBudget": 3,
    "Ingress": 4,
    "HTTPRoute": 4,
    "GRPCRoute": 4,
    "Gateway": 4,
}
DEFAULT_RANK = 3
STAGE_NAMES = ("namespace", "config", "services", "workloads", "routing")
# Kinds listed when looking for objects to prune, besides the kinds git renders now; never Secrets
# (kube/rbac.py).
PRUNABLE = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)
# the deployer may not delete ServiceAccounts (kube/rbac.py)
NEVER_PRUNED = ("Namespace", "ServiceAccount")


class Action(str, Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"


@dataclass(frozen=True)
class ChangeSetEntry:
    subject: str  # Kind/namespace/name
    ref: str  # kubectl style: deployment.apps/hellok8s
    action: Action

    def __str__(self) -> str:
        return f"{self.ref} {self.action.value}"

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "action": self.action.value}


@dataclass
class Plan:
    # to apply
    stages: list[list[dict[str, Any]]] = field(default_factory=lambda: [[] for _ in STAGE_NAMES])
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    prune: list[dict[str, Any]] = field(default_factory=list)
    # would prune, but a ReplicaSet or Pod needs it
    keep: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # exists, not ship's, no --adopt

    @property
    def to_apply(self) -> list[dict[str, Any]]:
        return [obj for stage in self.stages for obj in stage]


def settle(
    plan: Plan,
    dry_run: dict[tuple[str, str, str, str], dict[str, Any]],
    live: dict[tuple[str, str, str, str], dict[str, Any]],
    env: str,
    keep: Set[tuple[str, str, str, str]] = frozenset(),
) -> Plan:
    """The plan once the server's dry-run has spoken: an object whose dry-run result is identical
    to the live one (value normalisation, e.g. CPU "0.5" to "500m", can look like drift locally)
    moves to unchanged. The Namespace stage is kept as it was. Returns a new Plan."""
    stages: list[list[dict[str, Any]]] = [list(plan.stages[0])]
    unchanged = list(plan.unchanged)
    for stage in plan.stages[1:]:
        kept = []
        for obj in stage:
            k = key(obj)
            have = live.get(k)
            if (
                have is not None
                and k in dry_run
                and k not in keep
                and owned(have, env)
                and normalized(dry_run[k], redacted=False) == normalized(have, redacted=False)
            ):
                unchanged.append(obj)
            else:
                kept.append(obj)
        stages.append(kept)
    return Plan(stages, unchanged, list(plan.prune), list(plan.keep), list(plan.refused))


def key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    group = obj.get("apiVersion", "").rpartition("/")[0]
    meta = obj.get("metadata", {})
    return group, obj.get("kind", ""), meta.get("namespace") or "", meta.get("name", "")


def kubectl_ref(obj: dict[str, Any]) -> str:
    group, kind, _, name = key(obj)
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


def stage_of(obj: dict[str, Any]) -> int:
    return RANK.get(obj.get("kind", ""), DEFAULT_RANK)


def referenced_configmaps(
    objects: Iterable[dict[str, Any]], leaving: Set[str] = frozenset()
) -> set[str]:
    """ConfigMap names that Pods and ReplicaSets with replicas use (pods mid-rollout need them),
    except those of Deployments in `leaving` (pruned in the same sync, pods and all). A
    ReplicaSet scaled to 0 is history: a rollback recreates its ConfigMap from the ledger."""
    objects = list(objects)
    going = {
        o["metadata"]["name"]
        for o in objects
        if o.get("kind") == "ReplicaSet" and _owner(o) in leaving
    }
    names: set[str] = set()
    for obj in objects:
        if (
            obj.get("kind") == "ReplicaSet" and (_owner(obj) in leaving or _scaled_to_zero(obj))
        ) or (obj.get("kind") == "Pod" and _owner(obj) in going):
            continue
        names.update(name for _, name in configmap_refs(pod_spec_of(obj)))
    return names


def _scaled_to_zero(replicaset: dict[str, Any]) -> bool:
    return replicaset.get("spec", {}).get("replicas", 1) == 0 and not replicaset.get(
        "status", {}
    ).get("replicas")


def _owner(obj: dict[str, Any]) -> str:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return str(next((r.get("name") for r in refs if r.get("controller")), ""))


def validate(
    desired: list[dict[str, Any]],
    env: str,
    namespace: str,
    namespaced: Callable[[dict[str, Any]], bool],
) -> list[str]:
    """Problems that stop a sync before the cluster is touched: objects outside ENV's namespace."""
    problems = []
    seen: set[tuple[str, str, str, str]] = set()
    for obj in desired:
        k = key(obj)
        if not obj.get("metadata", {}).get("name"):
            problems.append(f"{obj.get('kind', '?')} without metadata.name")
            continue
        if k in seen:
            problems.append(f"{subject(obj)}: rendered twice")
        seen.add(k)
        if obj.get("kind") == "Namespace":
            if obj["metadata"]["name"] != namespace:
                problems.append(
                    f"Namespace/{obj['metadata']['name']}: environment "
                    f"{env} may only hold namespace {namespace}"
                )
            continue
        if not namespaced(obj):
            problems.append(
                f"{subject(obj)}: cluster-scoped; environment {env} "
                f"may only hold objects in namespace {namespace}"
            )
        elif (obj["metadata"].get("namespace") or namespace) != namespace:
            problems.append(
                f"{subject(obj)}: in namespace {obj['metadata']['namespace']}, "
                f"not {env}'s namespace {namespace}"
            )
    return problems


@dataclass(frozen=True)
class PlanOptions:
    """How `make_plan` pairs desired with live objects; every field has a default."""

    adopt: bool = False  # take over same-named objects ship does not manage yet (else: refused)
    prune: bool = True  # plan the deletion of ship's live objects that git no longer renders
    # ConfigMaps still referenced by running pods: kept, not pruned
    needed_configmaps: Set[str] = frozenset()
    # Objects carrying fields of kubectl's managers (fields.py): applied even when otherwise
    # unchanged, so the apply removes those fields.
    takeover: Set[tuple[str, str, str, str]] = frozenset()


def make_plan(
    desired: list[dict[str, Any]],
    live: dict[tuple[str, str, str, str], dict[str, Any]],
    env: str,
    options: PlanOptions = PlanOptions(),
) -> Plan:
    """Pair desired (ownership added) with live objects by (group, kind, namespace, name)."""
    adopt, prune, needed_configmaps, takeover = (
        options.adopt,
        options.prune,
        options.needed_configmaps,
        options.takeover,
    )
    plan = Plan()
    wanted = set()
    for obj in desired:
        k = key(obj)
        wanted.add(k)
        have = live.get(k)
        # A Namespace made beforehand by a platform team is normal: ship only adds its labels.
        if (
            have is not None
            and not owned(have, env)
            and not adopt
            and obj.get("kind") != "Namespace"
        ):
            plan.refused.append(
                f"{subject(obj)}: exists and is not managed by "
                f"ship for {env}; pass --adopt to take it over"
            )
            continue
        if have is None or k in takeover or drifted(obj, have):
            plan.stages[min(stage_of(obj), len(STAGE_NAMES) - 1)].append(obj)
        else:
            plan.unchanged.append(obj)
    if prune:
        for k, obj in sorted(live.items()):
            if k in wanted or not owned(obj, env) or obj.get("kind") in NEVER_PRUNED:
                continue
            if obj["metadata"].get("deletionTimestamp") or (
                obj["metadata"].get("annotations") or {}
            ).get(names.HOOK):
                # being deleted, or a release hook's Job: kept as the record that it ran
                # (kube/hooks.py)
                continue
            if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"] in needed_configmaps:
                plan.keep.append(obj)
            else:
                plan.prune.append(obj)
    return plan
