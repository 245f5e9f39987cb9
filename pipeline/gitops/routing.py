"""How traffic reaches an environment's stable and canary releases: pure manifests per router.

    gateway   a Gateway API HTTPRoute `<app>` whose backendRefs carry the weights (stable 90,
              canary 10); with no canary, one backendRef at weight 100
    nginx     the stable Ingress `<app>`, plus during a canary a second Ingress `<app>-canary`
              for the same host and path with the nginx canary-weight annotations
    replicas  no router: canary pods sit behind the stable Service; the weight is a share of pods

With a router, stable pods carry `ship.dev/track: stable` and the stable Service selects it, so
the stable Service never sends traffic to canary pods; the canary has its own Service.
"""

from __future__ import annotations

from typing import Any

from pipeline import names
from pipeline.config import CanaryPolicy
from pipeline.refs import pointer

ROUTE_FILE = "route.yaml"
INGRESS_FILE = "ingress.yaml"
CANARY_INGRESS_FILE = "canary-ingress.yaml"
ROUTED = ("gateway", "nginx")  # routers that need stable and canary pods kept apart
NGINX_CANARY = "nginx.ingress.kubernetes.io/canary"
NGINX_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def service_for(
    base_objects: list[dict[str, Any]], workload: dict[str, Any]
) -> tuple[str, int] | None:
    """(name, port) of the base's Service that selects `workload`'s pods, if any."""
    labels = workload.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    for obj in base_objects:
        if obj.get("kind") != "Service":
            continue
        selector = obj.get("spec", {}).get("selector") or {}
        ports = obj.get("spec", {}).get("ports") or []
        if selector and ports and all(labels.get(k) == v for k, v in selector.items()):
            return obj["metadata"]["name"], int(ports[0]["port"])
    return None


def _parent_ref(gateway: str) -> dict[str, Any]:
    namespace, _, name = gateway.rpartition("/")
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def http_route(
    policy: CanaryPolicy, service: str, port: int, canary_weight: int | None
) -> dict[str, Any]:
    """The HTTPRoute: all traffic to stable, or split `100 - w` / `w` while a canary runs."""
    backends = [
        {
            "name": service,
            "port": port,
            "weight": 100 if canary_weight is None else 100 - canary_weight,
        }
    ]
    if canary_weight is not None:
        backends.append({"name": names.canary_name(service), "port": port, "weight": canary_weight})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": service},
        "spec": {
            "parentRefs": [_parent_ref(policy.gateway)],
            "hostnames": [policy.host],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": policy.path}}],
                    "backendRefs": backends,
                }
            ],
        },
    }


def ingress(
    policy: CanaryPolicy, service: str, port: int, canary_weight: int | None = None
) -> dict[str, Any]:
    """The stable Ingress, or (with a weight) the canary Ingress for the same host and path."""
    name = service if canary_weight is None else names.canary_name(service)
    meta: dict[str, Any] = {"name": name}
    if canary_weight is not None:
        meta["annotations"] = {NGINX_CANARY: "true", NGINX_WEIGHT: str(canary_weight)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {
            "ingressClassName": policy.ingress_class,
            "rules": [
                {
                    "host": policy.host,
                    "http": {
                        "paths": [
                            {
                                "path": policy.path,
                                "pathType": "Prefix",
                                "backend": {"service": {"name": name, "port": {"number": port}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def routing_objects(
    policy: CanaryPolicy, service: str, port: int, canary_weight: int | None
) -> dict[str, dict[str, Any] | None]:
    """The overlay's routing files (None: the file is removed) for a canary weight, or None for no
    canary."""
    if policy.router == "gateway":
        return {ROUTE_FILE: http_route(policy, service, port, canary_weight)}
    if policy.router == "nginx":
        canary = (
            ingress(policy, service, port, canary_weight) if canary_weight is not None else None
        )
        return {INGRESS_FILE: ingress(policy, service, port), CANARY_INGRESS_FILE: canary}
    return {}


def track_ops(track: str, *, selector: bool) -> list[dict[str, Any]]:
    """JSON6902 ops labelling a workload's pods with their track (and its selector, for the
    canary)."""
    ops = [
        {
            "op": "add",
            "path": pointer("spec", "template", "metadata", "labels", names.TRACK),
            "value": track,
        }
    ]
    if selector:
        ops.append(
            {
                "op": "add",
                "path": pointer("spec", "selector", "matchLabels", names.TRACK),
                "value": track,
            }
        )
    return ops


def service_track_patch(service: str, track: str) -> dict[str, Any]:
    return {
        "target": {"version": "v1", "kind": "Service", "name": service},
        "patch": [{"op": "add", "path": pointer("spec", "selector", names.TRACK), "value": track}],
    }


def live_weights(route_or_ingresses: list[dict[str, Any]]) -> dict[str, int]:
    """Backend → weight as the API server holds them (for printing and tests)."""
    weights: dict[str, int] = {}
    for obj in route_or_ingresses:
        if obj.get("kind") == "HTTPRoute":
            for rule in obj.get("spec", {}).get("rules") or []:
                for ref in rule.get("backendRefs") or []:
                    weights[ref["name"]] = int(ref.get("weight", 1))
        elif obj.get("kind") == "Ingress":
            notes = obj.get("metadata", {}).get("annotations") or {}
            name = obj["metadata"]["name"]
            weights[name] = (
                int(notes.get(NGINX_WEIGHT, 0)) if notes.get(NGINX_CANARY) == "true" else -1
            )
    # nginx: the stable Ingress takes what the canary does not
    if any(w == -1 for w in weights.values()):
        canary = sum(w for w in weights.values() if w >= 0)
        weights = {n: (100 - canary if w == -1 else w) for n, w in weights.items()}
    return weights
