#!/usr/bin/env python3
"""Prometheus HTTP service discovery for the pods of one node, with kubernetes_sd's labels.

Debian builds Prometheus without Kubernetes discovery ("Kubernetes support has been completely
removed, due to the insane amount of dependencies in their client library", NEWS.Debian,
1.5.0+ds-1), so `kubernetes_sd_configs` is an unknown field there. This serves what upstream's
`kubernetes_sd_configs: [{role: pod}]` would discover, in `http_sd_configs` form: one target per
container port, labelled `__meta_kubernetes_namespace`, `__meta_kubernetes_pod_name`,
`__meta_kubernetes_pod_label_<name>`, … (names sanitized as Prometheus does), so the relabel
rules are the ones a user writes for kubernetes_sd. Every request lists the node's pods afresh
(Prometheus asks at its refresh_interval), so nothing is cached and nothing can go stale.

  pod_sd.py --listen 127.0.0.1:19091 --server https://127.0.0.1:16443 --ca-file ca.crt \
      --token-file token --node real-0

Standard library only: it starts before ship's virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

META = "__meta_kubernetes_"


def sanitize(name: str) -> str:
    """A Kubernetes label or annotation name as a Prometheus label name (strutil.SanitizeLabelName)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_targets(pod: dict) -> list[dict]:
    """The targets kubernetes_sd (role pod) makes of one pod: one per declared container port."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    if not status.get("podIP"):
        return []
    ready = next((c["status"] for c in status.get("conditions") or [] if c["type"] == "Ready"), "unknown")
    common = {
        META + "namespace": meta["namespace"],
        META + "pod_name": meta["name"],
        META + "pod_uid": meta.get("uid", ""),
        META + "pod_ip": status["podIP"],
        META + "pod_node_name": spec.get("nodeName", ""),
        META + "pod_host_ip": status.get("hostIP", ""),
        META + "pod_phase": status.get("phase", ""),
        META + "pod_ready": ready.lower(),
    }
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            common[META + "pod_controller_kind"] = owner["kind"]
            common[META + "pod_controller_name"] = owner["name"]
    for key, value in (meta.get("labels") or {}).items():
        common[META + "pod_label_" + sanitize(key)] = value
        common[META + "pod_labelpresent_" + sanitize(key)] = "true"
    for key, value in (meta.get("annotations") or {}).items():
        common[META + "pod_annotation_" + sanitize(key)] = value
        common[META + "pod_annotationpresent_" + sanitize(key)] = "true"
    targets = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            labels = {**common,
                      META + "pod_container_name": container["name"],
                      META + "pod_container_image": container.get("image", ""),
                      META + "pod_container_init": "false",
                      META + "pod_container_port_name": port.get("name", ""),
                      META + "pod_container_port_number": str(port["containerPort"]),
                      META + "pod_container_port_protocol": port.get("protocol", "TCP")}
            targets.append({"targets": [f"{status['podIP']}:{port['containerPort']}"], "labels": labels})
    return targets


class Discovery:
    def __init__(self, server: str, ca_file: str, token_file: str, node: str):
        self.url = f"{server}/api/v1/pods?" + urllib.parse.urlencode({"fieldSelector": f"spec.nodeName={node}"})
        self.tls = ssl.create_default_context(cafile=ca_file)
        with open(token_file) as f:
            self.token = f.read().strip()

    def targets(self) -> list[dict]:
        req = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, context=self.tls, timeout=5) as resp:
            pods = json.load(resp)["items"]
        return [t for pod in pods for t in pod_targets(pod)]


def serve(listen: str, discovery: Discovery) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/targets":
                self.send_error(404)
                return
            try:
                body = json.dumps(discovery.targets()).encode()
            except Exception as exc:  # Prometheus keeps the last good list on an error answer
                self.send_error(502, f"listing pods failed: {exc}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    host, port = listen.rsplit(":", 1)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="host:port to serve /targets on")
    p.add_argument("--server", required=True, help="the API server's URL")
    p.add_argument("--ca-file", required=True)
    p.add_argument("--token-file", required=True, help="a bearer token allowed to list pods")
    p.add_argument("--node", required=True, help="discover the pods of this node")
    a = p.parse_args()
    try:
        serve(a.listen, Discovery(a.server, a.ca_file, a.token_file, a.node))
    except OSError as exc:
        sys.exit(f"pod_sd: {exc}")


if __name__ == "__main__":
    main()
