"""Canary analysis: URL templates, the service proxy, Prometheus, and rounds judged against the
stable. HTTP goes to an in-memory httpx transport here; tests/rollout/test_canary_live.py and
tests/test_real_node.py measure real servers."""

from __future__ import annotations

import httpx
import pytest

from pipeline.config import CanaryPolicy, HttpCheck, PrometheusCheck
from pipeline.errors import ConfigError
from pipeline.rollout.analysis import (
    Analysis,
    fill,
    judge_prometheus,
    missing_services,
    prometheus_value,
    service_of,
)

TRACKS = {"canary": {"namespace": "prod", "app": "hellok8s", "service": "hellok8s-canary", "track": "canary"},
          "stable": {"namespace": "prod", "app": "hellok8s", "service": "hellok8s", "track": "stable"}}


def test_fill_and_unknown_placeholders():
    assert fill("http://{service}.{namespace}.svc:3000/", TRACKS["canary"]) == "http://hellok8s-canary.prod.svc:3000/"
    with pytest.raises(ConfigError, match=r"unknown placeholder \{svc\} \(known: \{namespace\}, \{app\}, \{service\}, \{track\}\)"):
        fill("http://{svc}/", TRACKS["canary"])


@pytest.mark.parametrize("url, expected", [
    ("http://hellok8s.prod.svc:3000/", ("prod", "hellok8s", "3000", "/")),
    ("http://prometheus.monitoring.svc.cluster.local:9090/api/v1/query?x=1", ("monitoring", "prometheus", "9090", "/api/v1/query?x=1")),
    ("http://hellok8s.prod.svc/healthz", ("prod", "hellok8s", "80", "/healthz")),
    ("http://127.0.0.1:3000/", None),
    ("http://example.com/", None),
])
def test_service_of(url, expected):
    assert service_of(url) == expected


class ProxyCluster:
    """Answers service-proxy GETs from a function; records which Services exist."""

    def __init__(self, answer, services=("hellok8s", "hellok8s-canary")):
        self.answer, self.services, self.calls = answer, services, []

    def proxy_get(self, namespace, service, port, path, *, params=None, timeout=10.0):
        self.calls.append((namespace, service, port, path))
        return self.answer(service)

    def get(self, api_version, kind, name, namespace=None):
        return {"metadata": {"name": name}} if name in self.services else None


def by_track(canary_bad_every: int):
    counts = {"hellok8s": 0, "hellok8s-canary": 0}

    def answer(service):
        counts[service] += 1
        bad = service.endswith("-canary") and canary_bad_every and counts[service] % canary_bad_every == 0
        return (500 if bad else 200), b"ok"
    return answer


def analysis(answer, checks=None, prometheus=(), transport=None):
    checks = checks if checks is not None else (HttpCheck(url="http://{service}.{namespace}.svc:3000/", max_latency_ms=1000),)
    client = httpx.Client(transport=transport or httpx.MockTransport(lambda r: httpx.Response(404)))
    return Analysis(CanaryPolicy(http=checks, prometheus=prometheus), TRACKS, client, ProxyCluster(answer))


def test_a_healthy_canary_passes_on_evidence_through_the_service_proxy():
    a = analysis(by_track(0), checks=(HttpCheck(url="http://{service}.{namespace}.svc:3000/", requests=10),))
    first = a.round()[0]
    assert first.passed is None and "[INCONCLUSIVE]" in first.summary  # 10 requests do not prove 95% yet
    assert ("prod", "hellok8s-canary", "3000", "/") in a.cluster.calls and ("prod", "hellok8s", "3000", "/") in a.cluster.calls
    rounds = [a.round() for _ in range(3)] + [a.round(final=True)]
    assert rounds[-1][0].passed is True and "canary 0/50 errors" in rounds[-1][0].summary


def test_a_canary_with_many_errors_fails_naming_its_numbers_and_the_stable():
    a = analysis(by_track(4))  # 25% errors on the canary only
    verdicts = [a.round()[0] for _ in range(3)]
    failed = next(m for m in verdicts if m.passed is False)
    assert "vs stable 0/" in failed.summary and "[FAIL]" in failed.summary and "confidence" in failed.summary


def test_final_round_without_a_verdict_fails():
    a = analysis(by_track(0), checks=(HttpCheck(url="http://{service}.{namespace}.svc:3000/", requests=2),))
    assert a.round(final=True)[0].passed is False


def test_prometheus_that_does_not_answer_is_undecided_not_passed():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)
    a = analysis(by_track(0), checks=(), prometheus=(PrometheusCheck(url="http://127.0.0.1:9/", query="up", max=1),),
                 transport=httpx.MockTransport(refuse))
    m = a.round()[0]
    assert m.passed is None and "Prometheus at http://127.0.0.1:9/ did not answer the query (no answer)" in m.summary


def test_a_service_the_api_server_answers_for_counts_as_no_answer_and_is_told_once():
    from pipeline.errors import ProxyError

    def forbidden(service):
        raise ProxyError(f"Service/prod/{service}:3000: forbidden: User \"ci\" cannot get services/proxy", 403, {})
    lines: list[str] = []
    a = Analysis(CanaryPolicy(http=(HttpCheck(url="http://{service}.{namespace}.svc:3000/", requests=3),),
                              prometheus=(PrometheusCheck(url="http://prometheus.monitoring.svc:9090/", query="up", max=1),)),
                 TRACKS,
                 httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404))), ProxyCluster(forbidden),
                 progress=lines.append)
    http, prometheus = a.round()
    assert "canary 3/3 errors" in http.summary
    assert "did not answer the query (no answer: forbidden)" in prometheus.summary
    told = [line for line in lines if line.startswith("analysis: Service/")]
    assert told == ['analysis: Service/prod/hellok8s-canary:3000: forbidden: User "ci" cannot get services/proxy',
                    'analysis: Service/prod/hellok8s:3000: forbidden: User "ci" cannot get services/proxy',
                    'analysis: Service/prod/prometheus:3000: forbidden: User "ci" cannot get services/proxy']


def test_prometheus_value_is_judged_against_its_bounds():
    body = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "0.12"]}]}}
    a = analysis(by_track(0), checks=(), prometheus=(PrometheusCheck(url="http://prom:9090", query="q", max=0.05),),
                 transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    m = a.round()[0]
    assert (m.passed, m.summary) == (False, "0.12 vs ≤ 0.05")


def test_a_check_naming_a_missing_service_is_found_before_measuring():
    cluster = ProxyCluster(by_track(0), services=("hellok8s",))
    assert missing_services(cluster, ["http://hellok8s.prod.svc:3000/", "http://hellok8s-canary.prod.svc:3000/"]) == \
        "Service/prod/hellok8s-canary"
    assert missing_services(cluster, ["http://127.0.0.1:3000/"]) is None


def test_prometheus_judgement_bounds_and_no_data():
    check = PrometheusCheck(url="http://p", query="q", max=0.05)
    assert judge_prometheus(check, 0.01).passed
    assert judge_prometheus(check, 0.5).passed is False
    assert judge_prometheus(check, None).passed is None
    assert judge_prometheus(check, float("nan")).passed is None
    assert prometheus_value({"data": {"resultType": "vector", "result": [{"value": [1, "0.25"]}]}}) == 0.25
    assert prometheus_value({"data": {"resultType": "scalar", "result": [1, "3"]}}) == 3.0
    assert prometheus_value({"data": {"resultType": "vector", "result": []}}) is None
