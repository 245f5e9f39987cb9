"""The gate's decisions as fixture sequences: (event, time) in, a verdict out. Pure, no cluster.

Events are the health fixtures (tests/fixtures/health) as a watch would deliver them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.config import GateOptions
from pipeline.rollout.gate import Gate, Measured

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"


def fx(name: str, release: str | None = "r1") -> dict:
    obj = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    if release and obj["kind"] == "Pod":
        obj["metadata"].setdefault("annotations", {})["ship.dev/release"] = release
    return obj


def dep(name: str) -> tuple[str, str, dict]:
    return ("Deployment", "MODIFIED", fx(name))


def pod(name: str, etype: str = "MODIFIED", release: str | None = "r1", as_pod: str | None = None) -> tuple[str, str, dict]:
    obj = fx(name, release)
    if as_pod:
        obj["metadata"]["name"] = as_pod
    return ("Pod", etype, obj)


@dataclass(frozen=True)
class M:
    check: str
    passed: bool | None
    summary: str = "numbers"


def gate(options: GateOptions = GateOptions(timeout=60), analysis: bool = False, start: str = "deployment-updating") -> Gate:
    return Gate("prod", {"hellok8s": fx(start)}, options, 0.0, release_id="r1", analysis=analysis, interval=5.0)


def run(g: Gate, events: list[tuple[object, float]]):
    """Feed the events in order; the first verdict and the time it came, or (None, None)."""
    for event, now in events:
        verdict = g.step(event, now)
        if verdict is not None:
            return verdict, now
    return None, None


# (name, options, events, expected (passed, gate, reason) or None for still undecided)
CASES = [
    ("healthy at once", GateOptions(timeout=60), [(dep("deployment-healthy"), 1.0)], (True, "rollout", "")),
    ("progress then healthy", GateOptions(timeout=60),
     [(dep("deployment-updating"), 1.0), (None, 2.0), (dep("deployment-healthy"), 3.0)], (True, "rollout", "")),
    ("deadline exceeded", GateOptions(timeout=60), [(dep("deployment-deadline-exceeded"), 4.0)],
     (False, "rollout", "ProgressDeadlineExceeded")),
    ("timeout", GateOptions(timeout=10), [(None, 5.0), (None, 10.0)], (False, "timeout", "Timeout")),
    ("still progressing before the timeout", GateOptions(timeout=10), [(None, 5.0), (None, 9.9)], None),
    ("bake not over", GateOptions(timeout=60, bake=10), [(dep("deployment-healthy"), 1.0), (None, 10.9)], None),
    ("bake over", GateOptions(timeout=60, bake=10), [(dep("deployment-healthy"), 1.0), (None, 11.0)],
     (True, "bake", "")),
    ("degraded while baking", GateOptions(timeout=60, bake=10),
     [(dep("deployment-healthy"), 1.0), (dep("deployment-unavailable"), 3.0)], (False, "bake", "NotAvailable")),
    ("image pull fails after two kubelet retries", GateOptions(timeout=60, tolerance=10),
     [(pod("pod-imagepull"), 1.0), (None, 11.0), (None, 36.0)], (False, "pods", "ImagePullBackOff")),
    ("an image pull failing within the kubelet's retries is not yet a failure", GateOptions(timeout=60, tolerance=10),
     [(pod("pod-imagepull"), 1.0), (None, 35.9)], None),
    ("a crash loop fails fast after the tolerance", GateOptions(timeout=60, tolerance=10, max_restarts=99),
     [(pod("pod-crashloop"), 1.0), (None, 5.0), (None, 11.0)], (False, "pods", "CrashLoopBackOff")),
    ("a bad pod within the tolerance is not yet a failure", GateOptions(timeout=60, tolerance=10, max_restarts=99),
     [(pod("pod-crashloop"), 1.0), (None, 10.9)], None),
    ("a pod that recovers resets the tolerance", GateOptions(timeout=60, tolerance=10),
     [(pod("pod-imagepull", as_pod="p"), 1.0), (pod("pod-ready", as_pod="p"), 5.0), (pod("pod-imagepull", as_pod="p"), 8.0),
      (None, 17.0)], None),
    ("another release's bad pod is ignored", GateOptions(timeout=60, tolerance=0),
     [(pod("pod-imagepull", release="r0"), 1.0), (None, 20.0)], None),
    ("too many restarts fail at once", GateOptions(timeout=60, max_restarts=3), [(pod("pod-restarts"), 1.0)],
     (False, "pods", "Restarts")),
    ("without fail_fast a crash loop waits for the rollout", GateOptions(timeout=60, fail_fast=False, max_restarts=99),
     [(pod("pod-crashloop"), 1.0), (None, 30.0)], None),
    ("a deleted bad pod is forgotten", GateOptions(timeout=60, tolerance=5),
     [(pod("pod-imagepull"), 1.0), (pod("pod-imagepull", "DELETED"), 2.0), (None, 20.0)], None),
]


@pytest.mark.parametrize("name, options, events, expected", CASES, ids=[c[0] for c in CASES])
def test_gate_sequences(name, options, events, expected):
    verdict, _ = run(gate(options), events)
    assert (None if verdict is None else (verdict.passed, verdict.gate, verdict.reason)) == expected


def test_default_timeout_is_the_progress_deadline_plus_slack():
    g = Gate("prod", {"hellok8s": {**fx("deployment-updating"), "spec": {"progressDeadlineSeconds": 30}}},
             GateOptions(), 0.0)
    assert g.timeout == 45.0


def test_a_missing_deployment_fails_naming_it():
    g = gate()
    result = g.missing(["hellok8s", "worker"])
    assert (result.passed, result.subject, result.reason) == (False, "Deployment/prod/worker", "NotFound")


def test_analysis_is_due_every_interval_while_baking_then_one_final_round():
    g = gate(GateOptions(timeout=60, bake=12), analysis=True)
    assert g.wants_measurement(0.0) is None  # not healthy yet: nothing to analyse
    assert g.step(dep("deployment-healthy"), 1.0) is None
    assert g.wants_measurement(1.0) == Measured((), final=False)
    assert g.step(Measured((M("http", True),)), 1.0) is None
    assert g.wants_measurement(5.9) is None
    assert g.wants_measurement(6.0) == Measured((), final=False)
    assert g.wants_measurement(13.0) == Measured((), final=True)
    assert g.step(None, 13.0) is None  # the bake is over, but the final round has not been taken
    verdict = g.step(Measured((M("http", True), M("prometheus q", True)), final=True), 13.0)
    assert (verdict.passed, verdict.gate) == (True, "bake")


def test_a_failed_measurement_fails_the_gate_naming_the_check():
    g = gate(GateOptions(timeout=60, bake=30), analysis=True)
    g.step(dep("deployment-healthy"), 1.0)
    verdict = g.step(Measured((M("http GET /", False, "9/20 answered 200"),)), 2.0)
    assert (verdict.passed, verdict.gate, verdict.subject, verdict.reason, verdict.message) == \
        (False, "analysis", "http GET /", "AnalysisFailed", "9/20 answered 200")


def test_a_check_still_undecided_at_the_end_of_the_bake_fails_it():
    g = gate(GateOptions(timeout=60, bake=5), analysis=True)
    g.step(dep("deployment-healthy"), 1.0)
    assert g.step(Measured((M("prometheus q", None, "no data yet"),)), 1.0) is None  # inconclusive: keep baking
    verdict = g.step(Measured((M("prometheus q", None, "no data yet"),), final=True), 6.0)
    assert (verdict.passed, verdict.reason) == (False, "Inconclusive")
    assert "not enough data to decide during the 5s bake" in verdict.message


def test_progress_notes_say_each_change_once():
    g = gate(GateOptions(timeout=60, bake=10))
    g.step(None, 0.0)
    g.step(None, 1.0)
    g.step(dep("deployment-healthy"), 2.0)
    assert g.notes == ["hellok8s: Waiting for rollout to finish: 2 out of 3 new replicas have been updated "
                       "(2/3 updated, 1/3 ready)", "hellok8s: 3/3 updated, 3/3 ready", "healthy; baking for 10s"]


def test_max_bake_extends_an_undecided_analysis_and_a_later_pass_ends_it():
    g = gate(GateOptions(timeout=300, bake=10), analysis=True)
    g.max_bake = 30
    g.step(dep("deployment-healthy"), 0.0)
    assert g.step(Measured((M("users", True),)), 5.0) is None  # a pass before the bake's end waits for it
    assert g.wants_measurement(10.0) == Measured((), final=False)  # the bake's end is not final now
    assert g.step(Measured((M("users", None, "canary 3/30"),)), 10.0) is None
    assert g.notes[-1] == "bake of 10s over and users still undecided: analysing on, up to 30s"
    verdict = g.step(Measured((M("users", True, "canary 0/90"),)), 15.0)
    assert (verdict.passed, verdict.gate) == (True, "bake")


def test_max_bake_still_undecided_fails_naming_the_longest_bake():
    g = gate(GateOptions(timeout=300, bake=10), analysis=True)
    g.max_bake = 30
    g.step(dep("deployment-healthy"), 0.0)
    assert g.wants_measurement(30.0) == Measured((), final=True)
    verdict = g.step(Measured((M("users", None, "too few requests"),), final=True), 30.0)
    assert (verdict.passed, verdict.reason) == (False, "Inconclusive")
    assert verdict.message == "not enough data to decide during the 30s bake (too few requests)"
