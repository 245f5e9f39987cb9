"""Feeds the gate (gate.py) from the API server: watches, not sleep loops.

Deployments and Pods of one namespace are listed once, then watched from that resourceVersion
in two threads; each event is handed to `Gate.step` at once, analysis rounds are taken when the
gate asks for them, and the gate's notes are printed. `gate_synced` feeds it what one sync left
of one app (its Deployments, other workloads and post hooks). Nothing here decides anything:
what a verdict leads to (record, roll back) is gating.py's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline import names
from pipeline.clock import Clock
from pipeline.config import Environment, GateOptions, Slot
from pipeline.context import Context
from pipeline.errors import ClusterError
from pipeline.kube import health, hooks
from pipeline.kube import plan as planning
from pipeline.kube.api import ApiRequest, ClusterApi, WatchQuery
from pipeline.kube.apply import SyncResult
from pipeline.progress import Progress, quiet
from pipeline.rollout import hookjobs
from pipeline.rollout.gate import Gate, GateResult, Measured, Measurement


class Analysis(Protocol):
    """What the gate needs of an analysis: one round of measurements (analysis.Analysis)."""

    def round(self, *, final: bool = False) -> Sequence[Measurement]: ...


class _Watcher:
    """Feeds (kind, type, object) events of one kind in one namespace into a queue."""

    def __init__(
        self,
        cluster: ClusterApi,
        what: tuple[str, str],
        namespace: str,
        events: queue.Queue,
        stop: threading.Event,
        resource_version: str | None,
    ):
        """`what`: (apiVersion, kind) of the objects watched."""
        api_version, kind = what
        self.args = (cluster, api_version, kind, namespace)
        self.events, self.stop, self.rv = events, stop, resource_version
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"watch-{kind}")

    def run(self) -> None:
        cluster, api_version, kind, namespace = self.args
        while not self.stop.is_set():
            try:
                for etype, obj in cluster.watch(
                    api_version, kind, namespace, WatchQuery(resource_version=self.rv, timeout=2)
                ):
                    if etype == "ERROR":
                        self.rv = None  # expired resourceVersion: start over from now
                        break
                    self.rv = obj.get("metadata", {}).get("resourceVersion", self.rv)
                    self.events.put((kind, etype, obj))
                    if self.stop.is_set():
                        return
            except ClusterError:
                self.stop.wait(0.5)  # the next watch retries; the gate's timeout is the backstop


def _close_after(watchers: list[_Watcher], client: ClusterApi) -> None:
    for w in watchers:
        w.thread.join()
    client.close()


@dataclass(frozen=True)
class WatchOptions:
    """What one watch goes by beside the environment's GateOptions; every field has a default."""

    # the release whose pods are judged (None: every pod of the Deployments)
    release_id: str | None = None
    analysis: Analysis | None = None  # canary analysis, a round whenever the gate asks for one
    interval: float = 5.0  # seconds between analysis rounds
    # how long an analysis still undecided at the end of the bake may go on
    max_bake: float | None = None
    progress: Progress = quiet  # where the gate's notes are printed
    clock: Clock | None = None  # None: the real clock


def wait_healthy(
    cluster: ClusterApi,
    namespace: str,
    deployments: list[str],
    options: GateOptions,
    watch: WatchOptions = WatchOptions(),
) -> GateResult:
    """Watch `deployments` in `namespace` (and the pods of `watch.release_id`) until healthy,
    failed or timed out."""
    release_id, analysis, interval, max_bake, progress = (
        watch.release_id,
        watch.analysis,
        watch.interval,
        watch.max_bake,
        watch.progress,
    )
    clock = watch.clock or Clock()
    deps_list = cluster.request(
        ApiRequest(
            "GET", cluster.info("apps/v1", "Deployment").path(namespace), what="list Deployments"
        )
    )
    pods_list = cluster.request(
        ApiRequest("GET", cluster.info("v1", "Pod").path(namespace), what="list Pods")
    )
    gate = Gate(
        namespace,
        {
            d["metadata"]["name"]: {**d, "kind": "Deployment", "apiVersion": "apps/v1"}
            for d in deps_list.get("items", [])
            if d["metadata"]["name"] in deployments
        },
        options,
        clock.monotonic(),
        release_id=release_id,
        analysis=analysis is not None,
        interval=interval,
        max_bake=max_bake,
        pods={
            p["metadata"]["name"]: {**p, "kind": "Pod", "apiVersion": "v1"}
            for p in pods_list.get("items", [])
        },
    )
    missing = gate.missing(deployments)
    if missing is not None:
        return missing
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    # Watches get a client of their own, closed only after their threads end: closing a socket
    # under a thread still reading it lets a new connection reuse the fd and garble TLS.
    watch_client = cluster.fork()
    watchers = [
        _Watcher(
            watch_client,
            ("apps/v1", "Deployment"),
            namespace,
            events,
            stop,
            deps_list["metadata"].get("resourceVersion"),
        ),
        _Watcher(
            watch_client,
            ("v1", "Pod"),
            namespace,
            events,
            stop,
            pods_list["metadata"].get("resourceVersion"),
        ),
    ]
    for w in watchers:
        w.thread.start()
    try:
        event: object = None
        while True:
            verdict = gate.step(event, clock.monotonic())  # type: ignore[arg-type]
            for note in gate.notes:
                progress(note)
            gate.notes.clear()
            if verdict is not None:
                return verdict
            due = gate.wants_measurement(clock.monotonic())
            if due is not None and analysis is not None:
                event = Measured(tuple(analysis.round(final=due.final)), final=due.final)
                continue
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                event = None
    finally:
        stop.set()
        threading.Thread(target=_close_after, args=(watchers, watch_client), daemon=True).start()


def gated_deployments(result: SyncResult, app: str | None = None) -> list[str]:
    """The stable Deployments a sync left in place (applied or unchanged), APP's only when given:
    the ones to gate."""
    return sorted(
        {
            o["metadata"]["name"]
            for o in result.plan.to_apply + result.plan.unchanged
            if o.get("kind") == "Deployment"
            and not names.is_canary(o["metadata"]["name"])
            and (app is None or (o["metadata"].get("labels") or {}).get(names.APP_LABEL) == app)
        }
    )


def gate_synced(
    ctx: Context, slot: Slot, result: SyncResult, release_id: str | None
) -> GateResult | None:
    """Gate the slot's app's Deployments a sync left in place, then run the app's post hooks; a
    pre hook of the app that failed is the gate's verdict. None when there is nothing to gate."""
    return _gate(ctx, slot.env, result, release_id, slot.app)


def gate_environment(ctx: Context, env: Environment, result: SyncResult) -> GateResult | None:
    """Gate every Deployment a sync left in ENV, then run every post hook; None when there is
    nothing to gate."""
    return _gate(ctx, env, result, None, None)


def _gate(
    ctx: Context, env: Environment, result: SyncResult, release_id: str | None, app: str | None
) -> GateResult | None:
    """gate_synced for APP's objects only, or (None) for every app's."""
    mine = app is None or (result.hook is not None and result.hook[0] == app)
    if result.hook is not None and mine:
        return result.hook[1]
    deployments = gated_deployments(result, app)
    gate = None
    if deployments:
        watch = WatchOptions(release_id=release_id, progress=ctx.progress, clock=ctx.clock)
        gate = wait_healthy(ctx.cluster(env), env.namespace, deployments, env.gates, watch)
    if gate is not None and not gate.passed:
        return gate
    others = [
        result.applied.get(planning.key(o), o)
        for o in result.plan.to_apply + result.plan.unchanged
        if o.get("kind") in hookjobs.GATED_KINDS and (app is None or hooks.app_of(o) == app)
    ]
    if others:  # StatefulSets, DaemonSets, Jobs, CronJobs: each by its own health rule
        failed = hookjobs.gate_workloads(
            ctx.cluster(env), others, _timeout(env), hookjobs.HookOptions(clock=ctx.clock)
        )
        if failed is not None:
            return failed
        gate = gate or GateResult(
            passed=True,
            gate="rollout",
            subject=health.subject(others[0]),
            reason="",
            message="healthy",
            elapsed=0.0,
        )
    post = [job for job in result.post_hooks if app is None or hooks.app_of(job) == app]
    if post:  # after the gate passed: a post hook that fails fails the release like the gate would
        options = hookjobs.HookOptions(env.gates.timeout, progress=ctx.progress, clock=ctx.clock)
        failed = hookjobs.run_hooks(ctx.cluster(env), env.name, env.namespace, post, options)
        return failed or gate
    return gate


def _timeout(env: Environment) -> float:
    return env.gates.timeout if env.gates.timeout is not None else hookjobs.DEFAULT_TIMEOUT
