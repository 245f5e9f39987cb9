"""Access for a deployer: the Namespace an environment lives in, and a kubeconfig minted for the
deployer's ServiceAccount from a TokenRequest, for the pipeline's KUBECONFIG secret.

The kubeconfig holds the cluster's address and CA (as the admin's kubeconfig has them) and a
bound token of the ServiceAccount that `ship rbac ENV` creates: it can do what the Role allows in
ENV's namespace and nothing else. Kubernetes caps a token's lifetime at the API server's
--service-account-max-token-expiration; the token dies with the ServiceAccount. Pure but for
`mint`, which sends one request; never writes a file, never grants anything.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from pipeline import names
from pipeline.errors import ApiError, ClusterError, ConfigError
from pipeline.kube.api import ApiRequest, ClusterApi


def namespace_object(namespace: str, pod_security: str = "restricted") -> dict:
    """The Namespace `ship rbac ENV` creates before the deployer's objects in it, with the Pod
    Security labels of ENV's level (the deployer may not change a Namespace; sync would write
    them)."""
    labels = {names.PART_OF: names.MANAGER, **names.pod_security_labels(pod_security)}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels},
    }


@dataclass(frozen=True)
class Server:
    """An API server as a kubeconfig names it."""

    url: str  # https://HOST:PORT
    ca_data: bytes | None = None  # the CA that signed its certificate (PEM); None: the system's
    tls_server_name: str | None = None  # the name its certificate carries, when not the URL's host


def kubeconfig(name: str, server: Server, namespace: str, user: str, token: str) -> dict:
    """A kubeconfig with one cluster, user and context (`name`), in `namespace`."""
    cluster: dict[str, Any] = {"server": server.url}
    if server.ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(server.ca_data).decode()
    if server.tls_server_name:
        cluster["tls-server-name"] = server.tls_server_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": user, "namespace": namespace}}
        ],
    }


def mint(
    cluster: ClusterApi, namespace: str, service_account: str, seconds: int
) -> tuple[str, int]:
    """A bound token of `service_account` in `namespace` (TokenRequest), and the lifetime
    granted."""
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }
    try:
        answer = cluster.request(
            ApiRequest(
                "POST",
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
                what=f"ServiceAccount/{namespace}/{service_account}",
                body=body,
            )
        )
    except ApiError as exc:
        if exc.status == 404:
            raise ConfigError(
                f"ServiceAccount/{namespace}/{service_account}: not found; create it first with "
                f"`ship rbac ENV --service-account {service_account} | kubectl apply -f -`"
            ) from exc
        raise
    token = answer.get("status", {}).get("token")
    if not token:
        raise ClusterError(
            f"ServiceAccount/{namespace}/{service_account}: the TokenRequest answer holds no token"
        )
    return token, int(answer.get("spec", {}).get("expirationSeconds") or seconds)
