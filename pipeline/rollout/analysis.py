"""Canary analysis: HTTP checks and Prometheus queries, measured in rounds during a bake.

    http        `requests` GETs of a URL template ({namespace}, {app}, {service}); the round
                passes when the share answering `expect_status` is ≥ success_ratio and the
                p95 latency ≤ max_latency_ms
    prometheus  an instant query through Prometheus's HTTP API (/api/v1/query); the round passes
                when the value is ≤ max and ≥ min. No data (an empty vector, NaN) is inconclusive,
                and a query that never gave data by the final round fails the gate (gate.py):
                silence is not health.

The judgements are pure functions of what was measured; `Analysis` does the measuring with
the HTTP client it is given. Any failed round fails the canary (Argo Rollouts' failureLimit 0).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import httpx

from pipeline.config import HttpCheck, PrometheusCheck
from pipeline.progress import Progress, quiet


@dataclass(frozen=True)
class Measurement:
    """One check's result in one round: passed, failed, or None when there was no data."""

    check: str  # "http GET <url>" or "prometheus <query>"
    passed: bool | None
    summary: str  # the numbers, e.g. "19/20 answered 200 (95% ≥ 95%), p95 12ms ≤ 500ms"

    def __str__(self) -> str:
        verdict = {True: "ok", False: "FAILED", None: "no data"}[self.passed]
        return f"{self.check}: {self.summary} [{verdict}]"


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def judge_http(check: HttpCheck, url: str, statuses: list[int | None], latencies_ms: list[float]) -> Measurement:
    """`statuses`: one per request, None for a connection error or timeout."""
    good = sum(1 for s in statuses if s == check.expect_status)
    ratio = good / len(statuses) if statuses else 0.0
    latency = p95(latencies_ms)
    others = sorted({str(s) if s is not None else "error" for s in statuses if s != check.expect_status})
    summary = (f"{good}/{len(statuses)} answered {check.expect_status} ({ratio:.0%} vs ≥ {check.success_ratio:.0%})"
               + (f", others: {', '.join(others)}" if others else "")
               + f", p95 {latency:.0f}ms vs ≤ {check.max_latency_ms:.0f}ms")
    return Measurement(f"http GET {url}", ratio >= check.success_ratio and latency <= check.max_latency_ms, summary)


def judge_prometheus(check: PrometheusCheck, value: float | None) -> Measurement:
    name = f"prometheus {check.query}"
    if value is None or math.isnan(value):
        return Measurement(name, None, "no data yet")
    bounds = []
    passed = True
    if check.max is not None:
        bounds.append(f"≤ {check.max:g}")
        passed = passed and value <= check.max
    if check.min is not None:
        bounds.append(f"≥ {check.min:g}")
        passed = passed and value >= check.min
    return Measurement(name, passed, f"{value:.4g} vs {' and '.join(bounds) or 'no bound'}")


def prometheus_value(body: dict) -> float | None:
    """The first sample of an instant query's result (vector or scalar); None when empty."""
    data = body.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar" and result:
        return float(result[1])
    if data.get("resultType") == "vector" and result:
        return float(result[0]["value"][1])
    return None


class Analysis:
    """Runs every check of a canary policy once per `round()`; remembers which queries saw data."""

    def __init__(self, http: tuple[HttpCheck, ...], prometheus: tuple[PrometheusCheck, ...], context: dict[str, str],
                 client: httpx.Client, progress: Progress = quiet):
        self.http, self.prometheus, self.context, self.progress = http, prometheus, context, progress
        self.client = client
        self.decided: dict[str, Measurement] = {}  # the last round that gave each check an answer
        self.rounds = 0

    def __bool__(self) -> bool:
        return bool(self.http or self.prometheus)

    def _http(self, check: HttpCheck) -> Measurement:
        url = check.url.format(**self.context)
        statuses: list[int | None] = []
        latencies: list[float] = []
        for _ in range(check.requests):
            start = time.monotonic()
            try:
                statuses.append(self.client.get(url, timeout=max(1.0, check.max_latency_ms / 1000 * 2)).status_code)
            except httpx.HTTPError:
                statuses.append(None)
            latencies.append((time.monotonic() - start) * 1000)
        return judge_http(check, url, statuses, latencies)

    def _prometheus(self, check: PrometheusCheck) -> Measurement:
        try:
            response = self.client.get(check.url.rstrip("/") + "/api/v1/query", params={"query": check.query})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Measurement(f"prometheus {check.query}", False, f"query failed: {exc}")
        if response.status_code != 200 or body.get("status") != "success":
            return Measurement(f"prometheus {check.query}", False,
                               f"query failed: HTTP {response.status_code} {body.get('error', '')}".strip())
        return judge_prometheus(check, prometheus_value(body))

    def round(self, final: bool = False) -> list[Measurement]:
        """One measurement per check, printed as it is taken. In the final round a check with no
        data now stands on its last answer, so only a check that never had data stays undecided."""
        self.rounds += 1
        out = []
        for m in [self._http(c) for c in self.http] + [self._prometheus(c) for c in self.prometheus]:
            self.progress(f"analysis round {self.rounds}: {m}")
            if m.passed is not None:
                self.decided[m.check] = m
            elif final and m.check in self.decided:
                m = self.decided[m.check]
            out.append(m)
        return out
