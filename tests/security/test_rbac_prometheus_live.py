"""The deployer reads the Prometheus its canary analysis names, in another namespace, through the API
server's service proxy, with the kubeconfig `ship kubeconfig` mints from what `ship rbac` grants;
and it may proxy to no other Service, nor to another port of that one (403).

The lab's Prometheus listens on the host's loopback, which an endpoint may not name, and the API
server proxies only to endpoints that are pods: so a TCP relay listens on the address of a lab node
that is this host's own, a host-network pod on that node carries the address, and Services
`prometheus` and `other` in a namespace of the test's own have that pod at the relay's port as
their endpoint. The answers are the real Prometheus's, through the real API server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import yaml

from pipeline.errors import ProxyError
from pipeline.kube.client import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]


def kubectl(*args: str, kubeconfig: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": kubeconfig})


def relay(listen_host: str, target: tuple[str, int]) -> int:
    """A TCP relay from (listen_host, a free port) to `target`, in daemon threads; its port."""
    server = socket.create_server((listen_host, 0))

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def serve() -> None:
        while True:
            client, _ = server.accept()
            upstream = socket.create_connection(target)
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def host_node(kubeconfig: str) -> tuple[str, str]:
    """(name, InternalIP) of a node whose address is one of this host's (a KWOK node of the lab is)."""
    nodes = json.loads(kubectl("get", "nodes", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
    for node in nodes:
        ip = next((a["address"] for a in node["status"].get("addresses", []) if a["type"] == "InternalIP"), None)
        try:
            socket.create_server((ip, 0)).close()
        except (OSError, TypeError):
            continue
        return node["metadata"]["name"], ip
    pytest.fail("no node of the lab has an address of this host", pytrace=False)


def objects_at(namespace: str, node: str, ip: str, port: int) -> str:
    """A host-network pod on `node` (its IP is the node's, the relay's), and Services `prometheus`
    and `other` whose endpoint is that pod at the relay's port: the API server proxies only to
    endpoints that are pods with that IP."""
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "relay", "namespace": namespace},
                         "spec": {"nodeName": node, "hostNetwork": True,
                                  "containers": [{"name": "relay", "image": "registry.k8s.io/pause:3.10"}]}}]
    for name in ("prometheus", "other"):
        docs += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                  "spec": {"ports": [{"name": "web", "port": 9090, "targetPort": port}]}},
                 {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": namespace},
                  "subsets": [{"addresses": [{"ip": ip, "targetRef": {"kind": "Pod", "name": "relay", "namespace": namespace}}],
                               "ports": [{"name": "web", "port": port}]}]}]
    return yaml.safe_dump_all(docs)


def test_the_deployer_queries_prometheus_in_its_namespace_and_proxies_nothing_else(env_repo, local_parts, namespace,
                                                                                   tmp_path):
    work, bare, namespaces = env_repo
    admin = local_parts["KUBECONFIG"]
    prometheus = httpx.URL(local_parts.get("SHIP_PROMETHEUS_URL") or pytest.skip("no lab Prometheus (SHIP_REAL_NODE=0)"))
    node, ip = host_node(admin)
    port = relay(ip, (prometheus.host, prometheus.port or 80))
    applied = kubectl("apply", "-f", "-", kubeconfig=admin, stdin=objects_at(namespace, node, ip, port))
    assert applied.returncode == 0, applied.stderr
    waited = kubectl("wait", "-n", namespace, "pod/relay", "--for=jsonpath={.status.podIP}=" + ip, "--timeout=120s",
                     kubeconfig=admin)
    assert waited.returncode == 0, waited.stderr
    # dev's canary analysis queries that Prometheus by its cluster Service URL
    cfg = yaml.safe_load((work / "ship.yaml").read_text())
    cfg["environments"]["dev"]["canary"] = {"prometheus": [{"url": f"http://prometheus.{namespace}.svc:9090",
                                                            "query": "up", "min": 0}]}
    (work / "ship.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "KUBECONFIG": admin}
    rbac_yaml = subprocess.run([sys.executable, "-m", "pipeline", "rbac", "dev"], cwd=work, env=env, capture_output=True,
                               text=True, check=True).stdout
    elsewhere = [o for o in yaml.safe_load_all(rbac_yaml) if o["metadata"].get("namespace") == namespace]
    assert [o["kind"] for o in elsewhere] == ["Role", "RoleBinding"]
    assert elsewhere[0]["rules"] == [
        {"apiGroups": [""], "resources": ["services"], "resourceNames": ["prometheus"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services/proxy"], "resourceNames": ["prometheus", "prometheus:9090"],
         "verbs": ["get"]}]
    applied = kubectl("apply", "-f", "-", kubeconfig=admin, stdin=rbac_yaml)
    assert applied.returncode == 0, applied.stderr
    minted = tmp_path / "deployer.kubeconfig"
    minted.write_text(subprocess.run([sys.executable, "-m", "pipeline", "kubeconfig", "dev", "--duration", "1h"], cwd=work,
                                     env=env, capture_output=True, text=True, check=True).stdout)
    query = f"/api/v1/namespaces/{namespace}/services/prometheus:9090/proxy/api/v1/query?query=up"
    deadline = time.monotonic() + 60
    while (proc := kubectl("get", "--raw", query, kubeconfig=str(minted))).returncode != 0:  # the authorizer's cache
        assert time.monotonic() < deadline, proc.stderr
        time.sleep(1)
    assert json.loads(proc.stdout)["status"] == "success"
    assert kubectl("get", "service", "prometheus", "-n", namespace, kubeconfig=str(minted)).returncode == 0
    for denied in (f"/api/v1/namespaces/{namespace}/services/other:9090/proxy/api/v1/query?query=up",
                   f"/api/v1/namespaces/{namespace}/services/prometheus:web/proxy/api/v1/query?query=up",
                   f"/api/v1/namespaces/{namespace}/services/http:prometheus:9090/proxy/api/v1/query?query=up",
                   f"/api/v1/namespaces/{namespace}/services", f"/api/v1/namespaces/{namespace}/services/other",
                   f"/api/v1/namespaces/{namespace}/endpoints/prometheus"):
        proc = kubectl("get", "--raw", denied, kubeconfig=str(minted))
        assert proc.returncode != 0 and "(Forbidden)" in proc.stderr, (denied, proc.stderr)
    # ...and ship's client, as the canary analysis uses it: the Service exists, the query answers
    cluster = Cluster(str(minted))
    assert cluster.get("v1", "Service", "prometheus", namespace) is not None
    status, body = cluster.proxy_get(namespace, "prometheus", "9090", "/api/v1/query", params={"query": "up"})
    assert status == 200 and json.loads(body)["status"] == "success"
    with pytest.raises(ProxyError) as refused:  # the API server answers for the Service it will not proxy
        cluster.proxy_get(namespace, "other", "9090", "/api/v1/query", params={"query": "up"})
    assert refused.value.status == 403 and refused.value.unanswered == "forbidden"
