"""kube/client.py at the HTTP layer: the exact URL, verb, content type, query and body of each
call, and each error path, against an httpx.MockTransport standing in for the API server.
(tests/rollout/test_sync_live.py and the other live tests send the same requests to a real one.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from pipeline.errors import ApiError, ClusterError, ProxyError
from pipeline.kube.api import ApiRequest, WatchQuery
from pipeline.kube.client import Cluster
from pipeline.retry import RetryPolicy

FAST = RetryPolicy(base=0.001, cap=0.005, total=5.0)  # retries without waiting
APPS = {"kind": "APIResourceList", "resources": [
    {"name": "deployments", "kind": "Deployment", "namespaced": True},
    {"name": "deployments/status", "kind": "Deployment", "namespaced": True}]}
CORE = {"kind": "APIResourceList", "resources": [
    {"name": "namespaces", "kind": "Namespace", "namespaced": False},
    {"name": "services", "kind": "Service", "namespaced": True}]}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "dev"},
              "spec": {"replicas": 1}}
Handler = Callable[[httpx.Request], httpx.Response]


def status(code: int, reason: str, message: str) -> httpx.Response:
    return httpx.Response(code, json={"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                      "message": message, "code": code})


class Server:
    """Answers discovery itself and everything else from `answer`; records every request."""

    def __init__(self, answer: Handler):
        self.answer, self.seen = answer, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/apis/apps/v1":
            return httpx.Response(200, json=APPS)
        if request.url.path == "/api/v1":
            return httpx.Response(200, json=CORE)
        return self.answer(request)

    def sent(self) -> list[httpx.Request]:
        """The requests after discovery."""
        return [r for r in self.seen if r.url.path not in ("/apis/apps/v1", "/api/v1")]


@pytest.fixture
def kubeconfig(tmp_path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://kube.test:6443"}}]
users: [{name: u, user: {token: sekret}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
""")
    return str(path)


@pytest.fixture
def cluster(kubeconfig) -> Callable[[Handler], tuple[Cluster, Server]]:
    def make(answer: Handler) -> tuple[Cluster, Server]:
        server = Server(answer)
        return Cluster(kubeconfig, retry_policy=FAST, transport=httpx.MockTransport(server)), server
    return make


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=json.loads(request.content) if request.content else {})


def test_server_side_apply_is_a_patch_of_the_object_as_apply_yaml_with_ships_field_manager(cluster):
    c, server = cluster(echo)
    c.apply(DEPLOYMENT)
    c.apply(DEPLOYMENT, dry_run=True, force=True, manager="other")
    plain, forced = server.sent()
    assert (plain.method, plain.url.path) == ("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web")
    assert plain.headers["Content-Type"] == "application/apply-patch+yaml"
    assert dict(plain.url.params) == {"fieldManager": "ship", "fieldValidation": "Strict"}
    assert json.loads(plain.content) == DEPLOYMENT
    assert dict(forced.url.params) == {"fieldManager": "other", "fieldValidation": "Strict", "force": "true",
                                       "dryRun": "All"}
    assert plain.headers["Authorization"] == "Bearer sekret" and plain.headers["User-Agent"] == "ship"


def test_json_patch_and_merge_patch_carry_their_content_types(cluster):
    c, server = cluster(echo)
    ops = [{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}]
    c.json_patch(DEPLOYMENT, ops)
    c.request(ApiRequest("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web", what="Deployment/dev/web",
                         body={"spec": {"replicas": 2}}, content_type="application/merge-patch+json"))
    jp, mp = server.sent()
    assert (jp.method, jp.url.path, jp.headers["Content-Type"]) == (
        "PATCH", "/apis/apps/v1/namespaces/dev/deployments/web", "application/json-patch+json")
    assert json.loads(jp.content) == ops and not jp.url.params
    assert mp.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(mp.content) == {"spec": {"replicas": 2}}


def test_create_replace_delete_get_and_list_use_the_verbs_and_paths_kubectl_does(cluster):
    c, server = cluster(lambda r: httpx.Response(200, json={"items": [{"metadata": {"name": "web"}}]}))
    c.create(DEPLOYMENT)
    c.replace(DEPLOYMENT)
    assert c.delete("apps/v1", "Deployment", "web", "dev") is True
    c.get("v1", "Namespace", "dev")
    items = c.list("apps/v1", "Deployment", "dev", selector="ship.dev/app=web")
    sent = [(r.method, r.url.path) for r in server.sent()]
    assert sent == [("POST", "/apis/apps/v1/namespaces/dev/deployments"),
                    ("PUT", "/apis/apps/v1/namespaces/dev/deployments/web"),
                    ("DELETE", "/apis/apps/v1/namespaces/dev/deployments/web"),
                    ("GET", "/api/v1/namespaces/dev"),
                    ("GET", "/apis/apps/v1/namespaces/dev/deployments")]
    assert json.loads(server.sent()[2].content) == {"propagationPolicy": "Background"}
    assert dict(server.sent()[4].url.params) == {"labelSelector": "ship.dev/app=web"}
    assert items == [{"metadata": {"name": "web"}, "apiVersion": "apps/v1", "kind": "Deployment"}]


def test_discovery_is_asked_once_per_group_and_subresources_are_left_out(cluster):
    c, server = cluster(echo)
    for _ in range(3):
        c.get("apps/v1", "Deployment", "web", "dev")
    assert [r.url.path for r in server.seen].count("/apis/apps/v1") == 1
    assert [i.plural for i in c.resources("apps/v1")] == ["deployments"]
    with pytest.raises(ClusterError, match=r"^the cluster has no kind StatefulSet in API apps/v1$"):
        c.info("apps/v1", "StatefulSet")


def test_an_api_group_the_server_does_not_serve_says_so(cluster):
    c, _ = cluster(lambda r: status(404, "NotFound", "the server could not find the requested resource"))
    with pytest.raises(ClusterError, match=r"does not serve API gateway.networking.k8s.io/v1 \(is its CRD installed\?\)"):
        c.info("gateway.networking.k8s.io/v1", "HTTPRoute")


def test_a_refusal_is_one_line_naming_the_object_reason_and_status(cluster):
    c, _ = cluster(lambda r: status(422, "Invalid", 'Deployment.apps "web" is invalid:\nspec.replicas: must be >= 0'))
    with pytest.raises(ApiError) as caught:
        c.apply(DEPLOYMENT)
    assert str(caught.value) == ('Deployment/dev/web: Invalid (422): Deployment.apps "web" is invalid: '
                                 "spec.replicas: must be >= 0")
    assert caught.value.status == 422 and caught.value.reason == "Invalid"


def test_forbidden_quotes_the_servers_message_and_a_body_that_is_not_json_is_quoted_short(cluster):
    c, _ = cluster(lambda r: status(403, "Forbidden", 'deployments.apps "web" is forbidden: User "ci" cannot patch'))
    with pytest.raises(ApiError, match=r'^Deployment/dev/web: forbidden: deployments.apps "web" is forbidden: User "ci"'):
        c.apply(DEPLOYMENT)
    c, _ = cluster(lambda r: httpx.Response(400, text="x" * 1000))
    with pytest.raises(ApiError) as caught:
        c.replace(DEPLOYMENT)
    assert str(caught.value) == "Deployment/dev/web: Bad Request (400): " + "x" * 300


def test_get_and_delete_read_404_as_absent(cluster):
    c, _ = cluster(lambda r: status(404, "NotFound", 'deployments.apps "web" not found'))
    assert c.get("apps/v1", "Deployment", "web", "dev") is None
    assert c.delete("apps/v1", "Deployment", "web", "dev") is False


def flaky(failures: int, code: int = 503) -> Handler:
    left = [failures]

    def answer(request: httpx.Request) -> httpx.Response:
        left[0] -= 1
        return status(code, "ServiceUnavailable", "etcd leader changed") if left[0] >= 0 else echo(request)
    return answer


def test_idempotent_requests_are_retried_after_a_5xx_and_every_attempt_is_counted(cluster):
    lines: list[str] = []
    c, server = cluster(flaky(2))
    c.progress = lines.append
    c.apply(DEPLOYMENT)
    assert len(server.sent()) == 3 and c.requests == 1 + 3  # discovery, then three attempts
    assert lines[0].startswith("Deployment/dev/web: PATCH HTTP 503 from https://kube.test:6443; retrying in ")
    assert lines[1].endswith("(attempt 3)")


def test_a_merge_patch_or_create_is_not_sent_twice_after_a_5xx_but_any_request_is_after_a_429(cluster):
    c, server = cluster(flaky(2))
    with pytest.raises(ApiError, match=r"^Deployment/dev/web: ServiceUnavailable \(503\): etcd leader changed$"):
        c.request(ApiRequest("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web", what="Deployment/dev/web", body={},
                             content_type="application/merge-patch+json"))
    with pytest.raises(ApiError, match=r"\(503\)"):
        c.create(DEPLOYMENT)
    assert len(server.sent()) == 2
    c, server = cluster(flaky(1, 429))
    c.create(DEPLOYMENT)
    assert [r.method for r in server.sent()] == ["POST", "POST"]


def test_giving_up_names_the_attempts(cluster):
    c, _ = cluster(flaky(100))
    with pytest.raises(ApiError, match=r"^Deployment/dev/web: ServiceUnavailable \(503, after \d+ attempts in \d+\.\ds\): "):
        c.apply(DEPLOYMENT)


def refused(request: httpx.Request) -> httpx.Response:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as exc:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request) from exc


def test_a_refused_connection_fails_at_once_until_the_server_has_answered(cluster):
    c, server = cluster(refused)
    with pytest.raises(ClusterError, match=r"^cluster https://kube.test:6443 unreachable: ConnectError: \[Errno 111\]"):
        c.ping()
    assert len(server.seen) == 1 and c.requests == 1


def test_watch_opens_with_its_query_retries_like_a_get_and_yields_typed_events(cluster):
    events = [{"type": "ADDED", "object": {"metadata": {"name": "web", "resourceVersion": "7"}}},
              {"type": "MODIFIED", "object": {"metadata": {"name": "web", "resourceVersion": "8"}}}]
    body = "\n".join(json.dumps(e) for e in events) + "\n\n"
    tries = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        tries[0] += 1
        if tries[0] == 1:
            return status(429, "TooManyRequests", "too many requests, please try again later")
        return httpx.Response(200, content=body.encode())

    c, server = cluster(answer)
    got = list(c.watch("apps/v1", "Deployment", "dev", WatchQuery(selector="a=b", resource_version="6", timeout=30)))
    assert [(t, o["kind"], o["apiVersion"], o["metadata"]["resourceVersion"]) for t, o in got] == [
        ("ADDED", "Deployment", "apps/v1", "7"), ("MODIFIED", "Deployment", "apps/v1", "8")]
    opened = server.sent()[-1]
    assert (opened.method, opened.url.path) == ("GET", "/apis/apps/v1/namespaces/dev/deployments")
    assert dict(opened.url.params) == {"watch": "true", "timeoutSeconds": "30", "allowWatchBookmarks": "false",
                                       "labelSelector": "a=b", "resourceVersion": "6"}
    assert len(server.sent()) == 2 and c.requests == 1 + 2


def test_a_refused_watch_is_one_line_naming_what_was_watched(cluster):
    c, _ = cluster(lambda r: status(403, "Forbidden", 'pods is forbidden: User "ci" cannot watch resource "pods"'))
    with pytest.raises(ApiError, match=r'^watch Service in dev: forbidden: pods is forbidden: User "ci" cannot watch'):
        list(c.watch("v1", "Service", "dev"))


def proxied(answer: Handler) -> Handler:
    def check(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/namespaces/prod/services/web:3000/proxy/healthz"
        return answer(request)
    return check


@pytest.mark.parametrize("code", [200, 404, 500, 503])
def test_the_service_proxy_hands_back_the_services_own_answer_whatever_it_is_and_never_retries_it(cluster, code):
    c, server = cluster(proxied(lambda r: httpx.Response(code, text="from the app")))
    assert c.proxy_get("prod", "web", "3000", "/healthz", params={"q": "1"}) == (code, b"from the app")
    assert len(server.sent()) == 1 and dict(server.sent()[0].url.params) == {"q": "1"}


@pytest.mark.parametrize("code, reason, unanswered", [
    (404, "NotFound", "not found"), (403, "Forbidden", "forbidden"), (503, "ServiceUnavailable", "no endpoint answered"),
])
def test_the_api_servers_own_answer_for_a_service_is_a_proxy_error_naming_why(cluster, code, reason, unanswered):
    c, _ = cluster(proxied(lambda r: status(code, reason, f"{reason.lower()} for services/web")))
    with pytest.raises(ProxyError, match=r"^Service/prod/web:3000: ") as caught:
        c.proxy_get("prod", "web", "3000", "healthz")
    assert caught.value.status == code and caught.value.unanswered == unanswered


def test_the_service_proxy_is_retried_when_the_api_server_is_busy_or_gone(cluster):
    c, server = cluster(proxied(flaky(1, 429)))
    assert c.proxy_get("prod", "web", "3000", "healthz")[0] == 200
    assert len(server.sent()) == 2
    c, _ = cluster(refused)
    with pytest.raises(ClusterError, match="unreachable"):
        c.proxy_get("prod", "web", "3000", "healthz")


def test_a_fork_shares_the_transport_and_policy_but_counts_its_own_requests(cluster):
    c, server = cluster(echo)
    twin = c.fork()
    twin.ping()
    assert twin.requests == 1 and c.requests == 0 and len(server.seen) == 1 and twin.retry is c.retry
