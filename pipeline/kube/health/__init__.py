"""Health of live Kubernetes objects: is a rollout done, still going, stuck or broken?

Each function takes one object as the API returns it (a plain dict with camelCase keys, as
decoded from JSON) and returns a Health. The workload rules are the ones `kubectl rollout
status` applies (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go), with Argo CD's
additions (gitops-engine pkg/health): Suspended for a paused Deployment, Degraded for a
Deployment past its progress deadline and for pods stuck in CrashLoopBackOff or an image pull.

Everything here is pure: it never talks to a cluster, imports no Kubernetes client and does
no I/O. Fetching objects and deciding how long to wait belong to the caller (the gate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.kube.health.jobs import assess_cronjob, assess_job
from pipeline.kube.health.model import Health, HealthCode, subject, worst
from pipeline.kube.health.pods import assess_namespace, assess_pod
from pipeline.kube.health.workloads import (
    assess_daemonset,
    assess_deployment,
    assess_replicaset,
    assess_statefulset,
)

__all__ = [
    "Health",
    "HealthCode",
    "assess",
    "assess_cronjob",
    "assess_daemonset",
    "assess_deployment",
    "assess_job",
    "assess_namespace",
    "assess_pod",
    "assess_replicaset",
    "assess_statefulset",
    "subject",
    "worst",
]


def _no_checks(obj: dict[str, Any]) -> Health:
    # These kinds take effect as soon as the API server stores them; there is nothing to await.
    return Health(HealthCode.HEALTHY, "no health checks for this kind", subject(obj))


# Kind -> (API groups it must come from, assessor). The group matters because CRDs reuse
# built-in kind names (a Knative Service is kind "Service"), and calling one of those healthy
# would hide a real rollout. Objects without apiVersion (list items) are trusted by kind.
_ASSESSORS: dict[str, tuple[frozenset[str], Callable[[dict[str, Any]], Health]]] = {
    "Deployment": (frozenset({"apps"}), assess_deployment),
    "ReplicaSet": (frozenset({"apps"}), assess_replicaset),
    "StatefulSet": (frozenset({"apps"}), assess_statefulset),
    "DaemonSet": (frozenset({"apps"}), assess_daemonset),
    "Job": (frozenset({"batch"}), assess_job),
    "CronJob": (frozenset({"batch"}), assess_cronjob),
    "Pod": (frozenset({""}), assess_pod),
    "Namespace": (frozenset({""}), assess_namespace),
    "Service": (frozenset({""}), _no_checks),
    "ConfigMap": (frozenset({""}), _no_checks),
    "Secret": (frozenset({""}), _no_checks),
    "ServiceAccount": (frozenset({""}), _no_checks),
    "Role": (frozenset({"rbac.authorization.k8s.io"}), _no_checks),
    "RoleBinding": (frozenset({"rbac.authorization.k8s.io"}), _no_checks),
    "Ingress": (frozenset({"networking.k8s.io", "extensions"}), _no_checks),
    "HTTPRoute": (frozenset({"gateway.networking.k8s.io"}), _no_checks),
}


def assess(obj: dict[str, Any]) -> Health | None:
    """The Health of any object whose kind ship knows; None for every other kind."""
    entry = _ASSESSORS.get(obj.get("kind") or "")
    if entry is None:
        return None
    groups, assessor = entry
    api_version = obj.get("apiVersion")
    if api_version is not None:
        group = api_version.rpartition("/")[0]  # "apps/v1" -> "apps", "v1" -> ""
        if group not in groups:
            return None
    return assessor(obj)
