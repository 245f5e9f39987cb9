"""The cluster adapter: a small, typed, thread-safe Kubernetes REST client on httpx.

The official `kubernetes` package loads kubeconfig (contexts, certificates, tokens, exec
plugins); requests then go through this client rather than the generated API classes, and it
earns its place by four things ship needs and they do not give together: discovery done lazily,
one API group at a time (a sync touching four kinds asks for four groups, not all of them);
objects kept as the raw dicts the API server sent, so server-side apply and diffs see exactly
what is stored; errors that name the object, the reason and the status in one line, the same
for every call, watches and the service proxy included (ClusterError, ApiError); and a request
count, so a benchmark can say how many requests a sync made. (Connection pooling is not
a reason: the official client pools connections too.) This module decides nothing: callers
plan, this performs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from pipeline import names, retry
from pipeline.errors import ApiError, ClusterError, ProxyError
from pipeline.kube.api import ApiRequest, ResourceInfo, WatchQuery
from pipeline.kube.credentials import KubeAuth, load_kubeconfig, ssl_context
from pipeline.progress import Progress, quiet
from pipeline.refs import subject

FIELD_MANAGER = names.MANAGER
# An API request answers in well under a second; a stalled connection is given up on (and
# retried, when that is safe) long before the API server's own 60 s request timeout.
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _is_status(resp: httpx.Response) -> bool:
    """The API server's own answer (a kind: Status), not a proxied one."""
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return False
    try:
        return bool(resp.json().get("kind") == "Status")
    except (ValueError, AttributeError):
        return False


class Cluster:
    """One cluster, reached through a kubeconfig context."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        max_connections: int = 32,
        retry_policy: retry.RetryPolicy | None = None,
        progress: Progress = quiet,
        transport: httpx.BaseTransport | None = None,
    ):
        """`transport`: where requests go instead of the network (httpx.MockTransport in unit
        tests)."""
        self._args = (kubeconfig, context, max_connections, transport)
        self.retry = retry_policy if retry_policy is not None else retry.policy_from_env()
        self.progress = progress  # where retries are told
        conf = load_kubeconfig(kubeconfig, context)
        self.host = conf.host
        self.context = context
        # tls-server-name: the name the server's certificate is checked against (and sent as SNI).
        self._extensions = (
            {"sni_hostname": conf.tls_server_name} if getattr(conf, "tls_server_name", None) else {}
        )
        self._http = httpx.Client(
            base_url=conf.host,
            headers={"User-Agent": "ship", "Accept": "application/json"},
            auth=KubeAuth(conf, lambda: load_kubeconfig(kubeconfig, context)),
            verify=ssl_context(conf),
            timeout=TIMEOUT,
            proxy=getattr(conf, "proxy", None) or None,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )
        self._discovery: dict[str, list[ResourceInfo]] = {}
        self._lock = threading.Lock()
        self._answered = False  # until the server first answers, a refused connection fails at once
        self.requests = 0  # counted, so benchmarks can say how many a sync made

    def fork(self) -> Cluster:
        """A second client to the same cluster, with connections of its own."""
        kubeconfig, context, max_connections, transport = self._args
        twin = Cluster(
            kubeconfig,
            context,
            max_connections=max_connections,
            retry_policy=self.retry,
            progress=self.progress,
            transport=transport,
        )
        # the server is known to be there: a refused connection is a restart
        twin._answered = self._answered
        return twin

    def close(self) -> None:
        self._http.close()

    # --- raw requests -----------------------------------------------------------------------

    def request(self, req: ApiRequest) -> dict:
        """One API request, retried as pipeline/retry.py decides; `req.idempotent` overrides what
        the method and content type say (a caller that reads 409 AlreadyExists right may retry a
        create)."""
        body = req.body
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        headers = {"Content-Type": req.content_type} if body is not None else None
        request = self._http.build_request(
            req.method,
            req.path,
            params=req.params,
            content=data,
            headers=headers,
            timeout=req.timeout or TIMEOUT,
            extensions=self._extensions,
        )
        is_idempotent = (
            retry.idempotent(req.method, req.content_type)
            if req.idempotent is None
            else req.idempotent
        )
        resp = self._send(request, req.what, is_idempotent=is_idempotent)
        return resp.json() if resp.content else {}

    def _send(
        self,
        request: httpx.Request,
        what: str,
        *,
        is_idempotent: bool,
        stream: bool = False,
        answer: Callable[[httpx.Response], bool] = lambda _: False,
    ) -> httpx.Response:
        """The one path every request takes: counted, retried as pipeline/retry.py decides, and a
        failure raised as one line naming `what`, the status and the attempts. `answer(response)`:
        an error status that is the caller's to read (a proxied Service's own answer), not a
        failure."""

        def attempt() -> httpx.Response | httpx.HTTPError:
            self.requests += 1
            try:
                response = self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                return exc
            self._answered = True
            if stream and response.status_code >= 400:
                # an error is read whole now, so a retry or the message needs no open stream
                response.read()
                response.close()
            return response

        def failure(value: httpx.Response | httpx.HTTPError) -> retry.Outcome | None:
            if isinstance(value, httpx.Response) and answer(value):
                return None
            return retry.http_failure(value, fail_fast=not self._answered)

        def told(outcome: retry.Outcome, attempts: int, wait: float) -> None:
            self.progress(
                f"{what}: {request.method} {outcome.describe()} "
                f"from {self.host}; retrying in {wait:.1f}s "
                f"(attempt {attempts + 1})"
            )

        resp, sent = retry.send(
            attempt, failure, self.retry, is_idempotent=is_idempotent, on_retry=told
        )
        if isinstance(resp, httpx.HTTPError):
            raise ClusterError(
                f"cluster {self.host} unreachable{sent.note()}: {resp.__class__.__name__}: {resp}"
            ) from resp
        if resp.status_code >= 400 and not answer(resp):
            raise self._error(resp, what, sent.note(", ", ""))
        return resp

    @staticmethod
    def _error(resp: httpx.Response, what: str, note: str = "") -> ApiError:
        try:
            body = resp.json()
        except ValueError:
            body = {"message": resp.text[:300]}
        message = body.get("message", resp.reason_phrase)
        reason = body.get("reason") or resp.reason_phrase
        if resp.status_code == 403:
            # The server's message names the user, verb, resource and namespace.
            return ApiError(f"{what}: forbidden: {message}", resp.status_code, body)
        return ApiError(
            f"{what}: {reason} ({resp.status_code}{note}): {message}", resp.status_code, body
        )

    # --- discovery ------------------------------------------------------------------------------

    def resources(self, api_version: str) -> list[ResourceInfo]:
        with self._lock:
            if api_version in self._discovery:
                return self._discovery[api_version]
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            listing = self.request(ApiRequest("GET", path, what=f"API {api_version}"))
        except ApiError as exc:
            if exc.status == 404:
                raise ClusterError(
                    f"the cluster does not serve API {api_version} (is its CRD installed?)"
                ) from exc
            raise
        infos = [
            ResourceInfo(
                api_version=api_version,
                kind=r["kind"],
                plural=r["name"],
                namespaced=r["namespaced"],
            )
            for r in listing.get("resources", [])
            if "/" not in r["name"]
        ]
        with self._lock:
            self._discovery[api_version] = infos
        return infos

    def info(self, api_version: str, kind: str) -> ResourceInfo:
        for r in self.resources(api_version):
            if r.kind == kind:
                return r
        raise ClusterError(f"the cluster has no kind {kind} in API {api_version}")

    def info_for(self, obj: dict) -> ResourceInfo:
        if not obj.get("apiVersion") or not obj.get("kind"):
            raise ClusterError(f"{subject(obj)}: apiVersion and kind are required")
        return self.info(obj["apiVersion"], obj["kind"])

    # --- objects ----------------------------------------------------------------------------------

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict | None:
        info = self.info(api_version, kind)
        try:
            return self.request(
                ApiRequest(
                    "GET",
                    info.path(namespace, name),
                    what=f"{kind}/{namespace + '/' if namespace else ''}{name}",
                )
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict]:
        info = self.info(api_version, kind)
        params = {"labelSelector": selector} if selector else None
        out = self.request(
            ApiRequest(
                "GET",
                info.path(namespace),
                params=params,
                what=f"list {kind} in {namespace or 'cluster'}",
            )
        )
        items = out.get("items", [])
        for item in items:  # list items come without apiVersion and kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def apply(
        self, obj: dict, *, dry_run: bool = False, force: bool = False, manager: str = FIELD_MANAGER
    ) -> dict:
        """Server-side apply of `obj` (create or update), as `manager`."""
        info = self.info_for(obj)
        meta = obj["metadata"]
        params = {"fieldManager": manager, "fieldValidation": "Strict"}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        return self.request(
            ApiRequest(
                "PATCH",
                info.path(meta.get("namespace"), meta["name"]),
                params=params,
                body=obj,
                content_type=retry.APPLY_PATCH,
                what=subject(obj),
            )
        )

    def json_patch(self, obj: dict, ops: Sequence[dict]) -> dict:
        """A JSON patch (RFC 6902) of `obj` as it is stored, e.g. to rewrite its managedFields."""
        meta = obj["metadata"]
        path = self.info_for(obj).path(meta.get("namespace"), meta["name"])
        return self.request(
            ApiRequest(
                "PATCH",
                path,
                body=ops,
                content_type="application/json-patch+json",
                what=subject(obj),
            )
        )

    def create(self, obj: dict, *, retry_lost: bool = False) -> dict:
        """POST `obj`. `retry_lost`: send it again when the answer was lost, for a caller that
        takes a 409 AlreadyExists as possibly its own first attempt (and checks)."""
        info = self.info_for(obj)
        return self.request(
            ApiRequest(
                "POST",
                info.path(obj["metadata"].get("namespace")),
                body=obj,
                what=subject(obj),
                idempotent=retry_lost or None,
            )
        )

    def replace(self, obj: dict) -> dict:
        info = self.info_for(obj)
        meta = obj["metadata"]
        return self.request(
            ApiRequest(
                "PUT", info.path(meta.get("namespace"), meta["name"]), body=obj, what=subject(obj)
            )
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        info = self.info(api_version, kind)
        try:
            self.request(
                ApiRequest(
                    "DELETE",
                    info.path(namespace, name),
                    body={"propagationPolicy": propagation},
                    what=f"{kind}/{namespace + '/' if namespace else ''}{name}",
                )
            )
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def watch(
        self, api_version: str, kind: str, namespace: str | None, query: WatchQuery = WatchQuery()
    ) -> Iterator[tuple[str, dict]]:
        """(event type, object) from a watch, until `query.timeout` seconds pass. Opening the watch
        is retried like any GET; a connection lost mid-stream ends it with a ClusterError."""
        info = self.info(api_version, kind)
        params: dict[str, Any] = {
            "watch": "true",
            "timeoutSeconds": max(1, int(query.timeout)),
            "allowWatchBookmarks": "false",
        }
        if query.field_selector:
            params["fieldSelector"] = query.field_selector
        if query.selector:
            params["labelSelector"] = query.selector
        if query.resource_version:
            params["resourceVersion"] = query.resource_version
        request = self._http.build_request(
            "GET",
            info.path(namespace),
            params=params,
            timeout=httpx.Timeout(query.timeout + 10),
            extensions=self._extensions,
        )
        resp = self._send(
            request, f"watch {kind} in {namespace or 'cluster'}", is_idempotent=True, stream=True
        )
        try:
            for line in resp.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                obj = event.get("object", {})
                obj.setdefault("apiVersion", api_version)
                obj.setdefault("kind", kind)
                yield event.get("type", ""), obj
        except httpx.HTTPError as exc:
            raise ClusterError(f"cluster {self.host} unreachable during watch: {exc}") from exc
        finally:
            resp.close()

    def proxy_get(
        self,
        namespace: str,
        service: str,
        port: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """GET PATH of a Service through the API server's service proxy: (status, body) as the
        Service answered. Needs `get` on `services/proxy`. When the API server answers for the
        Service (a kind: Status), it is a ProxyError whose `reason` says why: the Service or its
        port not found, ship forbidden, no ready endpoint, the pod unreachable. An unreachable
        API server is retried like any GET, then a ClusterError."""
        url = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"
        request = self._http.build_request(
            "GET", url, params=params, timeout=timeout, extensions=self._extensions
        )
        what = f"Service/{namespace}/{service}:{port}"
        try:
            resp = self._send(
                request,
                what,
                is_idempotent=True,
                answer=lambda r: (
                    r.status_code < 400 or (r.status_code != 429 and not _is_status(r))
                ),
            )
        except ApiError as exc:
            raise ProxyError(str(exc), exc.status, exc.body) from exc
        return resp.status_code, resp.content

    def ping(self) -> None:
        self.request(ApiRequest("GET", "/version", what="cluster version"))
