"""Health gates: watch a rollout and say, promptly and for a stated reason, whether it is healthy.

    rollout  the Deployment by `kubectl rollout status` rules (health.assess_deployment)
    pods     the release's pods: CrashLoopBackOff, ImagePullBackOff, restarts (health.assess_pod),
             failing fast after a tolerance window so one restart does not fail a release
    timeout  a deadline (default: the Deployment's progressDeadlineSeconds plus slack)
    bake     optional: keep watching for a while after healthy; fail if it degrades

Watches, not sleep loops: events arrive from the API server as they happen, and each one is
judged at once. Decisions are health.py's pure functions; this module only gathers events.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from pipeline.kube import health
from pipeline.config import GateOptions
from pipeline.errors import ClusterError
from pipeline.kube.client import Cluster

Progress = Callable[[str], None]
RELEASE_ANNOTATION = "ship.dev/release"
DEADLINE_SLACK = 15.0  # the controller reports ProgressDeadlineExceeded a little after the deadline


@dataclass(frozen=True)
class GateResult:
    """What a gate decided, about which object, and why."""

    passed: bool
    gate: str  # rollout, pods, timeout, bake
    subject: str  # Deployment/ns/name or Pod/ns/name
    reason: str  # e.g. ProgressDeadlineExceeded, CrashLoopBackOff, Timeout; "" when passed
    message: str
    elapsed: float  # seconds from the start of the gate to the decision

    def __str__(self) -> str:
        if self.passed:
            return f"gate passed: {self.subject} healthy ({self.message}) in {self.elapsed:.1f}s"
        return f"{self.subject} {self.reason}: {self.message}"

    def to_json(self) -> dict:
        return {"passed": self.passed, "gate": self.gate, "subject": self.subject, "reason": self.reason,
                "message": self.message, "elapsed": round(self.elapsed, 3)}


class _Watcher:
    """Feeds (kind, type, object) events of one kind in one namespace into a queue."""

    def __init__(self, cluster: Cluster, api_version: str, kind: str, namespace: str, events: queue.Queue,
                 stop: threading.Event, resource_version: str):
        self.args = (cluster, api_version, kind, namespace)
        self.events, self.stop, self.rv = events, stop, resource_version
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"watch-{kind}")

    def run(self) -> None:
        cluster, api_version, kind, namespace = self.args
        while not self.stop.is_set():
            try:
                for etype, obj in cluster.watch(api_version, kind, namespace, resource_version=self.rv, timeout=2):
                    if etype == "ERROR":
                        self.rv = None  # expired resourceVersion: start over from now
                        break
                    self.rv = obj.get("metadata", {}).get("resourceVersion", self.rv)
                    self.events.put((kind, etype, obj))
                    if self.stop.is_set():
                        return
            except ClusterError as exc:
                self.events.put(("error", "ERROR", {"message": str(exc)}))
                self.stop.wait(0.5)


def _name(obj: dict) -> str:
    return obj.get("metadata", {}).get("name", "")


def wait_healthy(cluster: Cluster, namespace: str, deployments: list[str], options: GateOptions,
                 release_id: str | None = None, progress: Progress = lambda _m: None,
                 clock: Callable[[], float] = time.monotonic, analysis=None, interval: float = 5.0) -> GateResult:
    """Watch `deployments` in `namespace` (and pods of `release_id`) until healthy, failed or timed out.

    `analysis` (analysis.Analysis): measured every `interval` seconds while baking, and at least
    once; any failed measurement fails the gate.
    """
    start = clock()
    deps_list = cluster.request("GET", cluster.info("apps/v1", "Deployment").path(namespace), what="list Deployments")
    pods_list = cluster.request("GET", cluster.info("v1", "Pod").path(namespace), what="list Pods")
    state = {d["metadata"]["name"]: {**d, "kind": "Deployment", "apiVersion": "apps/v1"}
             for d in deps_list.get("items", []) if d["metadata"]["name"] in deployments}
    missing = [d for d in deployments if d not in state]
    if missing:
        return GateResult(False, "rollout", f"Deployment/{namespace}/{missing[0]}", "NotFound",
                          "the Deployment does not exist", clock() - start)
    pods = {p["metadata"]["name"]: {**p, "kind": "Pod", "apiVersion": "v1"} for p in pods_list.get("items", [])}
    if options.timeout is not None:
        timeout = options.timeout
    else:
        timeout = max(d["spec"].get("progressDeadlineSeconds", 600) for d in state.values()) + DEADLINE_SLACK
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    # Watches get a client of their own, closed only after their threads end: closing a socket
    # under a thread still reading it lets a new connection reuse the fd and garble TLS.
    watch_client = cluster.fork()
    watchers = [_Watcher(watch_client, "apps/v1", "Deployment", namespace, events, stop,
                         deps_list["metadata"]["resourceVersion"]),
                _Watcher(watch_client, "v1", "Pod", namespace, events, stop, pods_list["metadata"]["resourceVersion"])]
    for w in watchers:
        w.thread.start()
    bad_since: dict[str, float] = {}
    healthy_at: float | None = None
    last_round: float | None = None
    said = ""
    try:
        while True:
            now = clock()
            verdict = _judge(state, pods, namespace, release_id, options, bad_since, now)
            if verdict is not None:
                h, gate = verdict
                return GateResult(False, "bake" if healthy_at is not None else gate, h.subject, h.reason, h.message,
                                  now - start)
            rollouts = [health.assess_deployment(d) for d in state.values()]
            summary = ", ".join(f"{n}: {h.message}" for n, h in zip(state, rollouts))
            if summary != said:
                progress(summary)
                said = summary
            if all(h.ok for h in rollouts):
                if healthy_at is None:
                    healthy_at = now
                    if options.bake > 0:
                        progress(f"healthy; baking for {options.bake:.0f}s")
                if analysis and (last_round is None or now - last_round >= interval):
                    last_round = now
                    failed = next((m for m in analysis.round() if m.passed is False), None)
                    if failed is not None:
                        return GateResult(False, "analysis", failed.check, "AnalysisFailed", failed.summary,
                                          clock() - start)
                    now = clock()
                if now - healthy_at >= options.bake:
                    silent = analysis.silent_queries() if analysis else []
                    if silent:
                        return GateResult(False, "analysis", f"prometheus {silent[0]}", "NoData",
                                          f"no data during the {options.bake:.0f}s bake", now - start)
                    first = next(iter(state.values()))
                    return GateResult(True, "bake" if options.bake else "rollout", health.subject(first), "",
                                      rollouts[0].message, now - start)
            elif healthy_at is not None and options.bake > 0:
                h = next(h for h in rollouts if not h.ok)
                return GateResult(False, "bake", h.subject, h.reason or "Degraded", f"degraded while baking: {h.message}",
                                  now - start)
            if now - start >= timeout:
                h = next((h for h in rollouts if not h.ok), rollouts[0])
                return GateResult(False, "timeout", h.subject, "Timeout",
                                  f"not healthy after {timeout:.0f}s ({h.message})", now - start)
            try:
                kind, etype, obj = events.get(timeout=0.2)
            except queue.Empty:
                continue
            while True:  # drain whatever else arrived, then judge once
                if kind == "Deployment" and _name(obj) in state:
                    state[_name(obj)] = obj
                elif kind == "Pod":
                    if etype == "DELETED":
                        pods.pop(_name(obj), None)
                    else:
                        pods[_name(obj)] = obj
                try:
                    kind, etype, obj = events.get_nowait()
                except queue.Empty:
                    break
    finally:
        stop.set()
        threading.Thread(target=_close_after, args=(watchers, watch_client), daemon=True).start()


def _close_after(watchers: list[_Watcher], client: Cluster) -> None:
    for w in watchers:
        w.thread.join()
    client.close()


def _judge(state: dict, pods: dict, namespace: str, release_id: str | None, options: GateOptions,
           bad_since: dict[str, float], now: float):
    """The first failure among the Deployments and the release's pods, with its gate, or None."""
    for dep in state.values():
        h = health.assess_deployment(dep)
        if h.code is health.HealthCode.DEGRADED:
            return h, "rollout"
    if release_id is None:
        return None
    for name, pod in pods.items():
        annotations = pod.get("metadata", {}).get("annotations") or {}
        if annotations.get(RELEASE_ANNOTATION) != release_id:
            continue
        h = health.assess_pod(pod, options.max_restarts)
        if h.code is not health.HealthCode.DEGRADED:
            bad_since.pop(name, None)
            continue
        if h.reason == "Restarts":
            return h, "pods"
        if options.fail_fast:
            first = bad_since.setdefault(name, now)
            if now - first >= options.tolerance:
                return h, "pods"
    return None
