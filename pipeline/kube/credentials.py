"""Reaching a cluster as kubeconfig says: host, TLS, credentials that stay fresh, SNI, proxy.

The files are read as kubectl reads them: --kubeconfig, else every file KUBECONFIG lists
(missing ones skipped), else ~/.kube/config; several files merge with the first definition of
a cluster, context or user winning, and the first current-context set. A file that is not
YAML, not a mapping, or lacks the context asked for is a one-line ConfigError naming it. A
context with a token, a token file, client certificates or an exec plugin is read natively
(kubeconfig.py: no kubernetes import at start-up); one with a legacy auth-provider goes through
the kubernetes package, and what it only logs (a plugin that fails) becomes a ConfigError too,
not a stray log line and a bare 401. This module turns that Configuration into what ship's httpx
client needs, and never sends a request.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from pipeline.errors import ConfigError
from pipeline.kube.kubeconfig import native

SECTIONS = ("clusters", "contexts", "users")


def kubeconfig_paths(kubeconfig: str | None, environ: dict[str, str] | None = None) -> list[str]:
    """The files kubectl would read: --kubeconfig, else KUBECONFIG's list, else ~/.kube/config."""
    env = os.environ if environ is None else environ
    given = kubeconfig or env.get("KUBECONFIG") or "~/.kube/config"
    return [os.path.expanduser(p) for p in given.split(os.pathsep) if p]


def parse_kubeconfig(path: str, text: str) -> dict | None:
    """One kubeconfig file, checked enough that the kubernetes package never meets a shape it
    would trip on with a traceback; None for an empty file."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"kubeconfig {path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(
            f"kubeconfig {path}: not a kubeconfig: a YAML "
            "mapping with clusters, contexts and users "
            f"was expected, not a {type(data).__name__}"
        )
    for section in SECTIONS:
        items = data.get(section) or []
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) for i in items
        ):
            raise ConfigError(
                f"kubeconfig {path}: {section} must be a list of entries, each with a name"
            )
    return data


def read_kubeconfigs(paths: list[str]) -> list[tuple[str, dict]]:
    """Each file of the list that exists, parsed (kubectl skips the missing ones)."""
    out = []
    for path in paths:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"kubeconfig {path}: cannot be read: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        data = parse_kubeconfig(path, text)
        if data is not None:
            out.append((path, data))
    if not out:
        raise ConfigError(
            f"kubeconfig {os.pathsep.join(paths)}: file not found (set KUBECONFIG or --kubeconfig)"
        )
    return out


def choose_context(files: list[tuple[str, dict]], context: str | None) -> str:
    """The context to use: the one asked for, else the first current-context set (kubectl's
    rule)."""
    where = os.pathsep.join(p for p, _ in files)
    chosen = context or next(
        (d["current-context"] for _, d in files if d.get("current-context")), None
    )
    if not chosen:
        raise ConfigError(f"kubeconfig {where}: no current context; name one with --context")
    known = list(dict.fromkeys(c["name"] for _, d in files for c in d.get("contexts") or []))
    if chosen not in known:
        raise ConfigError(
            f"kubeconfig {where}: context {chosen!r} cannot be used: no such context "
            f"(it has: {', '.join(known) or 'none'})"
        )
    return chosen


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _logged_errors() -> Iterator[list[str]]:
    """What the kubernetes package logs as an error (an exec plugin's failure), collected
    instead of printed."""
    handler, root = _Collect(), logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)


def load_kubeconfig(kubeconfig: str | None, context: str | None) -> Any:
    """The kubernetes package's Configuration for a kubeconfig context: host, TLS, credentials
    (exec plugins and OIDC run here), tls-server-name and proxy-url."""
    files = read_kubeconfigs(kubeconfig_paths(kubeconfig))
    chosen = choose_context(files, context)
    own = native(files, chosen)
    if own is not None:
        # an exec plugin runs now: one that fails is said when connecting, not as a 401
        own.bearer()
        return own
    return _load_with_kubernetes(files, chosen)


def _load_with_kubernetes(files: list[tuple[str, dict]], chosen: str) -> Any:
    """The kubernetes package's Configuration, for what kubeconfig.py does not read
    (auth-provider)."""
    from kubernetes import client as kclient
    from kubernetes.config import kube_config

    where = os.pathsep.join(p for p, _ in files)
    conf = kclient.Configuration()
    try:
        with _logged_errors() as errors:
            merger = kube_config.KubeConfigMerger(where)
            merger.config.value["current-context"] = chosen
            kube_config.KubeConfigLoader(
                config_dict=merger.config,
                active_context=chosen,
                config_base_path=None,
                config_persister=merger.save_changes,
            ).load_and_set(conf)
    except (
        kube_config.ConfigException,
        OSError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        raise ConfigError(f"kubeconfig {where}: context {chosen!r} cannot be used: {exc}") from exc
    if errors:
        raise ConfigError(
            f"kubeconfig {where}: context {chosen!r}: credentials failed: {errors[-1]}"
        )
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
        if hasattr(self.conf, "bearer"):  # read natively (kubeconfig.py), which refreshes it itself
            key = self.conf.bearer()
        else:
            with self._lock:  # the hook may run a plugin; one at a time
                key = self.conf.get_api_key_with_prefix(
                    "BearerToken"
                ) or self.conf.get_api_key_with_prefix("authorization")
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
    """TLS settings from kubeconfig: the cluster's CA and, when given, a client certificate
    (PEM text is loaded through a private temporary file, removed at once: ssl reads only files)."""
    if not conf.host.startswith("https"):
        return False
    ca_data = getattr(conf, "ca_data", None)
    ctx = (
        ssl.create_default_context(cafile=conf.ssl_ca_cert, cadata=ca_data)
        if conf.verify_ssl
        else ssl._create_unverified_context()
    )
    cert_data, key_data = getattr(conf, "cert_data", None), getattr(conf, "key_data", None)
    if cert_data:
        with tempfile.TemporaryDirectory(prefix="ship-tls-") as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            for path, text in ((cert, cert_data), (key, key_data or "")):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                    f.write(text)
            ctx.load_cert_chain(cert, key if key_data else None)
    elif conf.cert_file:
        ctx.load_cert_chain(conf.cert_file, conf.key_file)
    return ctx
