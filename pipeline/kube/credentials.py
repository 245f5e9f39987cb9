"""Reaching a cluster as kubeconfig says: host, TLS, credentials that stay fresh, SNI, proxy.

The kubernetes package reads kubeconfig (contexts, certificates, exec plugins, OIDC); this
module turns its Configuration into what ship's httpx client needs. Never sends a request.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Generator
from typing import Any

import httpx

from pipeline.errors import ConfigError


def load_kubeconfig(kubeconfig: str | None, context: str | None) -> Any:
    """The kubernetes package's Configuration for a kubeconfig context: host, TLS, credentials
    (exec plugins and OIDC run here), tls-server-name and proxy-url."""
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    conf = kclient.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    first = path.split(os.pathsep)[0]
    if not os.path.isfile(first):
        raise ConfigError(f"kubeconfig {path}: file not found (set KUBECONFIG)")
    try:
        kconfig.load_kube_config(config_file=first, context=context, client_configuration=conf)
    except (kconfig.ConfigException, FileNotFoundError) as exc:
        where = f"context {context!r}" if context else "the current context"
        raise ConfigError(f"kubeconfig {path}: {where} cannot be used: {exc}") from exc
    return conf


class KubeAuth(httpx.Auth):
    """Bearer credentials from kubeconfig, kept fresh for long runs (a canary can outlast a
    15-minute EKS token): read through the kubernetes package's refresh hook before every
    request, which re-runs an exec plugin or OIDC refresh once the token expires, and reloaded
    from kubeconfig once when the server answers 401 (a token revoked or expired without notice)."""

    def __init__(self, conf: Any, reload: Callable[[], Any]):
        self.conf, self.reload = conf, reload
        self._lock = threading.Lock()

    def _header(self) -> str | None:
        with self._lock:  # the hook may run a plugin; one at a time
            key = self.conf.get_api_key_with_prefix("BearerToken") or self.conf.get_api_key_with_prefix("authorization")
        if not key:
            return None
        return str(key) if str(key).startswith("Bearer ") else f"Bearer {key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        header = self._header()
        if header:
            request.headers["Authorization"] = header
        response = yield request
        if response.status_code == 401 and header:
            with self._lock:
                self.conf = self.reload()
            fresh = self._header()
            if fresh and fresh != header:
                request.headers["Authorization"] = fresh
                yield request


def ssl_context(conf: Any) -> ssl.SSLContext | bool:
    """TLS settings from kubeconfig: the cluster's CA and, when given, a client certificate."""
    if not conf.host.startswith("https"):
        return False
    ctx = ssl.create_default_context(cafile=conf.ssl_ca_cert) if conf.verify_ssl else ssl._create_unverified_context()
    if conf.cert_file:
        ctx.load_cert_chain(conf.cert_file, conf.key_file)
    return ctx
