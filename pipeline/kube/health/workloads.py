"""Health of workloads by `kubectl rollout status` rules: Deployments, ReplicaSets, StatefulSets,
DaemonSets (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go, with Argo CD's additions).
Pure.
"""

from __future__ import annotations

from typing import Any

from pipeline.kube.health.model import (
    Health,
    HealthCode,
    _condition,
    _counts,
    _int,
    _observed,
    verdicts_on,
)


def assess_deployment(obj: dict[str, Any]) -> Health:
    """The `kubectl rollout status` verdict on a Deployment, plus Suspended when paused."""
    name = (obj.get("metadata") or {}).get("name", "")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    updated = _int(status.get("updatedReplicas"))
    ready = _int(status.get("readyReplicas"))
    available = _int(status.get("availableReplicas"))
    total = _int(status.get("replicas"))
    counts = _counts(updated, ready, desired)
    health = verdicts_on(obj)
    if spec.get("paused"):
        return health(HealthCode.SUSPENDED, f'deployment "{name}" is paused ({counts})', "Paused")
    # Until the controller has seen the current spec, every count below describes the old one.
    if not _observed(obj):
        return health(
            HealthCode.PROGRESSING, f"waiting for rollout to be observed ({counts})", "NotObserved"
        )
    cond = _condition(obj, "Progressing")
    if cond and cond.get("reason") == "ProgressDeadlineExceeded":
        return health(
            HealthCode.DEGRADED,
            f'deployment "{name}" exceeded its progress deadline ({counts})',
            "ProgressDeadlineExceeded",
        )
    if updated < desired:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {desired} new replicas have been "
            f"updated ({counts})",
            "Updating",
        )
    # Old pods still running means traffic may still reach the previous version.
    if total > updated:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for rollout to finish: {total - updated} old replicas are pending "
            f"termination ({counts})",
            "OldReplicas",
        )
    if available < updated:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
            f"available ({counts})",
            "NotAvailable",
        )
    return health(HealthCode.HEALTHY, counts)


def assess_replicaset(obj: dict[str, Any]) -> Health:
    """Desired against available replicas, once the controller has observed the spec."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    ready = _int(status.get("readyReplicas"))
    available = _int(status.get("availableReplicas"))
    counts = f"{ready}/{desired} ready, {available}/{desired} available"
    health = verdicts_on(obj)
    if not _observed(obj):
        return health(
            HealthCode.PROGRESSING, f"waiting for rollout to be observed ({counts})", "NotObserved"
        )
    # ReplicaFailure is how the controller says it cannot create pods at all (quota,
    # admission webhook, missing service account): waiting longer will not help.
    cond = _condition(obj, "ReplicaFailure")
    if cond and cond.get("status") == "True":
        detail = cond.get("message") or "cannot create pods"
        return health(
            HealthCode.DEGRADED, f"{detail} ({counts})", cond.get("reason") or "ReplicaFailure"
        )
    if available < desired:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {desired} new replicas are "
            f"available ({counts})",
            "NotAvailable",
        )
    return health(HealthCode.HEALTHY, counts)


def assess_statefulset(obj: dict[str, Any]) -> Health:
    """The `kubectl rollout status` verdict on a StatefulSet (OnDelete counts as done)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    ready = _int(status.get("readyReplicas"))
    updated = _int(status.get("updatedReplicas"))
    counts = _counts(updated, ready, desired)
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type") or "RollingUpdate"  # the API server's default
    health = verdicts_on(obj)
    # kubectl also treats observedGeneration 0 as unobserved: a new StatefulSet reports it
    # before its controller has run once.
    if _int(status.get("observedGeneration")) == 0 or not _observed(obj):
        return health(
            HealthCode.PROGRESSING, f"waiting for rollout to be observed ({counts})", "NotObserved"
        )
    if ready < desired:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for {desired - ready} pods to be ready ({counts})",
            "NotReady",
        )
    if kind == "RollingUpdate" and strategy.get("rollingUpdate") is not None:
        # A partition deliberately holds the lower ordinals on the old revision (a staged
        # rollout), so only the pods at or above it have to be updated.
        partition = strategy["rollingUpdate"].get("partition")
        if partition is not None and updated < desired - _int(partition):
            return health(
                HealthCode.PROGRESSING,
                f"Waiting for partitioned roll out to finish: {updated} out of "
                f"{desired - _int(partition)} new pods have been updated ({counts})",
                "Updating",
            )
        return health(HealthCode.HEALTHY, counts)
    # With OnDelete the controller never replaces pods by itself, so there is no rollout to
    # wait for; kubectl refuses to judge, Argo CD calls it healthy once pods are ready.
    if kind == "OnDelete":
        return health(HealthCode.HEALTHY, f"{counts} (OnDelete: pods update when deleted)")
    if status.get("updateRevision") != status.get("currentRevision"):
        return health(
            HealthCode.PROGRESSING,
            f"waiting for rolling update to complete {updated} pods at revision "
            f"{status.get('updateRevision')} ({counts})",
            "Updating",
        )
    return health(HealthCode.HEALTHY, counts)


def assess_daemonset(obj: dict[str, Any]) -> Health:
    """The `kubectl rollout status` verdict on a DaemonSet (OnDelete counts as done)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    ready = _int(status.get("numberReady"))
    available = _int(status.get("numberAvailable"))
    counts = _counts(updated, ready, desired)
    kind = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
    health = verdicts_on(obj)
    if not _observed(obj):
        return health(
            HealthCode.PROGRESSING, f"waiting for rollout to be observed ({counts})", "NotObserved"
        )
    # As for StatefulSets: OnDelete has no rollout of its own to wait for.
    if kind == "OnDelete":
        return health(HealthCode.HEALTHY, f"{counts} (OnDelete: pods update when deleted)")
    if updated < desired:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {desired} new pods have been "
            f"updated ({counts})",
            "Updating",
        )
    if available < desired:
        return health(
            HealthCode.PROGRESSING,
            f"Waiting for rollout to finish: {available} of {desired} updated pods are "
            f"available ({counts})",
            "NotAvailable",
        )
    return health(HealthCode.HEALTHY, counts)
