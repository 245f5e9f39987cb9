"""The physical limit beside ship's sync: bare parallel server-side apply.

The same rendered objects PATCH'd with `application/apply-patch+yaml` by a minimal loop: httpx,
N workers, no dry-run, no discovery (a fixed table of the bench's kinds), no prune, no gate. What
this takes on a machine is what any apply tool needs there at least; ship's full sync is
reported as a ratio to it (target ≤ 2× at 1,000 objects). Credentials come from the kubeconfig
as ship reads it.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from pipeline.kube.credentials import KubeAuth, load_kubeconfig, ssl_context

PATHS = {
    ("v1", "ConfigMap"): "/api/v1/namespaces/{ns}/configmaps/{name}",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services/{name}",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    ("v1", "Namespace"): "/api/v1/namespaces/{name}",
}


def bare_apply(objects: list[dict], namespace: str, workers: int = 32) -> float:
    """Seconds to server-side apply `objects` into `namespace` (created first, not timed)."""
    conf = load_kubeconfig(None, None)
    client = httpx.Client(
        base_url=conf.host,
        verify=ssl_context(conf),
        auth=KubeAuth(conf, lambda: conf),
        timeout=60,
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
    )
    params = {"fieldManager": "bench-bare", "force": "true"}

    def apply(obj: dict, ns: str | None = namespace) -> None:
        obj = {**obj, "metadata": {**obj["metadata"], **({"namespace": ns} if ns else {})}}
        path = PATHS[(obj["apiVersion"], obj["kind"])].format(ns=ns, name=obj["metadata"]["name"])
        resp = client.patch(
            path,
            params=params,
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        resp.raise_for_status()

    try:
        apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, None)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(apply, objects))
        return time.perf_counter() - started
    finally:
        client.close()
