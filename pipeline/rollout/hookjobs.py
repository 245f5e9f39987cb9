"""Runs a release's hook Jobs (kube/hooks.py decides which, in what order, under what name).

    for each hook Job, in order: already complete for this release? skip ─► apply ─► wait
                                  failed or timed out ─► a failed GateResult naming the Job

A hook that failed is a failed gate: the caller rejects the release and rolls it back like any
other (gating.py). Pre hooks run before anything of the release is applied, so a failed
migration leaves every Deployment where it was. Polls the Job every `interval` seconds: a hook
is one object and waits are short, where a watch would add a thread for little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.clock import Clock
from pipeline.kube import health
from pipeline.kube import plan as planning
from pipeline.kube.client import Cluster
from pipeline.progress import Progress, quiet
from pipeline.rollout.gate import GateResult

DEFAULT_TIMEOUT = 300.0
DEADLINE_SLACK = 15.0  # the Job controller marks DeadlineExceeded a little after the deadline


@dataclass(frozen=True)
class HookOptions:
    """How long a hook may take and how often to look."""

    timeout: float | None = None  # seconds per Job; None: its activeDeadlineSeconds + slack, else DEFAULT_TIMEOUT
    interval: float = 1.0  # seconds between looks at a running Job


def timeout_for(job: dict[str, Any], options: HookOptions) -> float:
    if options.timeout is not None:
        return options.timeout
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    return float(deadline) + DEADLINE_SLACK if deadline else DEFAULT_TIMEOUT


def run_hooks(cluster: Cluster, env: str, namespace: str, jobs: Sequence[dict[str, Any]],
              options: HookOptions = HookOptions(), progress: Progress = quiet,
              clock: Clock | None = None) -> GateResult | None:
    """Run `jobs` one after another in `namespace`; the first failure as a failed GateResult, or None."""
    clock = clock or Clock()
    start = clock.monotonic()
    for job in jobs:
        owned = planning.with_ownership({**job, "metadata": {**job["metadata"], "namespace": namespace}}, env)
        name = owned["metadata"]["name"]
        live = cluster.get("batch/v1", "Job", name, namespace)
        if live is not None and health.assess_job(live).ok:
            progress(f"hook {planning.subject(owned)} already ran for this release")
            continue
        if live is None:
            progress(f"hook {planning.subject(owned)}: running")
            live = cluster.apply(owned, force=True)
        verdict = _wait(cluster, live, timeout_for(owned, options), options.interval, clock)
        if not verdict.ok:
            reason = "Timeout" if verdict.code is health.HealthCode.PROGRESSING else (verdict.reason or "Failed")
            return GateResult(False, "hook", verdict.subject, reason, verdict.message, clock.monotonic() - start)
        progress(f"hook {verdict.subject}: {verdict.message}")
    return None


def _wait(cluster: Cluster, job: dict[str, Any], timeout: float, interval: float, clock: Clock) -> health.Health:
    """The Job's Health once it is done, or its last Health (Progressing) when `timeout` ran out."""
    meta = job["metadata"]
    began = clock.monotonic()
    while True:
        verdict = health.assess_job({**job, "kind": "Job"})
        if verdict.code in (health.HealthCode.HEALTHY, health.HealthCode.DEGRADED):
            return verdict
        if clock.monotonic() - began >= timeout:
            return health.Health(health.HealthCode.PROGRESSING,
                                 f"not done after {timeout:.0f}s ({verdict.message})", verdict.subject, "Timeout")
        clock.sleep(interval)
        job = cluster.get("batch/v1", "Job", meta["name"], meta["namespace"]) or job
