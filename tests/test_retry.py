"""The retry policy (pipeline/retry.py): what is retried, how long it waits, where it stops;
and the client and registry using it against real HTTP servers on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import threading

import pytest

from pipeline import retry
from pipeline.kube.api import ApiRequest
from pipeline.retry import Outcome, RetryPolicy, decide

P = RetryPolicy(attempts=5, base=0.5, cap=4.0, total=20.0, jitter=0.5)


@pytest.mark.parametrize("method,content_type,expected", [
    ("GET", None, True), ("DELETE", None, True), ("PUT", None, True), ("HEAD", None, True),
    ("PATCH", "application/apply-patch+yaml", True),  # server-side apply: the same apply twice is one
    ("PATCH", "application/merge-patch+json", False), ("POST", "application/json", False),
])
def test_idempotent_methods(method, content_type, expected):
    assert retry.idempotent(method, content_type) is expected


@pytest.mark.parametrize("outcome,is_idempotent,expected", [
    (Outcome(429), False, True),  # refused before it was handled: safe even for a create
    (Outcome(None, sent=False), False, True),  # no connection: nothing reached the server
    (Outcome(None, sent=True), False, False),  # the create may have happened: not again
    (Outcome(None, sent=True), True, True),
    (Outcome(500), False, False), (Outcome(503), False, False),
    (Outcome(500), True, True), (Outcome(502), True, True), (Outcome(503), True, True), (Outcome(504), True, True),
    (Outcome(404), True, False), (Outcome(409), True, False), (Outcome(422), True, False), (Outcome(401), True, False),
])
def test_what_is_retried(outcome, is_idempotent, expected):
    assert retry.retryable(outcome, is_idempotent=is_idempotent) is expected


def test_backoff_grows_exponentially_to_the_cap_with_jitter_inside_its_share():
    assert [retry.backoff(P, n, 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [retry.backoff(P, n, 0.0) for n in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert retry.backoff(P, 3, 0.5) == 1.5


def test_retry_after_is_honoured_never_sooner_and_spread_by_jitter():
    assert decide(P, Outcome(429, retry_after=3.0), 1, 0.0, 0.0, is_idempotent=True) == 3.0
    assert decide(P, Outcome(429, retry_after=3.0), 1, 0.0, 1.0, is_idempotent=True) == 3.25
    assert decide(P, Outcome(429, retry_after=1.0), 4, 0.0, 0.0, is_idempotent=False) == 1.0  # longer than no backoff


def test_the_total_bounds_the_waiting():
    assert decide(P, Outcome(503), 2, 19.5, 1.0, is_idempotent=True) is None  # 19.5 + 1.0 > 20
    assert decide(P, Outcome(503), 2, 19.5, 0.0, is_idempotent=True) == 0.5
    assert decide(P, Outcome(429, retry_after=30.0), 1, 0.0, 0.0, is_idempotent=True) is None  # asks for more than the budget
    assert decide(P, Outcome(503), 5, 0.0, 0.0, is_idempotent=True) is None  # attempts used up
    assert decide(RetryPolicy(total=0), Outcome(503), 1, 0.0, 0.0, is_idempotent=True) is None


def test_retry_after_as_seconds_or_an_http_date():
    now = dt.datetime(2026, 11, 26, 6, 0, 0, tzinfo=dt.UTC)
    assert retry.parse_retry_after("1", now) == 1.0
    assert retry.parse_retry_after("Thu, 26 Nov 2026 06:00:07 GMT", now) == 7.0
    assert retry.parse_retry_after("Thu, 26 Nov 2026 05:59:00 GMT", now) == 0.0
    assert retry.parse_retry_after("soon", now) is None and retry.parse_retry_after(None, now) is None


def test_policy_total_from_the_environment():
    assert retry.policy_from_env({}).total == RetryPolicy().total
    assert retry.policy_from_env({"SHIP_RETRY_SECONDS": "3"}).total == 3.0
    assert retry.policy_from_env({"SHIP_RETRY_SECONDS": "0"}).total == 0.0


def test_send_retries_until_success_sleeping_what_decide_says():
    answers = [Outcome(503), Outcome(None, sent=False), None]
    slept: list[float] = []
    told: list[tuple[Outcome, int, float]] = []
    now = [0.0]

    def attempt() -> int:
        return len(answers)

    def failure(_value: int) -> Outcome | None:
        return answers.pop(0)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    value, sent = retry.send(attempt, failure, P, is_idempotent=True, on_retry=lambda o, n, w: told.append((o, n, w)),
                             waiting=retry.Waiting(sleep=sleep, monotonic=lambda: now[0], rand=lambda: 0.0))
    assert value == 1 and sent.attempts == 3 and sent.outcome is None
    assert slept == [0.25, 0.5] and [n for _, n, _ in told] == [1, 2]
    assert sent.note() == " (after 3 attempts in 0.8s)"


def test_send_gives_up_with_the_last_outcome():
    value, sent = retry.send(lambda: "busy", lambda _v: Outcome(500), P, is_idempotent=False,
                             waiting=retry.Waiting(sleep=lambda s: None))
    assert value == "busy" and sent.attempts == 1 and sent.outcome == Outcome(500)


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers the first `failures` requests with `status` (and Retry-After: 1), then 200."""

    failures = 2
    status = 429
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        if len(self.seen) <= self.failures:
            body = b'{"kind":"Status","reason":"TooManyRequests","message":"too many requests"}'
            self.send_response(self.status)
            self.send_header("Retry-After", "1")
        else:
            body = b'{"major":"1","minor":"34","gitVersion":"v1.34.4"}'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    _Flaky.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def kubeconfig_for(server, tmp_path) -> str:
    """A kubeconfig naming the plain-HTTP test server, with a bearer token."""
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: flaky, cluster: {{server: "http://127.0.0.1:{server.server_port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: flaky, context: {{cluster: flaky, user: u}}}}]
current-context: flaky
""")
    return str(path)


def test_the_cluster_client_waits_out_a_429s_retry_after(flaky, tmp_path):
    from pipeline.kube.client import Cluster

    lines: list[str] = []
    cluster = Cluster(kubeconfig_for(flaky, tmp_path), progress=lines.append, retry_policy=RetryPolicy(total=10))
    assert cluster.request(ApiRequest("GET", "/version", what="cluster version"))["gitVersion"] == "v1.34.4"
    assert cluster.requests == 3 and len(_Flaky.seen) == 3
    assert lines[0].startswith("cluster version: GET HTTP 429, Retry-After 1s from http://127.0.0.1:")
    assert "retrying in 1." in lines[0] and lines[0].endswith("(attempt 2)")


def test_the_cluster_client_gives_up_within_its_budget_naming_the_attempts(flaky, tmp_path):
    from pipeline.errors import ClusterError
    from pipeline.kube.client import Cluster

    _Flaky.failures = 100
    try:
        cluster = Cluster(kubeconfig_for(flaky, tmp_path), retry_policy=RetryPolicy(total=2.5))
        with pytest.raises(ClusterError, match=r"cluster version: TooManyRequests \(429, after 3 attempts in 2\.\ds\): too many requests"):
            cluster.request(ApiRequest("GET", "/version", what="cluster version"))
    finally:
        _Flaky.failures = 2


def test_the_registry_retries_a_5xx(flaky):
    from pipeline.image.registry import Registry

    _Flaky.status = 503
    try:
        reg = Registry(f"127.0.0.1:{flaky.server_port}", retry_policy=RetryPolicy(total=10))
        assert reg.manifest_digest("hellok8s", "v1") is not None
        assert len(_Flaky.seen) == 3
    finally:
        _Flaky.status = 429


def test_a_refused_connection_or_unknown_host_fails_fast_only_when_asked():
    import socket

    import httpx

    from pipeline.retry import http_failure

    def chained(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise cause
            except OSError as inner:
                raise httpx.ConnectError(str(inner)) from inner
        except httpx.ConnectError as exc:
            return exc

    refused, unknown = chained(ConnectionRefusedError(111, "Connection refused")), chained(socket.gaierror(-2, "Name or service not known"))
    timeout = httpx.ConnectTimeout("timed out")
    assert http_failure(refused, fail_fast=True) is None and http_failure(unknown, fail_fast=True) is None
    assert http_failure(refused) == Outcome(None, sent=False)  # after the server answered once: a restart, retried
    assert http_failure(timeout, fail_fast=True) == Outcome(None, sent=False)  # a timeout keeps its retries
