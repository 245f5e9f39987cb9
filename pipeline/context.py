"""The world a flow runs in: configuration, the repository, and the connections it may use.

Flows (release, promote, rollback, abort, sync, status) take a Context and never build a
connection of their own. The commands layer builds the real one (commands/context.py); unit
tests build one with an in-memory cluster and a temporary git workspace. Connections are made
lazily, once each: one cluster client per kube context, however many environments share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline.clock import Clock
from pipeline.config import Environment, ShipConfig
from pipeline.errors import ShipError
from pipeline.gitops.workspace import Workspace
from pipeline.image.credentials import Credentials
from pipeline.image.registry import Registry
from pipeline.image.signing import Cosign
from pipeline.kube.api import ClusterApi
from pipeline.kube.lock import LockOptions
from pipeline.progress import Progress, quiet


@dataclass
class Context:
    config: ShipConfig
    workspace: Workspace
    connect: Callable[[Environment], ClusterApi]  # a new client for ENV's kube context
    open_registry: Callable[[str], Registry] = Registry  # a client for a registry host
    open_engine: Callable[[], Any] | None = None  # a Docker SDK client for builds
    # an HTTP client for the canary analysis
    open_http: Callable[[], httpx.Client] = lambda: httpx.Client(
        timeout=10.0, follow_redirects=False
    )
    open_signer: Callable[[], Cosign] = Cosign  # signs and verifies image digests
    clock: Clock = field(default_factory=Clock)
    # registry logins: push, pull secrets, cosign
    credentials: Credentials = field(default_factory=Credentials)
    progress: Progress = quiet
    # how long a command waits for an environment's lock
    lock: LockOptions = field(default_factory=LockOptions)
    # a --dry-run on a throwaway clone: a sync only dry-runs, nothing is applied or gated
    rehearsal: bool = False
    _clusters: dict[str | None, ClusterApi] = field(default_factory=dict)
    # asked once per command
    _unreachable: dict[str | None, ShipError] = field(default_factory=dict)
    _connecting: dict[str | None, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _registries: dict[str, Registry] = field(default_factory=dict)
    _engine: Any = None
    _http: httpx.Client | None = None
    _signer: Cosign | None = None

    def cluster(self, env: Environment) -> ClusterApi:
        """The client for ENV's cluster, shared with every environment on the same context; safe
        from several threads (status asks every environment at once). A context that could not
        be reached is not asked again in the same command."""
        with self._guard:
            lock = self._connecting.setdefault(env.context, threading.Lock())
        with lock:
            if env.context in self._unreachable:
                raise self._unreachable[env.context]
            if env.context not in self._clusters:
                try:
                    self._clusters[env.context] = self.connect(env)
                except ShipError as exc:
                    self._unreachable[env.context] = exc
                    raise
            return self._clusters[env.context]

    def registry(self, host: str | None = None) -> Registry:
        host = host or self.config.registry_host
        if host not in self._registries:
            self._registries[host] = self.open_registry(host)
        return self._registries[host]

    def engine(self) -> Any:
        if self._engine is None:
            if self.open_engine is None:
                raise RuntimeError("this context has no build engine")
            self._engine = self.open_engine()
        return self._engine

    def http(self) -> httpx.Client:
        """The HTTP client analysis checks use (plain URLs, Prometheus)."""
        if self._http is None:
            self._http = self.open_http()
        return self._http

    def signer(self) -> Cosign:
        """cosign, for signing at build and verifying before a release is written."""
        if self._signer is None:
            self._signer = self.open_signer()
        return self._signer

    def close(self) -> None:
        for cluster in self._clusters.values():
            cluster.close()
        for registry in self._registries.values():
            registry.close()
        if self._engine is not None and hasattr(self._engine, "close"):
            self._engine.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        self._clusters.clear()
        self._registries.clear()
        self._engine = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
