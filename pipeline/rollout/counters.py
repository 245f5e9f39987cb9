"""Where a gateway counts users' requests, and how two readings of its counters make a tally. Pure.

    traefik     traefik_service_requests_total by code, and
                traefik_service_request_duration_seconds_bucket by le, for the Traefik service of
                the backend. Traefik's Gateway API provider names the service of an HTTPRoute's
                backendRef NAMESPACE-NAME-http-PORT (v3.6,
                pkg/provider/kubernetes/gateway/httproute.go loadHTTPService; NAMESPACE-NAME-PORT in
                earlier v3 releases, so both match), and its metrics add the provider
                `@kubernetesgateway`
    nginx       ingress-nginx's nginx_ingress_controller_requests by status, and
                nginx_ingress_controller_request_duration_seconds_bucket, by namespace and service
    prometheus  the user's own counters: `requests` and `errors` (PromQL instant vectors with
                {namespace}, {app}, {service}, {track}); no latency

A reading is every series of a selector at one instant (`time=` of the query, the same for both
tracks, so both are counted over the same window). A round's tally is the difference between
two readings, series by series, so that a pod or a gateway that restarted (a counter that went
down) counts from zero, and a series new since the last reading counts whole. Nothing here
sends a query; usertraffic.py does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.config import TrafficInput
from pipeline.config.model import fill_promql
from pipeline.rollout.judge import Tally

Series = frozenset[tuple[str, str]]  # a series' labels


@dataclass(frozen=True)
class Selectors:
    """The PromQL instant vectors that count one track's requests."""

    requests: str  # counters of every request
    # counters of failed requests; None: the 5xx of `requests` by `code_label`
    errors: str | None = None
    code_label: str = "code"
    # a latency histogram's _bucket counters, by le (seconds); None: none
    buckets: str | None = None


def selectors(traffic: TrafficInput, track: Mapping[str, str]) -> Selectors:
    """The selectors for one track; `track` holds namespace, app, service, track and port."""
    ns, svc = track["namespace"], track["service"]
    if traffic.provider == "traefik":
        label = f'service=~"{ns}-{svc}(-http)?-{track["port"]}@kubernetesgateway"'
        return Selectors(
            f"traefik_service_requests_total{{{label}}}",
            None,
            "code",
            f"traefik_service_request_duration_seconds_bucket{{{label}}}",
        )
    if traffic.provider == "nginx":
        label = f'namespace="{ns}",service="{svc}"'
        return Selectors(
            f"nginx_ingress_controller_requests{{{label}}}",
            None,
            "status",
            f"nginx_ingress_controller_request_duration_seconds_bucket{{{label}}}",
        )
    return Selectors(
        fill_promql(traffic.requests or "", dict(track)),
        fill_promql(traffic.errors or "", dict(track)),
    )


@dataclass(frozen=True)
class Reading:
    """One track's counters at one instant, series by series."""

    requests: dict[Series, float] = field(default_factory=dict)
    errors: dict[Series, float] = field(default_factory=dict)
    buckets: dict[Series, float] = field(default_factory=dict)

    @property
    def seen(self) -> bool:
        """Whether the gateway has counted any request of this track yet."""
        return bool(self.requests)


def series(body: Mapping) -> dict[Series, float]:
    """Each series of an instant query's vector answer, by its labels."""
    result = (body.get("data") or {}).get("result") or []
    return {frozenset(r["metric"].items()): float(r["value"][1]) for r in result}


def increase(before: Mapping[Series, float], after: Mapping[Series, float]) -> dict[Series, int]:
    """How much each series of `after` grew since `before`: a series that went down was reset and
    counts from zero; one not in `before` counts whole (the gateway makes it at its first
    request)."""
    grown = {}
    for labels, value in after.items():
        old = before.get(labels, 0.0)
        grown[labels] = round(value - old if value >= old else value)
    return grown


def tally(before: Reading, after: Reading, selector: Selectors) -> Tally:
    """What users sent one track between two readings."""
    requests = increase(before.requests, after.requests)
    total = sum(requests.values())
    if selector.errors is None:
        errors = sum(
            n
            for labels, n in requests.items()
            if dict(labels).get(selector.code_label, "").startswith("5")
        )
    else:  # another query, a moment apart: never more errors than requests
        errors = min(total, sum(increase(before.errors, after.errors).values()))
    return Tally(total, errors, buckets=histogram(increase(before.buckets, after.buckets)))


def histogram(grown: Mapping[Series, int]) -> tuple[tuple[float, int], ...]:
    """Cumulative (upper bound in ms, requests) from _bucket series by `le` (seconds)."""
    by_bound: dict[float, int] = {}
    for labels, n in grown.items():
        le = dict(labels).get("le")
        if le is not None:
            bound = math.inf if le == "+Inf" else float(le) * 1000
            by_bound[bound] = by_bound.get(bound, 0) + n
    return tuple(sorted(by_bound.items())) if by_bound.get(math.inf) else ()
