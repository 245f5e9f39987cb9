"""The schema of one environment of ship.yaml: its namespace and kube context, the gates, the
canary (steps, HTTP and Prometheus checks, users' traffic) and the policy (signatures, freeze
windows), read into model.py's types by schema.py's parse. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pipeline import names
from pipeline.config import checks, windows
from pipeline.config.model import (
    REQUESTS_PER_ROUND,
    ROUTERS,
    TRAFFIC_PROVIDERS,
    CanaryPolicy,
    CanaryStep,
    Environment,
    GateOptions,
    HttpCheck,
    Policy,
    PrometheusCheck,
    TrafficInput,
)
from pipeline.config.reader import Reader as _Reader


def _gates(r: _Reader | None) -> GateOptions:
    if r is None:
        return GateOptions()
    timeout = r.get("timeout", (str, int, float), None, checks.parse_duration)
    gates = GateOptions(
        timeout=timeout,
        bake=r.get("bake", (str, int, float), 0.0, checks.parse_duration),
        fail_fast=r.get("fail_fast", bool, True),
        max_restarts=r.get("max_restarts", int, 3),
        tolerance=r.get("tolerance", (str, int, float), 10.0, checks.parse_duration),
    )
    r.done()
    return gates


def _canary(r: _Reader | None) -> CanaryPolicy | None:
    if r is None:
        return None
    default = CanaryPolicy()
    steps: list[CanaryStep] = []
    for i, raw in enumerate(r.get("steps", list, [])):
        s = _Reader(raw, r.source, f"{r.path}.steps[{i}]", r.data.line_of("steps"))
        weight = s.get("weight", int)
        if not 0 < weight <= 100:
            s.fail("expected a percentage between 1 and 100", "weight")
        steps.append(
            CanaryStep(weight, s.get("bake", (str, int, float), 30.0, checks.parse_duration))
        )
        s.done()
    http_checks: list[HttpCheck] = []
    for i, raw in enumerate(r.get("http", list, [])):
        h = _Reader(raw, r.source, f"{r.path}.http[{i}]", r.data.line_of("http"))
        http_checks.append(
            HttpCheck(
                url=h.get("url", str, check=checks.template),
                expect_status=h.get("expect_status", int, 200),
                success_ratio=float(h.get("success_ratio", (int, float), 0.95)),
                max_latency_ms=float(h.get("max_latency_ms", (int, float), 1000.0)),
                requests=h.get("requests", int, REQUESTS_PER_ROUND),
            )
        )
        h.done()
    queries: list[PrometheusCheck] = []
    for i, raw in enumerate(r.get("prometheus", list, [])):
        p = _Reader(raw, r.source, f"{r.path}.prometheus[{i}]", r.data.line_of("prometheus"))
        queries.append(
            PrometheusCheck(
                url=p.get("url", str, check=checks.template),
                query=p.get("query", str),
                max=p.get("max", (int, float), None),
                min=p.get("min", (int, float), None),
            )
        )
        p.done()
    policy = CanaryPolicy(
        router=r.get("router", str, default.router, checks.one_of(ROUTERS)),
        steps=tuple(steps) or default.steps,
        interval=r.get("interval", (str, int, float), default.interval, checks.parse_duration),
        host=r.get("host", str, default.host),
        path=r.get("path", str, default.path),
        gateway=r.get("gateway", str, default.gateway),
        ingress_class=r.get("ingress_class", str, default.ingress_class),
        http=tuple(http_checks),
        prometheus=tuple(queries),
        traffic=_traffic(r.child("traffic", None)),
        max_bake=r.get("max_bake", (str, int, float), None, checks.parse_duration),
        scale_down_delay=r.get(
            "scale_down_delay", (str, int, float), default.scale_down_delay, checks.parse_duration
        ),
    )
    bakes = [s.bake for s in policy.steps]
    if policy.max_bake is not None and policy.max_bake < max(bakes):
        r.fail(f"expected at least the longest step's bake ({max(bakes):g}s)", "max_bake")
    r.done()
    return policy


def _traffic(t: _Reader | None) -> TrafficInput | None:
    """canary.traffic: users' requests through the gateway, from Prometheus
    (rollout/counters.py)."""
    if t is None:
        return None
    provider = t.get("provider", str, check=checks.one_of(TRAFFIC_PROVIDERS))
    own = provider == "prometheus"
    traffic = TrafficInput(
        provider=provider,
        prometheus=t.get("prometheus", str, check=checks.template),
        success_ratio=float(t.get("success_ratio", (int, float), 0.95)),
        max_latency_ms=None if own else float(t.get("max_latency_ms", (int, float), 1000.0)),
        requests=t.get("requests", str, ... if own else None, checks.promql),
        errors=t.get("errors", str, ... if own else None, checks.promql),
        top_up=t.get("top_up", str, None, checks.template),
        top_up_requests=t.get("top_up_requests", int, REQUESTS_PER_ROUND),
    )
    if not 0 < traffic.success_ratio <= 1:
        t.fail("expected a ratio between 0 (exclusive) and 1", "success_ratio")
    for key in ("requests", "errors"):
        if not own and key in t.data:
            t.fail(
                f"only for provider prometheus (your own counters); {provider}'s are built in", key
            )
    if own and "max_latency_ms" in t.data:
        t.fail(
            "provider prometheus counts requests and errors only: no latency histogram to judge",
            "max_latency_ms",
        )
    t.done()
    return traffic


def _policy(r: _Reader | None) -> Policy:
    if r is None:
        return Policy()
    freeze: list[windows.FreezeWindow] = []
    for i, raw in enumerate(r.get("freeze", list, [])):
        w = _Reader(raw, r.source, f"{r.path}.freeze[{i}]", r.data.line_of("freeze"))
        name = w.get("name", str, f"freeze[{i}]")
        timezone = w.get("timezone", str, "UTC", _zone)
        start = w.get("from", (str, dt.date), check=_bound(is_end=False))
        end = w.get("to", (str, dt.date), check=_bound(is_end=True))
        w.done()
        try:
            freeze.append(windows.make_window(name, start, end, timezone))
        except ValueError as exc:
            w.fail(f"expected {exc}", "to")
    policy = Policy(
        require_signature=r.get("require_signature", bool, False),
        public_key=r.get("public_key", str, None),
        allow_older=r.get("allow_older", bool, False),
        freeze=tuple(freeze),
    )
    if policy.require_signature and not policy.public_key:
        r.fail(
            "require_signature needs public_key: the cosign public key to verify with",
            "require_signature",
        )
    r.done()
    return policy


def _bound(*, is_end: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        windows.parse_bound(value, is_end=is_end)
        return value

    return check


def _zone(value: str) -> str:
    windows.zone(value)
    return value


def environment(name: str, e: _Reader) -> Environment:
    """One entry of `environments:`: its namespace and context, gates, canary and policy."""
    return Environment(
        name=name,
        namespace=e.get("namespace", str, check=checks.name),
        context=e.get("context", str, None),
        promotes_from=e.get("promotes_from", str, None),
        gates=_gates(e.child("gates", None)),
        canary=_canary(e.child("canary", None)),
        policy=_policy(e.child("policy", None)),
        pod_security=e.get(
            "pod_security", str, "restricted", checks.one_of(names.POD_SECURITY_LEVELS)
        ),
        pull_secret=e.get("pull_secret", bool, True),
    )
