"""Which URLs name a cluster Service (`http://NAME.NAMESPACE.svc[.cluster.local]:PORT/PATH`):
ship fetches those through the API server's service proxy, so the canary analysis works from a CI
runner outside the cluster, and `ship rbac` grants the deployer exactly those Services. Pure:
parses URLs, never connects.
"""

from __future__ import annotations

import re

import httpx

_SERVICE_HOST = re.compile(
    r"^(?P<name>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc(\.cluster\.local)?$"
)


def service_of(url: str) -> tuple[str, str, str, str] | None:
    """(namespace, service, port, path) when the URL names a cluster Service, else None."""
    parsed = httpx.URL(url)
    match = _SERVICE_HOST.match(parsed.host or "")
    if not match:
        return None
    port = str(parsed.port or (443 if parsed.scheme == "https" else 80))
    path = parsed.raw_path.decode() or "/"
    return match["namespace"], match["name"], port, path


def proxied_services(urls: list[str], namespace: str) -> list[tuple[str, str, str]]:
    """(namespace, name, port) of each cluster Service outside `namespace` that these URL templates
    name: what the deployer of `namespace` must reach through the service proxy (Prometheus).
    {namespace} is filled; a URL with other placeholders (per app and track) is left out."""
    found = []
    for url in urls:
        filled = url.replace("{namespace}", namespace)
        target = None if "{" in filled else service_of(filled)
        if target is not None and target[0] != namespace and target[:3] not in found:
            found.append(target[:3])
    return found
