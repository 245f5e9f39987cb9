"""Health of pods (naming the container and the kubelet's reason) and of namespaces. Pure."""

from __future__ import annotations

from typing import Any

from pipeline import names
from pipeline.kube.health.model import Health, HealthCode, _condition, _int, subject, verdicts_on

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


def _container_statuses(status: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    # Init containers first: they run first, so their failure is the root cause.
    return [("init container", s) for s in status.get("initContainerStatuses") or []] + [
        ("container", s) for s in status.get("containerStatuses") or []
    ]


def _restarts(n: int) -> str:
    return f"{n} restart" if n == 1 else f"{n} restarts"


def assess_pod(obj: dict[str, Any], max_restarts: int = 3) -> Health:
    """A pod's state, naming the container and kubelet reason when something is wrong."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    phase = status.get("phase") or ""
    containers = _container_statuses(status)
    health = verdicts_on(obj)
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
                line += f" ({names.one_line(waiting['message'])})"
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
                line += f": {names.one_line(cond['message'])}"
                break
        return health(HealthCode.PROGRESSING, line, "NotReady")
    return health(HealthCode.UNKNOWN, f"phase {phase or 'not reported'}")


def _failure(status: dict[str, Any], containers: list[tuple[str, dict[str, Any]]]) -> str:
    if status.get("message"):
        return f"failed: {names.one_line(status['message'])}"
    for label, cs in containers:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("exitCode"):
            detail = names.one_line(term.get("message") or term.get("reason") or "error")
            return f"failed: {label} {cs.get('name')} exited {term['exitCode']} ({detail})"
    return "failed"


def assess_namespace(obj: dict[str, Any]) -> Health:
    """Healthy, except while a Namespace is being deleted."""
    if (obj.get("status") or {}).get("phase") == "Terminating":
        return Health(HealthCode.PROGRESSING, "terminating", subject(obj), "Terminating")
    return Health(HealthCode.HEALTHY, "active", subject(obj))
