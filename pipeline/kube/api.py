"""ClusterApi: what ship's flows may ask of a cluster, as a typing.Protocol; ResourceInfo, and the
ApiRequest and WatchQuery its raw request and watch take.

kube/client.Cluster (the REST client) and tests/fakes.FakeCluster (the unit tier's in-memory
API server) both satisfy it, and `make lint` type-checks both against it, so the fake cannot
drift from the client unnoticed. Flows take a ClusterApi; only the commands layer builds a
Cluster. Declares; never connects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

from pipeline import names


@dataclass(frozen=True, kw_only=True)
class ResourceInfo:
    api_version: str  # "apps/v1" or "v1"
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = (
            f"/apis/{self.api_version}" if "/" in self.api_version else f"/api/{self.api_version}"
        )
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{prefix}{ns}/{self.plural}" + (f"/{name}" if name else "")


@dataclass(frozen=True)
class ApiRequest:
    """One raw API request: `ApiRequest("GET", "/version", what="cluster version")`."""

    method: str
    path: str  # from the server's root: /api/v1/..., /apis/GROUP/VERSION/...
    _: KW_ONLY
    what: str  # the object it is about, as the error line names it: Deployment/dev/web
    params: dict | None = None  # the query string
    body: Any = None  # sent as it is when bytes or str, else as JSON
    content_type: str = "application/json"  # the body's
    timeout: float | None = None  # seconds; None: the client's own
    # None: as the method and content type say; True lets a create be retried
    idempotent: bool | None = None


@dataclass(frozen=True)
class WatchQuery:
    """Which changes a watch streams, and for how long; every field has a default."""

    selector: str | None = None  # a label selector
    field_selector: str | None = None  # e.g. metadata.name=web
    # the changes after this version (a list's); None: each object as ADDED first
    resource_version: str | None = None
    timeout: float = 60.0  # seconds until the server ends the watch


class ClusterApi(Protocol):
    """One cluster: discovery, objects, watches, the service proxy. Every call counts in
    `requests`."""

    host: str  # the API server's URL, for messages
    requests: int  # requests sent so far (retries included), so a benchmark can count them

    def fork(self) -> ClusterApi:
        """A second client to the same cluster, with connections of its own (for watches)."""
        ...

    def close(self) -> None: ...

    def ping(self) -> None:
        """Ask the API server its version: raises a ClusterError when it is not there."""
        ...

    def request(self, req: ApiRequest) -> dict:
        """One raw request; its `what` names the object in the error line."""
        ...

    def info(self, api_version: str, kind: str) -> ResourceInfo: ...

    def info_for(self, obj: dict) -> ResourceInfo: ...

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict | None:
        """The object, or None when it does not exist."""
        ...

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict]: ...

    def apply(
        self, obj: dict, *, dry_run: bool = False, force: bool = False, manager: str = names.MANAGER
    ) -> dict:
        """Server-side apply (create or update) as `manager`."""
        ...

    def json_patch(self, obj: dict, ops: Sequence[dict]) -> dict: ...

    def create(self, obj: dict, *, retry_lost: bool = False) -> dict: ...

    def replace(self, obj: dict) -> dict: ...

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        """True when it was deleted, False when it did not exist."""
        ...

    def watch(
        self, api_version: str, kind: str, namespace: str | None, query: WatchQuery = WatchQuery()
    ) -> Iterator[tuple[str, dict]]: ...

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
        """(status, body) as the Service answered; a ProxyError when the API server answered for
        it."""
        ...
