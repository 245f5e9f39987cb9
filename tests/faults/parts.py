"""The faults, each made by a real part: toxiproxy between ship and kube-apiserver (latency,
resets, stalls), kube-apiserver's own API Priority and Fairness (429 with Retry-After), an
admission webhook that cannot be reached (the API server answers 500), kube-apiserver killed
and started again with the command line kwokctl gave it, and the registry stopped and started.

Every process here is started by the harness or recorded by kwokctl for the harness's own
cluster, and stopped by its pid; nothing is found by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port

CACHE = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship"))


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=stdin, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def wait_until(what: str, seconds: float, ok) -> float:
    """Poll `ok()` until true; the seconds it took (AssertionError after `seconds`)."""
    start = time.monotonic()
    while True:
        try:
            if ok():
                return time.monotonic() - start
        except Exception:
            pass
        if time.monotonic() - start > seconds:
            raise AssertionError(f"{what} did not happen within {seconds:.0f}s")
        time.sleep(0.2)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Toxiproxy:
    """toxiproxy-server (built from its Go module by hack/build-binaries.sh) on loopback, with one
    proxy in front of kube-apiserver. TLS passes through it: it is a TCP proxy."""

    def __init__(self, upstream_port: int, version: str):
        self.binary = CACHE / "bin" / f"toxiproxy-server-{version}"
        self.api_port, self.listen_port, self.upstream_port = free_port(), free_port(), upstream_port
        self.proc: subprocess.Popen | None = None
        self.api = f"http://127.0.0.1:{self.api_port}"

    def start(self) -> Toxiproxy:
        self.proc = subprocess.Popen([str(self.binary), "-host", "127.0.0.1", "-port", str(self.api_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("toxiproxy's API", 20, lambda: httpx.get(f"{self.api}/version").status_code == 200)
        httpx.post(f"{self.api}/proxies", json={"name": "kube-apiserver", "listen": f"127.0.0.1:{self.listen_port}",
                                                 "upstream": f"127.0.0.1:{self.upstream_port}", "enabled": True}
                   ).raise_for_status()
        return self

    def toxic(self, name: str, kind: str, attributes: dict, stream: str = "downstream", toxicity: float = 1.0) -> None:
        httpx.post(f"{self.api}/proxies/kube-apiserver/toxics",
                   json={"name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes}
                   ).raise_for_status()

    def enable(self, on: bool = True) -> None:
        """Disabled, the proxy refuses connections (and drops the open ones)."""
        httpx.post(f"{self.api}/proxies/kube-apiserver", json={"enabled": on}).raise_for_status()

    def clear(self) -> None:
        for toxic in httpx.get(f"{self.api}/proxies/kube-apiserver/toxics").json():
            httpx.delete(f"{self.api}/proxies/kube-apiserver/toxics/{toxic['name']}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def kubeconfig_copy(source: str, server: str, token: str | None = None) -> str:
    """A copy of `source` pointing at `server`; with `token`, as that bearer token instead of the client cert."""
    conf = yaml.safe_load(Path(source).read_text())
    for cluster in conf["clusters"]:
        cluster["cluster"]["server"] = server
    if token:
        for user in conf["users"]:
            user["user"] = {"token": token}
    fd, path = tempfile.mkstemp(prefix="faults-kubeconfig-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(conf, f)
    return path


class ApiServer:
    """kube-apiserver of a kwokctl cluster (binary runtime): killed with SIGKILL and started again
    with the command line and working folder kwokctl gave it, its pid written back where kwokctl
    (and hack/cluster-down.sh) look for it."""

    def __init__(self, cluster: str, kubeconfig: str):
        self.home = Path.home() / ".kwok/clusters" / cluster
        self.pidfile = self.home / "pids/kube-apiserver.pid"
        self.kubeconfig = kubeconfig

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def kill(self) -> list[str]:
        pid = self.pid()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        os.kill(pid, signal.SIGKILL)
        wait_until("kube-apiserver to exit", 20, lambda: not Path(f"/proc/{pid}").exists()
                   or Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"))
        return [a.decode() for a in argv]

    def start(self, argv: list[str]) -> float:
        start = time.monotonic()
        port = next(int(a.split("=", 1)[1]) for a in argv if a.startswith("--secure-port="))
        wait_until("kube-apiserver's port to be free", 30, lambda: port_free(port))
        with open(self.home / "logs/kube-apiserver.log", "ab") as log:
            proc = subprocess.Popen(argv, cwd=self.home, stdout=log, stderr=log, start_new_session=True)
        self.pidfile.write_text(str(proc.pid))
        wait_until("kube-apiserver ready", 90, lambda: kubectl(self.kubeconfig, "get", "--raw", "/readyz") == "ok")
        return time.monotonic() - start

    def restart(self, down: float = 0.0) -> float:
        """Kill it, stay down `down` seconds, start it; seconds until ready again."""
        argv = self.kill()
        time.sleep(down)
        return self.start(argv)


class Throttle:
    """API Priority and Fairness squeezing one ServiceAccount: a priority level with one seat
    that rejects (429, Retry-After: 1) whatever does not fit, and a neighbour of the same
    identity listing 1,500 ConfigMaps in a loop so that the seat is mostly taken."""

    LEVEL = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
             "metadata": {"name": "ship-faults-throttle"},
             "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 0, "lendablePercent": 0,
                                                     "borrowingLimitPercent": 0, "limitResponse": {"type": "Reject"}}}}

    def __init__(self, admin: str, account: str = "ship-faults", namespace: str = "default"):
        self.admin, self.account, self.namespace = admin, account, namespace
        self.load_ns = "faults-load"

    def identity(self) -> str:
        """A token for the ServiceAccount (cluster-admin: the limit is APF's, not RBAC's)."""
        kubectl(self.admin, "-n", self.namespace, "create", "serviceaccount", self.account, check=False)
        kubectl(self.admin, "create", "clusterrolebinding", self.account, "--clusterrole", "cluster-admin",
                f"--serviceaccount={self.namespace}:{self.account}", check=False)
        return kubectl(self.admin, "-n", self.namespace, "create", "token", self.account, "--duration", "2h").strip()

    def flow(self) -> dict:
        rules = {"subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": self.account,
                                                                            "namespace": self.namespace}}],
                 "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"],
                                    "clusterScope": True}],
                 "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}
        return {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                "metadata": {"name": "ship-faults-throttle"},
                "spec": {"priorityLevelConfiguration": {"name": "ship-faults-throttle"}, "matchingPrecedence": 100,
                         "distinguisherMethod": {"type": "ByUser"}, "rules": [rules]}}

    def prepare(self) -> None:
        kubectl(self.admin, "create", "namespace", self.load_ns, check=False)
        items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"load-{i}", "namespace": self.load_ns},
                  "data": {"x": "y" * 500}} for i in range(1500)]
        kubectl(self.admin, "apply", "--server-side", "-f", "-",
                stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def on(self) -> None:
        kubectl(self.admin, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                  "items": [self.LEVEL, self.flow()]}))

    def off(self) -> None:
        kubectl(self.admin, "delete", "flowschema,prioritylevelconfiguration", "ship-faults-throttle",
                "--ignore-not-found")


class FailingWebhook:
    """A validating admission webhook on Deployments, ConfigMaps and Services of the namespaces
    ship manages (only the lab's, in the lab's cluster) whose server is gone: with failurePolicy Fail, kube-apiserver answers every such
    create or update (server-side apply and its dry-run included) with 500 InternalError."""

    def __init__(self, admin: str):
        self.admin = admin

    def on(self) -> None:
        hook = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "ship-faults-down"},
                "webhooks": [{"name": "policy.faults.ship.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                              "failurePolicy": "Fail", "timeoutSeconds": 2,
                              "clientConfig": {"url": f"https://127.0.0.1:{free_port()}/validate"},
                              "namespaceSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "ship"}},
                              "rules": [{"apiGroups": ["", "apps"], "apiVersions": ["v1"],
                                         "operations": ["CREATE", "UPDATE"],
                                         "resources": ["deployments", "configmaps", "services"]}]}]}
        kubectl(self.admin, "apply", "-f", "-", stdin=json.dumps(hook))

    def off(self) -> None:
        kubectl(self.admin, "delete", "validatingwebhookconfiguration", "ship-faults-down", "--ignore-not-found")


class RegistryProcess:
    """The registry hack/cluster-up.sh started for this state folder: stopped by its pid, started
    again on the same storage by cluster-up.sh."""

    def __init__(self, state: Path, hack: Path, env: dict[str, str]):
        self.pidfile, self.hack, self.env = state / "registry.pid", hack, env

    def stop(self) -> None:
        pid = int(self.pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        wait_until("the registry to stop", 10, lambda: not Path(f"/proc/{pid}").exists()
                   or Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"))

    def start(self) -> None:
        subprocess.run([str(self.hack / "cluster-up.sh"), "registry"], env={**os.environ, **self.env},
                       capture_output=True, check=True)
