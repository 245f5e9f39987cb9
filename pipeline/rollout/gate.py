"""The health gate as a pure state machine: watch events and time in, a verdict out.

    rollout  the Deployments by `kubectl rollout status` rules (health.assess_deployment)
    pods     the release's pods: CrashLoopBackOff, ImagePullBackOff, restarts (health.assess_pod),
             failing after a tolerance window so one restart does not fail a release
    timeout  a deadline (default: the Deployments' progressDeadlineSeconds plus slack)
    bake     optional: keep watching for a while after healthy; fail if it degrades
    analysis optional: measurements while baking (HTTP checks, Prometheus queries, users'
             traffic), and one final round when the bake ends; a failed check fails the gate, and
             a check still undecided at the end fails it too: silence is not health. With
             max_bake, a round after the bake that finds every check decided and passed ends it;
             one still undecided keeps it going up to max_bake, whose round is then the final one

`Gate.step(event, now)` takes one event (a Deployment or Pod as a watch delivered it, a round of
measurements, or None when only time passed) and returns a GateResult once decided. It does no
I/O: watch.py feeds it from the API server, tests feed it fixture sequences.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from pipeline import names
from pipeline.config import GateOptions
from pipeline.kube import health

DEADLINE_SLACK = 15.0  # the controller reports ProgressDeadlineExceeded a little after the deadline
# A failed image pull is retried by the kubelet after 10 s, then 20 s more. The first attempt of a
# new pod can fail for a moment's reason: the API server's node authorizer may not yet link the
# node to the pod's pull secret, so the kubelet pulls without it ("pull access denied"). A pull
# failure therefore fails the gate only once it outlasts two retries.
IMAGE_PULL_TOLERANCE = 35.0
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """What a gate decided, about which object, and why."""

    passed: bool
    gate: str  # rollout, pods, timeout, bake, analysis
    subject: str  # Deployment/ns/name, Pod/ns/name, or the analysis check
    reason: str  # e.g. ProgressDeadlineExceeded, CrashLoopBackOff, Timeout; "" when passed
    message: str
    elapsed: float  # seconds from the start of the gate to the decision

    def __str__(self) -> str:
        if self.passed:
            return f"gate passed: {self.subject} healthy ({self.message}) in {self.elapsed:.1f}s"
        return f"{self.subject} {self.reason}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "gate": self.gate,
            "subject": self.subject,
            "reason": self.reason,
            "message": self.message,
            "elapsed": round(self.elapsed, 3),
        }


class Measurement(Protocol):
    """One analysis check's verdict in one round (analysis.Measurement)."""

    @property
    def check(self) -> str: ...

    @property
    def passed(self) -> bool | None: ...  # None: not enough data to decide yet

    @property
    def summary(self) -> str: ...


@dataclass(frozen=True)
class Measured:
    """An event: one round of analysis measurements; `final` for the round that ends the bake."""

    measurements: tuple[Measurement, ...]
    _: KW_ONLY
    final: bool = False


@dataclass
class Gate:
    namespace: str
    deployments: dict[str, dict[str, Any]]  # name -> the Deployment as last seen
    options: GateOptions
    start: float
    _: KW_ONLY
    release_id: str | None = None  # its pods are judged too
    analysis: bool = False  # whether analysis rounds are part of this gate
    interval: float = 5.0  # seconds between analysis rounds
    # an analysis still undecided at the end of the bake goes on up to this
    max_bake: float | None = None
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_since: dict[str, float] = field(default_factory=dict)
    healthy_at: float | None = None
    last_round: float | None = None
    final_round_done: bool = False
    notes: list[str] = field(default_factory=list)  # progress lines for the caller to print
    _said: str = ""
    _extended: bool = False

    @property
    def timeout(self) -> float:
        if self.options.timeout is not None:
            return self.options.timeout
        deadline = max(
            (
                d.get("spec", {}).get("progressDeadlineSeconds", 600)
                for d in self.deployments.values()
            ),
            default=600,
        )
        return deadline + DEADLINE_SLACK

    @property
    def longest_bake(self) -> float:
        return max(self.options.bake, self.max_bake or 0.0)

    def missing(self, wanted: list[str]) -> GateResult | None:
        """A failed result when a Deployment to gate does not exist at all."""
        absent = [d for d in wanted if d not in self.deployments]
        if not absent:
            return None
        return GateResult(
            passed=False,
            gate="rollout",
            subject=f"Deployment/{self.namespace}/{absent[0]}",
            reason="NotFound",
            message="the Deployment does not exist",
            elapsed=0.0,
        )

    def observe(self, kind: str, etype: str, obj: dict[str, Any]) -> None:
        name = obj.get("metadata", {}).get("name", "")
        if kind == "Deployment" and name in self.deployments:
            self.deployments[name] = obj
        elif kind == "Pod":
            if etype == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = obj

    def wants_measurement(self, now: float) -> Measured | None:
        """Whether an analysis round is due now: a Measured template (empty) with its `final`
        flag."""
        if not self.analysis or self.healthy_at is None or self.final_round_done:
            return None
        if now - self.healthy_at >= self.longest_bake:
            return Measured((), final=True)
        if self.last_round is None or now - self.last_round >= self.interval:
            return Measured(())
        return None

    def step(
        self, event: Measured | tuple[str, str, dict[str, Any]] | None, now: float
    ) -> GateResult | None:
        """Take one event (or none: time passed) and decide, if the gate can decide now."""
        if isinstance(event, Measured):
            return self._measured(event, now)
        if event is not None:
            self.observe(*event)
        failure = self._failure(now)
        if failure is not None:
            h, gate = failure
            return self._fail(
                "bake" if self.healthy_at is not None else gate, h.subject, h.reason, h.message, now
            )
        rollouts = [health.assess_deployment(d) for d in self.deployments.values()]
        self._say(", ".join(f"{n}: {h.message}" for n, h in zip(self.deployments, rollouts)))
        if all(h.ok for h in rollouts):
            return self._healthy(rollouts, now)
        if self.healthy_at is not None and self.options.bake > 0:
            h = next(h for h in rollouts if not h.ok)
            return self._fail(
                "bake",
                h.subject,
                h.reason or "Degraded",
                f"degraded while baking: {h.message}",
                now,
            )
        if now - self.start >= self.timeout:
            h = next((h for h in rollouts if not h.ok), rollouts[0])
            return self._fail(
                "timeout",
                h.subject,
                "Timeout",
                f"not healthy after {self.timeout:.0f}s ({h.message})",
                now,
            )
        return None

    def _healthy(self, rollouts: list[health.Health], now: float) -> GateResult | None:
        if self.healthy_at is None:
            self.healthy_at = now
            if self.options.bake > 0:
                self.notes.append(f"healthy; baking for {self.options.bake:.0f}s")
        if now - self.healthy_at < self.options.bake or (
            self.analysis and not self.final_round_done
        ):
            return None
        first = next(iter(self.deployments.values()))
        return GateResult(
            passed=True,
            gate="bake" if self.options.bake else "rollout",
            subject=health.subject(first),
            reason="",
            message=rollouts[0].message,
            elapsed=now - self.start,
        )

    def _measured(self, event: Measured, now: float) -> GateResult | None:
        self.last_round = now
        failed = next((m for m in event.measurements if m.passed is False), None)
        if failed is not None:
            return self._fail("analysis", failed.check, "AnalysisFailed", failed.summary, now)
        undecided = next((m for m in event.measurements if m.passed is None), None)
        if not event.final:
            extending = (
                self.max_bake is not None
                and self.healthy_at is not None
                and now - self.healthy_at >= self.options.bake
            )
            if not extending:
                return None
            if undecided is None:  # extended, and now decided: passed
                self.final_round_done = True
                return self.step(None, now)
            if not self._extended:
                self._extended = True
                self.notes.append(
                    f"bake of {self.options.bake:.0f}s over and {undecided.check} still undecided: "
                    f"analysing on, up to {self.longest_bake:.0f}s"
                )
            return None
        self.final_round_done = True
        if undecided is not None:
            return self._fail(
                "analysis",
                undecided.check,
                "Inconclusive",
                "not enough data to decide during the "
                f"{self.longest_bake:.0f}s bake ({undecided.summary})",
                now,
            )
        return self.step(None, now)

    def _failure(self, now: float) -> tuple[health.Health, str] | None:
        """The first failure among the Deployments and the release's pods, with its gate."""
        for dep in self.deployments.values():
            h = health.assess_deployment(dep)
            if h.code is health.HealthCode.DEGRADED:
                return h, "rollout"
        if self.release_id is None:
            return None
        for name, pod in self.pods.items():
            if (pod.get("metadata", {}).get("annotations") or {}).get(
                names.RELEASE
            ) != self.release_id:
                continue
            if not self._gated_pod(pod):
                continue  # another app's pod on a release of the same id
            h = health.assess_pod(pod, self.options.max_restarts)
            if h.code is not health.HealthCode.DEGRADED:
                self.bad_since.pop(name, None)
                continue
            if h.reason == "Restarts":
                return h, "pods"
            tolerance = self.options.tolerance
            if h.reason in IMAGE_PULL_REASONS:
                tolerance = max(tolerance, IMAGE_PULL_TOLERANCE)
            if self.options.fail_fast and now - self.bad_since.setdefault(name, now) >= tolerance:
                return h, "pods"
        return None

    def _gated_pod(self, pod: dict[str, Any]) -> bool:
        """Whether a pod belongs to one of the gated Deployments (through a ReplicaSet named
        DEPLOYMENT-HASH); a pod whose owner is unknown counts."""
        meta = pod.get("metadata", {})
        owners = [
            o.get("name", "")
            for o in meta.get("ownerReferences") or []
            if o.get("kind") == "ReplicaSet"
        ]
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if not owners or not template_hash:
            return True
        return any(
            owner == f"{dep}-{template_hash}" for owner in owners for dep in self.deployments
        )

    def _fail(self, gate: str, subject: str, reason: str, message: str, now: float) -> GateResult:
        return GateResult(
            passed=False,
            gate=gate,
            subject=subject,
            reason=reason,
            message=message,
            elapsed=now - self.start,
        )

    def _say(self, line: str) -> None:
        if line != self._said:
            self.notes.append(line)
            self._said = line
