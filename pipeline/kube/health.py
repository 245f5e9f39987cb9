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

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable


class HealthCode(str, Enum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Health:
    """The verdict on one object."""

    code: HealthCode
    message: str  # one human line, e.g. "2/3 updated, 1/3 ready"
    subject: str = ""  # "Deployment/<namespace>/<name>", or "Namespace/<name>" when cluster-scoped
    reason: str = ""  # machine reason, e.g. "ProgressDeadlineExceeded", "CrashLoopBackOff"

    @property
    def ok(self) -> bool:
        return self.code is HealthCode.HEALTHY


# Higher is worse. Suspended ranks above Unknown because a paused rollout is a known,
# deliberate state that still blocks a release, while Unknown usually clears on the next look.
_SEVERITY = {
    HealthCode.HEALTHY: 0,
    HealthCode.UNKNOWN: 1,
    HealthCode.SUSPENDED: 2,
    HealthCode.PROGRESSING: 3,
    HealthCode.DEGRADED: 4,
}

# Waiting reasons from which a container does not recover without a change to the pod spec,
# the image or the registry. The kubelet reports them as waiting, not failed, so without this
# list a broken rollout would look like a slow one until its progress deadline.
_FATAL_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def subject(obj: dict) -> str:
    """`Kind/namespace/name`, or `Kind/name` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    parts = [obj.get("kind") or "", meta.get("namespace") or "", meta.get("name") or ""]
    return "/".join(p for p in parts if p)


def worst(healths: Iterable[Health]) -> Health | None:
    """The most severe Health (the first one of that severity), or None if there are none."""
    found: Health | None = None
    for health in healths:
        if found is None or _SEVERITY[health.code] > _SEVERITY[found.code]:
            found = health
    return found


def _int(value: Any) -> int:
    # The API omits zero-valued status counters (omitempty), so absent means 0.
    return int(value) if value is not None else 0


def _condition(obj: dict, type_: str) -> dict | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def _observed(obj: dict) -> bool:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    return _int(meta.get("generation")) <= _int(status.get("observedGeneration"))


def _counts(updated: int, ready: int, desired: int) -> str:
    return f"{updated}/{desired} updated, {ready}/{desired} ready"


def assess_deployment(obj: dict) -> Health:
    """The `kubectl rollout status` verdict on a Deployment, plus Suspended when paused."""
    name = (obj.get("metadata") or {}).get("name", "")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    updated = _int(status.get("updatedReplicas"))
    ready = _int(status.get("readyReplicas"))
    available = _int(status.get("availableReplicas"))
    total = _int(status.get("replicas"))
    counts = _counts(updated, ready, desired)

    def health(code: HealthCode, message: str, reason: str = "") -> Health:
        return Health(code, message, subject(obj), reason)

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


def assess_replicaset(obj: dict) -> Health:
    """Desired against available replicas, once the controller has observed the spec."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    ready = _int(status.get("readyReplicas"))
    available = _int(status.get("availableReplicas"))
    counts = f"{ready}/{desired} ready, {available}/{desired} available"

    def health(code: HealthCode, message: str, reason: str = "") -> Health:
        return Health(code, message, subject(obj), reason)

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


def assess_statefulset(obj: dict) -> Health:
    """The `kubectl rollout status` verdict on a StatefulSet (OnDelete counts as done)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    ready = _int(status.get("readyReplicas"))
    updated = _int(status.get("updatedReplicas"))
    counts = _counts(updated, ready, desired)
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type") or "RollingUpdate"  # the API server's default

    def health(code: HealthCode, message: str, reason: str = "") -> Health:
        return Health(code, message, subject(obj), reason)

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


def assess_daemonset(obj: dict) -> Health:
    """The `kubectl rollout status` verdict on a DaemonSet (OnDelete counts as done)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    ready = _int(status.get("numberReady"))
    available = _int(status.get("numberAvailable"))
    counts = _counts(updated, ready, desired)
    kind = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"

    def health(code: HealthCode, message: str, reason: str = "") -> Health:
        return Health(code, message, subject(obj), reason)

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


def _container_statuses(status: dict) -> list[tuple[str, dict]]:
    # Init containers first: they run first, so their failure is the root cause.
    return [("init container", s) for s in status.get("initContainerStatuses") or []] + [
        ("container", s) for s in status.get("containerStatuses") or []
    ]


def _restarts(n: int) -> str:
    return f"{n} restart" if n == 1 else f"{n} restarts"


def assess_pod(obj: dict, max_restarts: int = 3) -> Health:
    """A pod's state, naming the container and kubelet reason when something is wrong."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    phase = status.get("phase") or ""
    containers = _container_statuses(status)

    def health(code: HealthCode, message: str, reason: str = "") -> Health:
        return Health(code, message, subject(obj), reason)

    # A pod on its way out (an old replica during a rollout, say) is not the rollout's
    # problem, whatever its containers are doing; judging it would fail gates spuriously.
    if meta.get("deletionTimestamp"):
        return health(HealthCode.PROGRESSING, "terminating", "Terminating")
    if phase == "Failed":
        reason = status.get("reason") or "Failed"  # e.g. "Evicted", "DeadlineExceeded"
        return health(HealthCode.DEGRADED, _failure(status, containers), reason)
    if phase == "Succeeded":
        return health(HealthCode.HEALTHY, "succeeded")

    stuck = []
    for label, cs in containers:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _FATAL_WAITING:
            line = f"{label} {cs.get('name')}: {waiting['reason']}"
            if waiting.get("message"):
                line += f" ({waiting['message']})"
            if _int(cs.get("restartCount")):
                line += f" after {_restarts(_int(cs.get('restartCount')))}"
            stuck.append((waiting["reason"], line))
    if stuck:
        return health(HealthCode.DEGRADED, "; ".join(line for _, line in stuck), stuck[0][0])

    # A container that keeps restarting but is briefly up between crashes would otherwise
    # pass as ready; the restart count is the only lasting trace of it.
    for label, cs in containers:
        count = _int(cs.get("restartCount"))
        if count > max_restarts:
            line = f"{label} {cs.get('name')} restarted {count} times (more than {max_restarts})"
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
            if last:
                line += f", last: {last}"
            return health(HealthCode.DEGRADED, line, "Restarts")

    ready_cond = _condition(obj, "Ready")
    if phase == "Running" and ready_cond and ready_cond.get("status") == "True":
        return health(HealthCode.HEALTHY, "running, ready")
    if phase in ("Running", "Pending"):
        app = [cs for label, cs in containers if label == "container"]
        n_ready = sum(1 for cs in app if cs.get("ready"))
        # Before scheduling there are no container statuses; the spec still says how many.
        n_total = len((obj.get("spec") or {}).get("containers") or app)
        line = f"{phase.lower()}, {n_ready}/{n_total} containers ready"
        # The scheduler and the kubelet explain themselves on the condition that is False
        # (e.g. "0/3 nodes are available: insufficient cpu"); that is what a user needs.
        for cond in status.get("conditions") or []:
            if cond.get("status") == "False" and cond.get("message"):
                line += f": {cond['message']}"
                break
        return health(HealthCode.PROGRESSING, line, "NotReady")
    return health(HealthCode.UNKNOWN, f"phase {phase or 'not reported'}")


def _failure(status: dict, containers: list[tuple[str, dict]]) -> str:
    if status.get("message"):
        return f"failed: {status['message']}"
    for label, cs in containers:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("exitCode"):
            detail = term.get("message") or term.get("reason") or "error"
            return f"failed: {label} {cs.get('name')} exited {term['exitCode']} ({detail})"
    return "failed"


def assess_namespace(obj: dict) -> Health:
    """Healthy, except while a Namespace is being deleted."""
    if (obj.get("status") or {}).get("phase") == "Terminating":
        return Health(HealthCode.PROGRESSING, "terminating", subject(obj), "Terminating")
    return Health(HealthCode.HEALTHY, "active", subject(obj))


def _no_checks(obj: dict) -> Health:
    # These kinds take effect as soon as the API server stores them; there is nothing to await.
    return Health(HealthCode.HEALTHY, "no health checks for this kind", subject(obj))


# Kind -> (API groups it must come from, assessor). The group matters because CRDs reuse
# built-in kind names (a Knative Service is kind "Service"), and calling one of those healthy
# would hide a real rollout. Objects without apiVersion (list items) are trusted by kind.
_ASSESSORS: dict[str, tuple[frozenset[str], Callable[[dict], Health]]] = {
    "Deployment": (frozenset({"apps"}), assess_deployment),
    "ReplicaSet": (frozenset({"apps"}), assess_replicaset),
    "StatefulSet": (frozenset({"apps"}), assess_statefulset),
    "DaemonSet": (frozenset({"apps"}), assess_daemonset),
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


def assess(obj: dict) -> Health | None:
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
