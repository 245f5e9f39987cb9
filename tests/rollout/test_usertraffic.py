"""The traffic input: the gateway's counters read from Prometheus, round by round, into the judge.

A fake Prometheus holds Traefik's counters (by service and code, and latency buckets by le) and
answers instant queries on /api/v1/query as Prometheus does; the tests move the counters as
users would. The seeded simulation runs whole bakes on counter deltas with uneven windows and
rounds without a request."""

from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict

import pytest

from pipeline.config import TrafficInput
from pipeline.rollout import counters
from pipeline.rollout.analysis import fill
from pipeline.rollout.counters import Reading, Selectors
from pipeline.rollout.judge import Tally
from pipeline.rollout.usertraffic import UserTraffic

TRACKS = {t: {"namespace": "prod", "app": "hellok8s", "track": t, "port": "3000",
              "service": "hellok8s-canary" if t == "canary" else "hellok8s"} for t in ("canary", "stable")}
CANARY, STABLE = "prod-hellok8s-canary-http-3000@kubernetesgateway", "prod-hellok8s-http-3000@kubernetesgateway"
CANARY_MATCH = 'service=~"prod-hellok8s-canary(-http)?-3000@kubernetesgateway"'
TRAEFIK = TrafficInput(provider="traefik", prometheus="http://prometheus:9090", max_latency_ms=1000)
BOUNDS = ("0.1", "0.25", "0.5", "1", "2.5", "+Inf")


class FakePrometheus:
    """Traefik's counters as Prometheus holds them; `get` has Analysis.get's signature."""

    def __init__(self):
        self.requests: dict[tuple[str, str], float] = defaultdict(float)  # (service, code) -> count
        self.buckets: dict[tuple[str, str], float] = defaultdict(float)  # (service, le) -> count
        self.up = True
        self.queries: list[dict] = []

    def serve(self, service: str, ok: int, errors: int = 0, seconds: float = 0.05) -> None:
        self.requests[(service, "200")] += ok
        self.requests[(service, "500")] += errors
        for le in BOUNDS:
            if le == "+Inf" or seconds <= float(le):
                self.buckets[(service, le)] += ok + errors

    def get(self, url, timeout, params):
        if not self.up:
            return None, b""
        self.queries.append(params)
        query = params["query"]
        pattern = re.search(r'service=~"([^"]+)"', query)[1]
        if query.startswith("traefik_service_requests_total"):
            result = [{"metric": {"service": s, "code": c, "method": "GET"}, "value": [0, str(v)]}
                      for (s, c), v in self.requests.items() if re.fullmatch(pattern, s)]
        else:
            result = [{"metric": {"service": s, "le": le}, "value": [0, str(v)]}
                      for (s, le), v in self.buckets.items() if re.fullmatch(pattern, s)]
        return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def user_traffic(prom: FakePrometheus, traffic: TrafficInput = TRAEFIK) -> UserTraffic:
    return UserTraffic(traffic, TRACKS, prom.get, fill, now=lambda: 1000.0)


# --------------------------------------------------------------------------------- counters
def test_traefik_names_a_gateway_api_backend_namespace_name_http_port():
    s = counters.selectors(TRAEFIK, TRACKS["canary"])
    assert s.requests == f"traefik_service_requests_total{{{CANARY_MATCH}}}"
    assert s.buckets == f"traefik_service_request_duration_seconds_bucket{{{CANARY_MATCH}}}"
    assert re.fullmatch(re.search(r'"(.+)"', CANARY_MATCH)[1], "prod-hellok8s-canary-3000@kubernetesgateway")
    assert (s.errors, s.code_label) == (None, "code")


def test_nginx_and_your_own_counters():
    nginx = counters.selectors(TrafficInput("nginx", "http://p"), TRACKS["stable"])
    assert nginx.requests == 'nginx_ingress_controller_requests{namespace="prod",service="hellok8s"}'
    assert nginx.code_label == "status"
    own = TrafficInput("prometheus", "http://p", max_latency_ms=None, requests='req{ns="{namespace}",track="{track}"}',
                       errors='req{ns="{namespace}",track="{track}",code=~"5.."}')
    s = counters.selectors(own, TRACKS["canary"])
    assert (s.requests, s.errors, s.buckets) == ('req{ns="prod",track="canary"}', 'req{ns="prod",track="canary",code=~"5.."}',
                                                 None)


def test_increase_counts_resets_from_zero_and_new_series_whole():
    a, b, c = (frozenset({("pod", p)}) for p in "abc")
    assert counters.increase({a: 10, b: 50}, {a: 15, b: 3, c: 7}) == {a: 5, b: 3, c: 7}


def test_a_round_tally_takes_5xx_from_the_code_label_and_buckets_by_le():
    def reading(ok, bad, fast, slow):
        requests = {frozenset({("code", "200")}): ok, frozenset({("code", "503")}): bad}
        buckets = {frozenset({("le", "1")}): fast, frozenset({("le", "+Inf")}): fast + slow}
        return Reading(requests, {}, buckets)
    selector = Selectors("q", buckets="b")
    t = counters.tally(reading(100, 2, 100, 2), reading(150, 5, 148, 7), selector)
    assert t == Tally(53, 3, buckets=((1000.0, 48), (math.inf, 53)))


# ------------------------------------------------------------------------------ user traffic
def test_the_first_round_only_reads_where_the_counters_stand():
    prom = FakePrometheus()
    prom.serve(STABLE, 1000)
    passed, summary = user_traffic(prom).measure(final=False)
    assert passed is None and summary.startswith("counting from now (series for stable)")
    assert {q["time"] for q in prom.queries} == {"1000.000"}  # both tracks at one instant


def test_a_canary_failing_for_users_fails_naming_the_numbers():
    prom, verdicts = FakePrometheus(), []
    t = user_traffic(prom)
    t.measure(final=False)
    for _ in range(6):
        prom.serve(CANARY, 44, 6)
        prom.serve(STABLE, 490, 10)
        verdicts.append(t.measure(final=False))
    failed = next(s for p, s in verdicts if p is False)
    assert t.name == "users' traffic through the gateway (traefik counters in Prometheus)"
    assert re.match(r"canary \d+/\d+ errors \(12\.0%\) vs stable \d+/\d+ \(2\.0%\)", failed), failed
    assert "[FAIL]" in failed


def test_a_slow_canary_fails_on_the_gateways_histogram():
    prom = FakePrometheus()
    t = user_traffic(prom)
    t.measure(final=False)
    verdicts = []
    for _ in range(4):
        prom.serve(CANARY, 50, seconds=2.0)
        prom.serve(STABLE, 500)
        verdicts.append(t.measure(final=False))
    passed, summary = verdicts[-1]
    assert passed is False and "p95 ≤ 2500ms vs ≤ 1000ms (stable p95 ≤ 100ms)" in summary and "too slow" in summary


def test_a_healthy_canary_passes_on_users_evidence():
    prom = FakePrometheus()
    t = user_traffic(prom)
    t.measure(final=False)
    for _ in range(6):
        prom.serve(CANARY, 50)
        prom.serve(STABLE, 450, 5)
    passed, summary = t.measure(final=True)
    assert passed is True and summary.startswith("canary 0/300 errors (0.0%) vs stable 30/2730 (1.1%)"), summary


def test_too_few_requests_never_pass_and_say_the_counts():
    prom = FakePrometheus()
    t = user_traffic(prom)
    t.measure(final=False)
    for _ in range(6):
        prom.serve(CANARY, 1)
        prom.serve(STABLE, 9)
        passed, summary = t.measure(final=False)
        assert passed is None
    passed, summary = t.measure(final=True)
    assert passed is False and "canary 0/6 errors" in summary
    assert "too few requests: the canary was sent 6 (a pass needs at least" in summary


def test_a_missing_series_is_undecided_and_named():
    prom = FakePrometheus()  # nothing counted: a wrong provider, or Traefik not scraped
    t = user_traffic(prom)
    t.measure(final=False)
    passed, summary = t.measure(final=False)
    assert passed is None
    assert f"no series for the canary and the stable yet: traefik_service_requests_total{{{CANARY_MATCH}}} has no " \
           "series (no request through the gateway yet, the wrong provider, or the gateway's metrics are not " \
           "scraped)" in summary
    assert t.measure(final=True)[0] is False


def test_a_silent_prometheus_is_undecided_and_the_next_reading_counts_the_gap():
    prom = FakePrometheus()
    t = user_traffic(prom)
    t.measure(final=False)
    prom.serve(CANARY, 40)
    prom.serve(STABLE, 400)
    t.measure(final=False)
    prom.up = False
    prom.serve(CANARY, 40)
    passed, summary = t.measure(final=False)
    assert passed is None
    assert summary == ("Prometheus at http://prometheus:9090 did not answer (no answer); so far canary 0/40 errors, "
                       "stable 0/400")
    assert t.measure(final=True)[0] is None  # still silent at the end: undecided, so the gate fails the step
    prom.up = True
    assert "canary 0/80 errors" in t.measure(final=False)[1]


def test_a_stopped_gateway_leaves_no_canary_samples_undecided_then_failed():
    prom = FakePrometheus()
    t = user_traffic(prom)
    t.measure(final=False)
    prom.serve(CANARY, 5)
    prom.serve(STABLE, 45)
    assert t.measure(final=False)[0] is None
    prom.requests.clear()  # Traefik is gone: its series go stale, Prometheus answers with none
    prom.buckets.clear()
    passed, summary = t.measure(final=False)
    assert passed is None and "canary 0/5 errors" in summary
    assert "the gateway's series for the canary and the stable are gone (the gateway stopped, or its metrics are no " \
           "longer scraped)" in summary
    passed, summary = t.measure(final=True)
    assert passed is False and "too few requests: the canary was sent 5" in summary
    assert "the gateway's series for the canary and the stable are gone" in summary


def test_few_users_are_topped_up_with_synthetic_gets_saying_so():
    prom = FakePrometheus()
    got = []

    def get(url, timeout, params):
        if params is None:
            got.append(url)
            return 200, b"ok"
        return prom.get(url, timeout, params)
    traffic = TrafficInput("traefik", "http://prometheus:9090", top_up="http://{service}.{namespace}.svc:3000/",
                           top_up_requests=30)
    t = UserTraffic(traffic, TRACKS, get, fill)
    t.measure(final=False)
    prom.serve(CANARY, 10)
    prom.serve(STABLE, 90)
    passed, summary = t.measure(final=False)
    assert summary.startswith("canary 0/30 errors") and "vs stable 0/110" in summary
    assert "(topped up with 20 synthetic GETs per track this round, 20 in all)" in summary
    assert got.count("http://hellok8s-canary.prod.svc:3000/") == 20 and got.count("http://hellok8s.prod.svc:3000/") == 20


# ---------------------------------------------------------------------------- the simulation
def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method, in chunks so that large means do not underflow."""
    n = 0
    while mean > 0:
        step = min(mean, 30.0)
        mean -= step
        limit, p = math.exp(-step), 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                break
            n += 1
    return n


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Successes in n trials of probability p, exactly, by skipping the failures between them
    (geometric gaps): about n·p + 1 draws instead of n."""
    if p <= 0:
        return 0
    count, at, log_q = 0, -1, math.log1p(-p)
    while True:
        at += 1 + int(math.log(1.0 - rng.random()) / log_q)
        if at >= n:
            return count
        count += 1


def bake(rng: random.Random, canary_rate: float, stable_rate: float, rounds: int = 7, max_rounds: int = 21) -> bool:
    """One step as the gate runs it, on counter deltas: users at ~80 requests/s, 10% to the canary;
    windows of 2 to 8 s, one in six a lull without a request; a FAIL ends it, and from the end of
    the bake (round 7) a PASS does; undecided, it goes on up to max_bake (round 21), whose round is
    final. True when the step was aborted."""
    prom = FakePrometheus()
    prom.serve(STABLE, 5000, 100)  # the stable's counters did not start at zero
    t = user_traffic(prom)
    t.measure(final=False)
    for r in range(1, max_rounds):
        seconds = 0.0 if rng.random() < 1 / 6 else rng.uniform(2, 8)
        for service, share, rate in ((CANARY, 0.1, canary_rate), (STABLE, 0.9, stable_rate)):
            n = poisson(rng, 80 * share * seconds)
            errors = binomial(rng, n, rate)
            prom.serve(service, n - errors, errors)
        passed, _ = t.measure(final=r == max_rounds - 1)
        if passed is False:
            return True
        if passed is True and r >= rounds - 1:
            return False
    return True


@pytest.mark.parametrize("canary, stable, abort_bound", [(0.02, 0.02, "< 1%"), (0.12, 0.02, "> 99%")],
                         ids=["2% beside 2%", "12% beside 2%"])
def test_simulated_aborts_on_counter_deltas(canary, stable, abort_bound):
    rng, bakes = random.Random(f"{canary}-{stable}"), 1000
    aborted = sum(bake(rng, canary, stable) for _ in range(bakes))
    print(f"canary {canary:.0%} beside stable {stable:.0%}: {aborted}/{bakes} bakes aborted")
    assert aborted < bakes * 0.01 if abort_bound == "< 1%" else aborted > bakes * 0.99
