"""Where traffic goes right now: the router's weights as the API server holds them.

For the gateway router, the HTTPRoute's backendRefs; for nginx, the canary Ingress's weight;
for the replicas router, each Deployment's share of the pods. Read-only.
"""

from __future__ import annotations

from pipeline import names
from pipeline.config import CanaryPolicy, Environment
from pipeline.gitops import routing
from pipeline.kube.api import ClusterApi


def live_weights(cluster: ClusterApi, env: Environment) -> dict[str, int]:
    """Traffic weights by backend as the API server holds them; for router replicas, pod shares."""
    policy = env.canary or CanaryPolicy()
    selector = names.env_selector(env.name)
    if policy.router == "gateway":
        return routing.live_weights(
            cluster.list(
                "gateway.networking.k8s.io/v1", "HTTPRoute", env.namespace, selector=selector
            )
        )
    if policy.router == "nginx":
        return routing.live_weights(
            cluster.list("networking.k8s.io/v1", "Ingress", env.namespace, selector=selector)
        )
    return replica_weights(cluster.list("apps/v1", "Deployment", env.namespace, selector=selector))


def replica_weights(deployments: list[dict]) -> dict[str, int]:
    """Each Deployment's share of the pods, in percent: the `replicas` router's weights."""
    pods = {d["metadata"]["name"]: int(d["spec"].get("replicas", 1)) for d in deployments}
    total = sum(pods.values()) or 1
    return {name: round(100 * n / total) for name, n in pods.items()}


def weights_text(weights: dict[str, int]) -> str:
    return ", ".join(f"{name} {w}%" for name, w in sorted(weights.items())) or "no routes"
