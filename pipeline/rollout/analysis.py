"""Canary analysis: HTTP checks judged against the stable, and Prometheus queries, in rounds.

    http        each round, `requests` GETs of the check's URL for the canary and as many for the
                stable, over the same window; the running tallies are judged by judge.decide
                (sequential, sample-size aware): FAIL ends the bake, INCONCLUSIVE keeps it going,
                and the final round at the end of the bake must PASS
    prometheus  an instant query through Prometheus's HTTP API (/api/v1/query); passes when the
                value is ≤ max and ≥ min. No data, or a Prometheus that does not answer, is
                inconclusive; still undecided at the end of the bake fails (gate.py)
    traffic     users' requests through the gateway, counted by its metrics in Prometheus, for
                the canary and the stable over the same window, judged like the http check's
                (usertraffic.py)

URL templates take {namespace}, {app}, {service} and {track}, filled per track ({service} is
`<svc>-canary` for the canary, `<svc>` for the stable). A URL naming a cluster Service
(`http://NAME.NAMESPACE.svc[.cluster.local]:PORT/PATH`) is fetched through the API server's
service proxy with ship's own kubeconfig, so it works from a CI runner outside the cluster;
any other URL is fetched as it is. Measuring is here; every decision is judge.py's or below.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from pipeline import names
from pipeline.config import (
    URL_PLACEHOLDERS,
    CanaryPolicy,
    HttpCheck,
    PrometheusCheck,
    unknown_placeholders,
)
from pipeline.errors import ClusterError, ConfigError, ProxyError
from pipeline.kube.api import ClusterApi
from pipeline.kube.services import service_of
from pipeline.progress import Progress, quiet
from pipeline.rollout import judge
from pipeline.rollout.usertraffic import UserTraffic, prometheus_answer


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One check's verdict in one round: passed, failed, or None while it cannot decide yet."""

    check: str  # "http GET <url>" or "prometheus <query>"
    passed: bool | None
    summary: str  # the numbers the verdict rests on

    def __str__(self) -> str:
        verdict = {True: "ok", False: "FAILED", None: "undecided"}[self.passed]
        return f"{self.check}: {self.summary} [{verdict}]"


def fill(template: str, context: dict[str, str]) -> str:
    """The template with its placeholders filled; an unknown placeholder is a ConfigError."""
    unknown = unknown_placeholders(template)
    if unknown:
        raise ConfigError(
            f"analysis URL {template!r}: unknown placeholder {{{unknown[0]}}} "
            f"(known: {', '.join('{' + p + '}' for p in URL_PLACEHOLDERS)})"
        )
    return template.format(**context)


def track_values(namespace: str, app: str, service: str, port: int) -> dict[str, dict[str, str]]:
    """The placeholder values of each track (and the Service's port, for a gateway's metrics)."""
    return {
        track: {
            "namespace": namespace,
            "app": app,
            "track": track,
            "port": str(port),
            "service": names.canary_name(service) if track == names.CANARY else service,
        }
        for track in (names.CANARY, names.STABLE)
    }


def missing_services(cluster: ClusterApi, urls: list[str]) -> str | None:
    """`Service/NS/NAME` of the first cluster Service the URLs name that does not exist, or None."""
    for url in urls:
        target = service_of(url)
        if target is not None and cluster.get("v1", "Service", target[1], target[0]) is None:
            return f"Service/{target[0]}/{target[1]}"
    return None


def judge_prometheus(check: PrometheusCheck, value: float | None) -> Measurement:
    name = f"prometheus {check.query}"
    if value is None or math.isnan(value):
        return Measurement(check=name, passed=None, summary="no data yet")
    bounds = []
    passed = True
    if check.max is not None:
        bounds.append(f"≤ {check.max:g}")
        passed = passed and value <= check.max
    if check.min is not None:
        bounds.append(f"≥ {check.min:g}")
        passed = passed and value >= check.min
    return Measurement(
        check=name, passed=passed, summary=f"{value:.4g} vs {' and '.join(bounds) or 'no bound'}"
    )


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
    """Runs every check of a canary policy once per `round()`, keeping the HTTP tallies."""

    def __init__(
        self,
        policy: CanaryPolicy,
        tracks: dict[str, dict[str, str]],
        client: httpx.Client,
        cluster: ClusterApi | None = None,
        progress: Progress = quiet,
    ):
        """`policy`: its `http`, `prometheus` and `traffic` checks are run; `tracks`: the
        placeholder values for "canary" and "stable" (and the Service's port)."""
        http, prometheus, traffic = policy.http, policy.prometheus, policy.traffic
        self.http, self.prometheus, self.tracks, self.progress = http, prometheus, tracks, progress
        self.client, self.cluster = client, cluster
        self.traffic = UserTraffic(traffic, tracks, self.get, fill) if traffic else None
        self.tallies: dict[tuple[int, str], judge.Tally] = {}
        self.decided: dict[str, Measurement] = {}  # the last round that gave each check an answer
        self.rounds = 0
        self.unanswered: dict[str, str] = {}  # URL → why its Service did not answer the last GET
        self.told: set[str] = set()  # the service-proxy errors already printed
        for check in http:  # a bad template fails before anything is measured
            fill(check.url, tracks["canary"])
        for query in prometheus:
            fill(query.url, tracks["canary"])

    def __bool__(self) -> bool:
        return bool(self.http or self.prometheus or self.traffic)

    def get(
        self, url: str, timeout: float, params: dict[str, str] | None = None
    ) -> tuple[int | None, bytes]:
        """(status, body) of a GET, through the service proxy for a cluster Service; None: no
        answer. Why a Service did not answer (forbidden, not found, no endpoint, the API server
        unreachable) is told once per reason, and named by a Prometheus check that needed it."""
        target = service_of(url)
        self.unanswered.pop(url, None)
        try:
            if target is not None and self.cluster is not None:
                return self.cluster.proxy_get(*target, params=params, timeout=timeout)
            response = self.client.get(url, params=params, timeout=timeout)
            return response.status_code, response.content
        except ClusterError as exc:  # the API server answered for the Service, or not at all
            why = exc.unanswered if isinstance(exc, ProxyError) else "API server unreachable"
            self.unanswered[url] = why
            if str(exc) not in self.told:
                self.told.add(str(exc))
                self.progress(f"analysis: {exc}")
            return None, b""
        except (httpx.HTTPError, OSError):
            return None, b""

    def _tally(self, check: HttpCheck, track: str) -> judge.Tally:
        url = fill(check.url, self.tracks[track])
        statuses: list[int | None] = []
        latencies: list[float] = []
        for _ in range(check.requests):
            start = time.monotonic()
            statuses.append(self.get(url, max(1.0, check.max_latency_ms / 1000 * 2), None)[0])
            latencies.append((time.monotonic() - start) * 1000)
        return judge.Tally.of(statuses, latencies, check.expect_status)

    def _http(self, i: int, check: HttpCheck, *, final: bool) -> Measurement:
        for track in ("canary", "stable"):
            self.tallies[(i, track)] = self.tallies.get((i, track), judge.Tally()) + self._tally(
                check, track
            )
        verdict = judge.decide(
            self.tallies[(i, "canary")],
            self.tallies[(i, "stable")],
            judge.http_policy(check.success_ratio, check.max_latency_ms),
            final=final,
        )
        passed = {judge.Decision.PASS: True, judge.Decision.FAIL: False}.get(verdict.decision)
        return Measurement(
            check=f"http GET {fill(check.url, self.tracks['canary'])}",
            passed=passed,
            summary=verdict.summary,
        )

    def _prometheus(self, check: PrometheusCheck) -> Measurement:
        url = fill(check.url, self.tracks["canary"]).rstrip("/") + "/api/v1/query"
        status, body = self.get(url, 10.0, {"query": check.query})
        unanswered = f"no answer: {self.unanswered[url]}" if url in self.unanswered else "no answer"
        name = f"prometheus {check.query}"
        parsed = prometheus_answer(body)
        if status != 200 or parsed.get("status") != "success":
            why = (
                unanswered if status is None else f"HTTP {status} {parsed.get('error', '')}".strip()
            )
            return Measurement(
                check=name,
                passed=None,
                summary=f"Prometheus at {check.url} did not answer the query ({why})",
            )
        return judge_prometheus(check, prometheus_value(parsed))

    def round(self, *, final: bool = False) -> Sequence[Measurement]:
        """One measurement per check, printed as it is taken. In the final round a Prometheus query
        with no data now stands on its last answer, so only one that never answered stays
        undecided."""
        self.rounds += 1
        taken = [self._http(i, c, final=final) for i, c in enumerate(self.http)] + [
            self._prometheus(c) for c in self.prometheus
        ]
        if self.traffic is not None:
            passed, summary = self.traffic.measure(final=final)
            taken.append(Measurement(check=self.traffic.name, passed=passed, summary=summary))
        out = []
        for m in taken:
            self.progress(f"analysis round {self.rounds}: {m}")
            if m.passed is not None:
                self.decided[m.check] = m
            elif final and m.check in self.decided:
                m = self.decided[m.check]
            out.append(m)
        return out
