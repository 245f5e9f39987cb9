"""Runs a release's hook Jobs (kube/hooks.py decides which, in what order, under what name), and
waits for the workloads other than Deployments that a base or chart brings.

    for each hook Job, in order: already complete for this release? skip ─► apply ─► wait
                                  failed or timed out ─► a failed GateResult naming the Job
    StatefulSets, DaemonSets, Jobs, CronJobs a sync applied ─► wait, each by its own health rule

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
from pipeline.kube import health, ownership
from pipeline.kube import plan as planning
from pipeline.kube.api import ClusterApi
from pipeline.progress import Progress, quiet
from pipeline.rollout.gate import GateResult

DEFAULT_TIMEOUT = 300.0
DEADLINE_SLACK = 15.0  # the Job controller marks DeadlineExceeded a little after the deadline


@dataclass(frozen=True)
class HookOptions:
    """How long a hook may take, how often to look, and where to say what happens."""

    # seconds per Job; None: its activeDeadlineSeconds + slack, else DEFAULT_TIMEOUT
    timeout: float | None = None
    interval: float = 1.0  # seconds between looks at a running Job
    progress: Progress = quiet  # where each hook's start and end are told
    clock: Clock | None = None  # None: the real clock


def timeout_for(job: dict[str, Any], options: HookOptions) -> float:
    if options.timeout is not None:
        return options.timeout
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    return float(deadline) + DEADLINE_SLACK if deadline else DEFAULT_TIMEOUT


def run_hooks(
    cluster: ClusterApi,
    env: str,
    namespace: str,
    jobs: Sequence[dict[str, Any]],
    options: HookOptions = HookOptions(),
) -> GateResult | None:
    """Run `jobs` one after another in `namespace`; the first failure as a failed GateResult, or
    None."""
    clock, progress = options.clock or Clock(), options.progress
    start = clock.monotonic()
    for job in jobs:
        owned = ownership.with_ownership(
            {**job, "metadata": {**job["metadata"], "namespace": namespace}}, env
        )
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
            reason = (
                "Timeout"
                if verdict.code is not health.HealthCode.DEGRADED
                else (verdict.reason or "Failed")
            )
            return GateResult(
                passed=False,
                gate="hook",
                subject=verdict.subject,
                reason=reason,
                message=verdict.message,
                elapsed=clock.monotonic() - start,
            )
        progress(f"hook {verdict.subject}: {verdict.message}")
    return None


# Gated by their own health rules (kube/health) after the Deployments' gate; hooks are not among
# them.
GATED_KINDS = ("StatefulSet", "DaemonSet", "Job", "CronJob")


def gate_workloads(
    cluster: ClusterApi,
    objects: Sequence[dict[str, Any]],
    timeout: float,
    options: HookOptions = HookOptions(),
) -> GateResult | None:
    """Wait for each of `objects` (as a sync applied them) to be healthy by its kind's rule: the
    first Degraded one, or one still not healthy after `timeout`, as a failed GateResult; else
    None."""
    clock = options.clock or Clock()
    start = clock.monotonic()
    for obj in objects:
        left = max(timeout - (clock.monotonic() - start), 0.0)
        verdict = _wait(cluster, obj, left, options.interval, clock)
        if not verdict.ok:
            reason = (
                "Timeout"
                if verdict.code is not health.HealthCode.DEGRADED
                else (verdict.reason or "Degraded")
            )
            return GateResult(
                passed=False,
                gate="rollout",
                subject=verdict.subject,
                reason=reason,
                message=verdict.message,
                elapsed=clock.monotonic() - start,
            )
    return None


def _wait(
    cluster: ClusterApi, obj: dict[str, Any], timeout: float, interval: float, clock: Clock
) -> health.Health:
    """The object's Health once Healthy or Degraded, or its last Health when `timeout` ran out."""
    meta = obj["metadata"]
    began = clock.monotonic()
    while True:
        verdict = health.assess(obj) or health.Health(
            health.HealthCode.HEALTHY, "no health rule", health.subject(obj)
        )
        if verdict.code in (health.HealthCode.HEALTHY, health.HealthCode.DEGRADED):
            return verdict
        if clock.monotonic() - began >= timeout:
            return health.Health(
                verdict.code,
                f"not healthy after {timeout:.0f}s ({verdict.message})",
                verdict.subject,
                "Timeout",
            )
        clock.sleep(interval)
        obj = cluster.get(obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"]) or obj
