"""A kubeconfig context read natively: server, TLS, a token, a token file or an exec plugin.

Importing the kubernetes package costs a quarter to half a second at every start (it loads its
generated models, urllib3, requests and pydantic), more than a no-op sync's requests; ship
needs only this part of it. Users whose kubeconfig uses a legacy `auth-provider` (OIDC, gcp,
azure) still go through the kubernetes package (credentials.py). Exec plugins are run as
client-go runs them: KUBERNETES_EXEC_INFO set, the plugin's `env` added, a relative command
found beside the kubeconfig that names it, and the token re-fetched 5 minutes before it
expires. Never sends a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError

REFRESH_BEFORE = dt.timedelta(minutes=5)  # as the kubernetes package and client-go do


def _entry(files: list[tuple[str, dict]], section: str, name: str | None) -> tuple[str, dict]:
    """The first file's entry of that name (kubectl's merge rule) and the folder of its file."""
    for path, data in files:
        for item in data.get(section) or []:
            if item.get("name") == name:
                key = section[:-1]  # clusters → cluster
                return os.path.dirname(os.path.abspath(path)), dict(item.get(key) or {})
    raise ConfigError(
        f"kubeconfig {os.pathsep.join(p for p, _ in files)}: no {section[:-1]} {name!r}"
    )


def _pem(entry: dict, key: str, base: str) -> tuple[str | None, str | None]:
    """(a file path, PEM text) for `key` (a path) or `key-data` (base64)."""
    if entry.get(f"{key}-data"):
        try:
            return None, base64.b64decode(entry[f"{key}-data"]).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{key}-data is not base64 PEM: {exc}") from None
    path = entry.get(key)
    return (os.path.join(base, path) if path else None), None


@dataclass
class KubeConfig:
    """One context's connection settings, with the attribute names the kubernetes package's
    Configuration has, so the client takes either."""

    where: str  # the kubeconfig file(s), for errors
    context: str
    host: str
    verify_ssl: bool = True
    ssl_ca_cert: str | None = None  # a CA file
    ca_data: str | None = None  # or its PEM text
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: str | None = None
    key_data: str | None = None
    tls_server_name: str | None = None
    proxy: str | None = None
    token: str | None = None
    token_file: str | None = None
    exec: dict[str, Any] | None = None
    base: str = "."  # the folder of the kubeconfig that defined the user
    _expires: dt.datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bearer(self) -> str | None:
        """The token to send now: an exec plugin's (run again near its expiry), a token file's
        (read each time: it may be rotated), or the static token."""
        with self._lock:
            if self.exec is not None and (self.token is None or self._expiring()):
                self._run_exec()
            if self.token_file:
                try:
                    with open(os.path.join(self.base, self.token_file), encoding="utf-8") as f:
                        return f.read().strip()
                except OSError as exc:
                    raise ConfigError(
                        f"kubeconfig {self.where}: tokenFile {self.token_file}: {exc.strerror}"
                    ) from None
            return self.token

    def _expiring(self) -> bool:
        return (
            self._expires is not None and dt.datetime.now(dt.UTC) >= self._expires - REFRESH_BEFORE
        )

    def _run_exec(self) -> None:
        spec = self.exec or {}
        command = str(spec.get("command") or "")
        if "/" in command and not os.path.isabs(command):
            command = os.path.join(self.base, command)
        env = {
            **os.environ,
            **{e["name"]: str(e["value"]) for e in spec.get("env") or [] if "name" in e},
            "KUBERNETES_EXEC_INFO": json.dumps(
                {
                    "apiVersion": spec.get("apiVersion"),
                    "kind": "ExecCredential",
                    "spec": {"interactive": False},
                }
            ),
        }
        failed = (
            f"kubeconfig {self.where}: context {self.context!r}: "
            f"credentials failed: exec plugin {command}"
        )
        try:
            done = subprocess.run(
                [command, *[str(a) for a in spec.get("args") or []]],
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"{failed}: {getattr(exc, 'strerror', None) or exc}") from None
        if done.returncode != 0:
            raise ConfigError(
                f"{failed}: exit {done.returncode}: "
                f"{(done.stderr.strip().splitlines() or [''])[-1]}"
            )
        try:
            status = json.loads(done.stdout)["status"]
            self.token = status["token"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{failed}: printed no ExecCredential with a status.token") from None
        stamp = status.get("expirationTimestamp")
        self._expires = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def native(files: list[tuple[str, dict]], context: str) -> KubeConfig | None:
    """The context's settings, or None when its user needs the kubernetes package
    (auth-provider)."""
    where = os.pathsep.join(p for p, _ in files)
    _, ctx = _entry(files, "contexts", context)
    cluster_base, cluster = _entry(files, "clusters", ctx.get("cluster"))
    user_base, user = _entry(files, "users", ctx.get("user")) if ctx.get("user") else (".", {})
    if user.get("auth-provider") or user.get("username"):
        return None
    if not cluster.get("server"):
        raise ConfigError(f"kubeconfig {where}: cluster {ctx.get('cluster')!r} has no server")
    try:
        ca_file, ca_data = _pem(cluster, "certificate-authority", cluster_base)
        cert_file, cert_data = _pem(user, "client-certificate", user_base)
        key_file, key_data = _pem(user, "client-key", user_base)
    except ConfigError as exc:
        raise ConfigError(f"kubeconfig {where}: context {context!r}: {exc}") from None
    return KubeConfig(
        where,
        context,
        str(cluster["server"]).rstrip("/"),
        verify_ssl=not cluster.get("insecure-skip-tls-verify", False),
        ssl_ca_cert=ca_file,
        ca_data=ca_data,
        cert_file=cert_file,
        key_file=key_file,
        cert_data=cert_data,
        key_data=key_data,
        tls_server_name=cluster.get("tls-server-name"),
        proxy=cluster.get("proxy-url"),
        token=user.get("token"),
        token_file=user.get("tokenFile"),
        exec=user.get("exec"),
        base=user_base,
    )
