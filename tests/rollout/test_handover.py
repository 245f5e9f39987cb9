"""Handing traffic over (rollout/handover.py): a drain waits for the gateway to report the route's
new generation, then canary.scale_down_delay; a route no controller reports on waits for nothing."""

from __future__ import annotations

from types import SimpleNamespace

from pipeline.config import CanaryPolicy, Environment
from pipeline.rollout import handover


def route(generation: int, observed: int | None) -> dict:
    status = {} if observed is None else {"parents": [{"controllerName": "traefik.io/gateway-controller", "conditions": [
        {"type": "Accepted", "status": "True", "observedGeneration": observed}]}]}
    return {"metadata": {"name": "hellok8s", "generation": generation}, "status": status}


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Routes:
    """A cluster whose HTTPRoute list answers from a script, one answer per list (the last repeats)."""

    def __init__(self, *answers: list[dict]) -> None:
        self.answers, self.calls = list(answers), []

    def list(self, api_version, kind, namespace=None, selector=None):
        self.calls.append(kind)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def drain(router: str, cluster: Routes, delay: float = 5.0) -> tuple[Clock, list[str]]:
    env = Environment("prod", "hellok8s-prod", canary=CanaryPolicy(router=router, scale_down_delay=delay))
    clock, lines = Clock(), []
    handover.drain(SimpleNamespace(cluster=lambda _env: cluster, clock=clock, progress=lines.append), env)
    return clock, lines


def test_a_route_is_accepted_once_every_reporting_gateway_has_seen_its_generation():
    assert handover.route_accepted(route(2, 2))
    assert not handover.route_accepted(route(2, 1))
    assert handover.route_accepted(route(2, None))  # nobody reports on it: nothing to wait for


def test_a_drain_waits_for_the_gateway_to_report_the_new_generation_then_the_delay():
    clock, lines = drain("gateway", Routes([route(3, 2)], [route(3, 2)], [route(3, 3)]))
    assert clock.slept == [handover.POLL, handover.POLL, 5.0]
    assert any("draining: the canary keeps serving 5s more" in line for line in lines), lines


def test_a_gateway_that_never_catches_up_is_waited_for_a_bounded_time_then_named():
    clock, lines = drain("gateway", Routes([route(3, 2)]), delay=0)
    assert clock.now >= handover.ACCEPT_TIMEOUT
    assert any("has not reported HTTPRoute hellok8s at its new generation" in line for line in lines), lines


def test_routes_no_controller_reports_on_and_the_replicas_router_are_not_waited_for():
    assert drain("gateway", Routes([route(3, None)]))[0].slept == []
    assert drain("nginx", Routes([{"metadata": {"name": "i"}, "status": {}}]))[0].slept == []
    cluster = Routes([route(3, 2)])
    assert drain("replicas", cluster)[0].slept == [] and cluster.calls == []


def test_an_ingress_with_an_address_is_drained_for_the_delay():
    ingress = {"metadata": {"name": "i"}, "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    assert drain("nginx", Routes([ingress]), delay=3)[0].slept == [3]
