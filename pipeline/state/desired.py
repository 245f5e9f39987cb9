"""What git wants an environment to hold: its overlay rendered, plus the Secrets ship builds.

The apps' Secrets come from SHIP_SECRET_* variables (gitops/secrets.py) and the image pull
secret from the run's registry credentials (gitops/pull_secret.py). Shared by a sync (rollout/)
and `ship status` (report/). Reads the cluster only to keep a live Secret's values; never writes.
"""

from __future__ import annotations

from pipeline import names
from pipeline.config import App, Environment, ShipConfig
from pipeline.gitops import pull_secret, secrets
from pipeline.gitops.inputs import refuse_rendered_secrets
from pipeline.gitops.overlay import KUSTOMIZATION
from pipeline.gitops.render import render
from pipeline.image.credentials import Credentials
from pipeline.kube import apply, hooks
from pipeline.kube.api import ClusterApi


def apps_in(cfg: ShipConfig, env: Environment) -> list[App]:
    """The apps of ship.yaml with a folder in ENV's overlay."""
    folder = cfg.root / env.folder
    return [a for a in cfg.apps.values() if (folder / a.name / KUSTOMIZATION).is_file()]


def desired_objects(
    cfg: ShipConfig,
    env: Environment,
    cluster: ClusterApi,
    rendered: list[dict] | None = None,
    credentials: Credentials | None = None,
) -> list[dict]:
    """ENV's objects as git renders them, plus the apps' Secrets and, with ENV's `pull_secret`,
    the image pull secret made from `credentials` (default: a lookup of this run's)."""
    # diff, status
    objects = rendered if rendered is not None else render(cfg.root / env.folder, str(env.folder))
    # each release's hook Jobs under names of their own (kube/hooks.py)
    objects = hooks.prepare(objects)
    exists = namespace_exists(cluster, env)
    # before ship adds the Secrets it builds itself
    refuse_rendered_secrets(objects, str(env.folder))
    for app in apps_in(cfg, env):
        if app.secrets:
            live = cluster.get("v1", "Secret", app.secret_name, env.namespace) if exists else None
            secret = secrets.secret_for(app, env, live)
            if secret:
                objects.append(secret)
    if env.pull_secret:
        found = credentials or Credentials(cfg.registry_host)
        live = cluster.get("v1", "Secret", names.PULL_SECRET, env.namespace) if exists else None
        pulls = pull_secret.pull_secret(env.namespace, objects, found.lookup, live)
        if pulls is not None:
            objects = [*pull_secret.with_references(objects), pulls]
    return objects


def namespace_exists(cluster: ClusterApi, env: Environment) -> bool:
    return apply.namespace_state(cluster, env.namespace) is not None
