"""Health of Jobs and CronJobs (gitops-engine pkg/health/health_job.go, and Argo CD's CronJob
check). Pure.

A Job is done when the Job controller says so: its Complete condition is Healthy, its Failed
condition (backoffLimit or activeDeadlineSeconds exhausted) or FailureTarget (the controller has
decided to fail it and is cleaning up) is Degraded, Suspended is Suspended; anything else is still
running. A CronJob is a schedule: Healthy unless suspended, or unless the last Job it started
failed after its last success (Degraded), which is what a user sees as "the nightly job broke".
"""

from __future__ import annotations

from typing import Any

from pipeline import names
from pipeline.kube.health.model import Health, HealthCode, _condition, _int, subject, verdicts_on


def _true(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    cond = _condition(obj, type_)
    return cond if cond and cond.get("status") == "True" else None


def assess_job(obj: dict[str, Any]) -> Health:
    """Complete → Healthy; Failed or FailureTarget → Degraded (the controller's reason and
    message); Suspended → Suspended; else Progressing with the pod counts."""
    status = obj.get("status") or {}
    health = verdicts_on(obj)
    for failed in ("Failed", "FailureTarget"):
        cond = _true(obj, failed)
        if cond is not None:
            # BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy
            reason = cond.get("reason") or "Failed"
            return health(
                HealthCode.DEGRADED,
                f"job failed: {names.one_line(cond.get('message') or reason)}",
                reason,
            )
    if _true(obj, "Complete") is not None:
        return health(
            HealthCode.HEALTHY, f"job completed ({_int(status.get('succeeded'))} succeeded)"
        )
    if _true(obj, "Suspended") is not None:
        return health(HealthCode.SUSPENDED, "job is suspended", "Suspended")
    counts = (
        f"{_int(status.get('active'))} active, {_int(status.get('succeeded'))} succeeded, "
        f"{_int(status.get('failed'))} failed"
    )
    return health(HealthCode.PROGRESSING, f"job is running ({counts})", "Running")


def assess_cronjob(obj: dict[str, Any]) -> Health:
    """Suspended when `spec.suspend`; Degraded when the last scheduled run is newer than the last
    successful one and no run is active (it failed); else Healthy."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("suspend"):
        return Health(HealthCode.SUSPENDED, "cronjob is suspended", subject(obj), "Suspended")
    last, ok = status.get("lastScheduleTime"), status.get("lastSuccessfulTime")
    # RFC 3339 UTC timestamps from the API server compare correctly as strings.
    if last and not status.get("active") and (ok is None or ok < last):
        return Health(
            HealthCode.DEGRADED,
            f"the run scheduled at {last} did not succeed",
            subject(obj),
            "LastRunFailed",
        )
    return Health(HealthCode.HEALTHY, f"scheduled, last run {last or 'not yet'}", subject(obj))
