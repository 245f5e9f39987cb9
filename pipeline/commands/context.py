"""Builds the real Context: the only place ship connects to a cluster, registry or engine."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline import config
from pipeline.clock import Clock
from pipeline.config import Environment
from pipeline.context import Context
from pipeline.errors import ClusterError, ConfigError
from pipeline.gitops import layout
from pipeline.gitops.git import GitRepo
from pipeline.gitops.workspace import Workspace
from pipeline.image.credentials import Credentials
from pipeline.image.registry import Registry, access_for
from pipeline.image.signing import Cosign
from pipeline.kube.client import Cluster
from pipeline.kube.lock import LockOptions
from pipeline.progress import Progress, quiet


def connect(
    env: Environment,
    progress: Progress = quiet,
    kubeconfig: str | None = None,
    kube_context: str | None = None,
) -> Cluster:
    """A client for ENV's kube context (ship.yaml's, else --context, else SHIP_KUBE_CONTEXT, else
    kubeconfig's current one), checked with one request so an unreachable cluster, like a context
    kubeconfig lacks, fails here in one line naming the environment. `kubeconfig`: --kubeconfig
    (else KUBECONFIG). Requests it retries are told on `progress`."""
    context = env.context or kube_context or os.environ.get("SHIP_KUBE_CONTEXT") or None
    # a context missing from kubeconfig, or one it cannot use, fails here too, naming the
    # environment
    try:
        cluster = Cluster(kubeconfig, context=context, progress=progress)
    except ConfigError as exc:
        raise ConfigError(f"{env.name}: {exc}") from exc
    try:
        cluster.ping()
    except ClusterError as exc:
        cluster.close()
        raise ClusterError(f"{env.name}: {exc}") from exc
    return cluster


def docker_engine():
    from pipeline.image.engine import docker_client

    return docker_client()


def open_context(
    progress: Progress = quiet,
    root: Path | None = None,
    *,
    kubeconfig: str | None = None,
    kube_context: str | None = None,
    lock_wait: float | None = None,
) -> Context:
    """ship.yaml from the repository around `root` (default: the working directory), the working
    clone as git has it, and lazy connections to everything else (`kubeconfig`, `kube_context`:
    the global --kubeconfig and --context). `lock_wait`: seconds to wait for an environment's
    lock."""
    cfg = config.load(root)
    clock = Clock()
    workspace = Workspace(cfg.root, GitRepo(cfg.root), clock)
    # what a killed run left half-written is put back before anything reads it
    workspace.recover(progress)
    # Overlays in the one-app layout move to one folder per app, in one local commit (the next
    # publish pushes it): every command reads the new layout only.
    if (
        moved := layout.migrate(workspace, list(cfg.environments.values()), push=False)
    ) is not None:
        progress(f"commit {moved.short} {moved.subject}")
    # one lookup per host, for every part that needs it
    credentials = Credentials(cfg.registry_host)

    def open_registry(host: str) -> Registry:
        return Registry(
            host,
            progress=progress,
            lookup=lambda: credentials.lookup(host),
            access=access_for(cfg, host),
        )

    return Context(
        config=cfg,
        workspace=workspace,
        connect=lambda env: connect(env, progress, kubeconfig, kube_context),
        open_registry=open_registry,
        open_signer=lambda: Cosign(
            credentials=credentials, access=lambda host: access_for(cfg, host)
        ),
        open_engine=docker_engine,
        clock=clock,
        progress=progress,
        credentials=credentials,
        lock=LockOptions() if lock_wait is None else LockOptions(wait=lock_wait),
    )
