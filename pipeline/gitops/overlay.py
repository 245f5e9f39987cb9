"""Writes a release into an environment's kustomize overlay: pure, file contents in and out.

An environment's overlay (`environments/ENV/`) is real kustomize that Argo CD or Flux could
render too, whole or one app at a time:

    kustomization.yaml   the Namespace and one folder per app (`environment_files`)
    namespace.yaml       the environment's Namespace
    APP/                 one app's slot (`plan_release`):
      kustomization.yaml   the app's base, `images:` pinned by digest, a patch pointing the
                           workload at the release's versioned ConfigMap
      configs/*.yaml       immutable versioned ConfigMaps, the newest `keep_configs` of them
      charts/*/            an app from a chart: the chart bases of its newest releases (chart.py)
      release.yaml         the app's release record
      ledger.yaml          every release of the app here and what became of it (ledger.py)

Nothing here reads or writes files, git or a cluster: `plan_release` takes the current files
and returns the new ones, so every decision is tested without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline import names, yamlsafe
from pipeline.config import App, Environment, Slot
from pipeline.errors import ConfigError, ValidationError
from pipeline.gitops import routing
from pipeline.gitops.chart import CHARTS_DIR, dropped_chart_files
from pipeline.gitops.configmaps import CONFIG_DIR, config_map, kept_configs
from pipeline.gitops.records import Release
from pipeline.imageref import ImageRef
from pipeline.kube.podspec import configmap_refs, pod_spec_of
from pipeline.refs import pointer

KUSTOMIZATION = "kustomization.yaml"
NAMESPACE_FILE = "namespace.yaml"
RELEASE_FILE = "release.yaml"
# a canary in progress (canary_overlay.py); not a kustomize resource
CANARY_STATE_FILE = "canary.yaml"
CANARY_DIR = "canary"  # the canary's own kustomization
HEADER = "# Written by ship; edit ship.yaml and the app's config, not this file.\n"
RELEASE_HEADER = (
    "# Written by ship. The git history of this file is this environment's release ledger.\n"
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
KEY_ORDER = ("apiVersion", "kind", "namespace", "resources", "images", "patches", "labels")


def config_refs(workload: dict[str, Any], config_name: str) -> list[str]:
    """JSON pointers of every reference to ConfigMap `config_name` in a workload's pod spec."""
    return [
        pointer for pointer, name in configmap_refs(pod_spec_of(workload)) if name == config_name
    ]


def patched_workloads(app: App, base_objects: list[dict]) -> list[dict]:
    """The base's workloads that use the app's ConfigMap: the ones each release repoints."""
    return [
        o
        for o in base_objects
        if o.get("kind") in WORKLOAD_KINDS and config_refs(o, app.config_name)
    ]


def workload_ops(workload: dict, release: Release, config_name: str) -> list[dict]:
    """JSON6902 ops moving a workload onto the release's ConfigMap, with its change-cause."""
    refs = config_refs(workload, config_name)
    ops: list[dict] = [{"op": "replace", "path": p, "value": release.config} for p in refs]
    notes = {
        names.CHANGE_CAUSE: f"ship release {release.id}: {release.image}",
        names.RELEASE: release.id,
    }
    for where, meta in (
        ("/metadata", workload.get("metadata", {})),
        ("/spec/template/metadata", workload["spec"]["template"].get("metadata", {})),
    ):
        values = notes if where == "/metadata" else {names.RELEASE: release.id}
        if meta.get("annotations"):
            ops += [
                {"op": "add", "path": f"{where}{pointer('annotations', k)}", "value": v}
                for k, v in values.items()
            ]
        else:
            ops.append({"op": "add", "path": f"{where}/annotations", "value": values})
    return ops


def environment_files(
    env: Environment, apps: list[str], current: str | None = None
) -> dict[str, str | None]:
    """The environment's own files: its Namespace and a kustomization listing its apps' folders,
    keeping whatever else `current` (the kustomization now) lists or sets."""
    kz = _load_kustomization(current, env.folder)
    listed = [r for r in kz.get("resources", []) if isinstance(r, str)]
    others = [r for r in listed if r != NAMESPACE_FILE and not _is_app_folder(r)]
    kz.update(namespace=env.namespace, resources=[NAMESPACE_FILE, *sorted(apps), *others])
    # the Namespace's; the apps' carry them too
    kz.setdefault(
        "labels",
        [
            {
                "pairs": {names.MANAGED_BY: names.MANAGER, names.ENV_LABEL: env.name},
                "includeSelectors": False,
            }
        ],
    )
    return {
        KUSTOMIZATION: HEADER + yamlsafe.dumps(_ordered(kz)),
        NAMESPACE_FILE: HEADER + yamlsafe.dumps(namespace_object(env)),
    }


def _is_app_folder(resource: str) -> bool:
    """An app's folder in the environment's kustomization: a plain name, no file, no path."""
    return "/" not in resource and "." not in resource


def ship_labels(kz: dict, env: Environment, app: App) -> list[dict]:
    """The kustomization's `labels:` with ship's own (managed-by, environment, app) first."""
    ours = {names.MANAGED_BY: names.MANAGER, names.ENV_LABEL: env.name, names.APP_LABEL: app.name}
    others = [
        entry
        for entry in kz.get("labels", [])
        if not (
            isinstance(entry, dict)
            and (entry.get("pairs") or {}).get(names.MANAGED_BY) == names.MANAGER
        )
    ]
    return [{"pairs": ours, "includeSelectors": False}, *others]


def routed(env: Environment) -> bool:
    """Whether ENV's canary router needs stable and canary pods kept apart (gateway, nginx)."""
    return env.canary is not None and env.canary.router in routing.ROUTED


def routing_files(
    slot: Slot, base_objects: list[dict], workloads: list[dict], canary_weight: int | None
) -> dict[str, str | None]:
    """The overlay's route or Ingress files for ENV's router, at a canary weight or none."""
    if slot.env.canary is None or not workloads:
        return {}
    target = routing.service_for(base_objects, workloads[0])
    if target is None:
        if slot.env.canary.router in routing.ROUTED:
            raise ValidationError(
                f"{slot.env.name}: canary router "
                f"{slot.env.canary.router} needs a Service selecting "
                f"Deployment {workloads[0]['metadata']['name']} in the app's base"
            )
        return {}
    # `{app}` in the host gives each app of the environment its own hostname
    policy = replace(slot.env.canary, host=slot.env.canary.host.replace("{app}", slot.app))
    objects = routing.routing_objects(policy, target[0], target[1], canary_weight)
    return {path: (HEADER + yamlsafe.dumps(obj)) if obj else None for path, obj in objects.items()}


def namespace_object(env: Environment) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace}}


@dataclass(frozen=True)
class OverlayFiles:
    """Files of an overlay by path relative to it; None marks a file to delete."""

    files: dict[str, str | None]

    def get(self, path: str) -> str | None:
        return self.files.get(path)


def _load_kustomization(text: str | None, folder: Path) -> dict:
    if not text:
        return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    data = yamlsafe.loads(text, f"{folder}/{KUSTOMIZATION}")
    if not isinstance(data, dict):
        raise ConfigError(f"{folder}/{KUSTOMIZATION}: expected a mapping")
    return dict(data)


def current_release(files: dict[str, str | None], slot: Slot) -> Release | None:
    """The slot's current release, from its files (None before its first)."""
    return read_release(files, slot.overlay)


def read_release(files: dict[str, str | None], folder: Path) -> Release | None:
    """The release record among an overlay folder's files (`folder` names it in errors)."""
    text = files.get(RELEASE_FILE)
    if not text:
        return None
    data = yamlsafe.loads(text, f"{folder}/{RELEASE_FILE}")
    return Release.from_record(data) if isinstance(data, dict) and data.get("id") else None


@dataclass(frozen=True)
class AppBase:
    """An app's base as a slot's overlay refers to it."""

    objects: list[dict]  # as kustomize renders it
    path: str  # its folder, relative to the slot's folder
    # a chart base's files, written into the slot; None: a folder of the repository
    files: dict[str, str] | None = None


def plan_release(
    current: dict[str, str | None], app: App, slot: Slot, release: Release, base: AppBase
) -> OverlayFiles:
    """The slot's new files once `release` is written into it; `current`: its files now (relative
    paths)."""
    base_objects, base_path, base_files = base.objects, base.path, base.files
    patched = _checked_workloads(app, base_objects)
    kz = _load_kustomization(current.get(KUSTOMIZATION), slot.overlay)
    kz["namespace"] = slot.env.namespace
    resources, dropped = _resources(kz, app, release, base_path)
    kz["images"] = pinned_images(kz.get("images", []), app, release)
    kz["patches"] = _stable_patches(
        kz.get("patches", []), app, slot.env, release, base_objects, patched
    )
    kz["labels"] = ship_labels(kz, slot.env, app)
    files: dict[str, str | None] = {RELEASE_FILE: RELEASE_HEADER + yamlsafe.dumps(release.record())}
    # while a canary runs, canary_overlay.py owns the routing
    if current.get(CANARY_STATE_FILE) is None:
        routes = routing_files(slot, base_objects, patched, None)
        files.update(routes)
        listed = [r for r in resources if r not in routes]
        resources = [*listed[:1], *[p for p, t in routes.items() if t is not None], *listed[1:]]
    kz["resources"] = resources
    files[KUSTOMIZATION] = HEADER + yamlsafe.dumps(_ordered(kz))
    new_config = f"{CONFIG_DIR}/{release.config}.yaml"
    if current.get(new_config) is None:
        files[new_config] = HEADER + yamlsafe.dumps(config_map(app, release))
    for name in dropped:
        files[f"{CONFIG_DIR}/{name}.yaml"] = None
    files.update(
        {path: text for path, text in (base_files or {}).items() if current.get(path) != text}
    )
    files.update(dropped_chart_files(current, slot, release, app.keep_configs, CANARY_STATE_FILE))
    return OverlayFiles(files)


def _checked_workloads(app: App, base_objects: list[dict]) -> list[dict]:
    """The workloads a release repoints; refuses a base with none, or with a Secret carrying
    data."""
    patched = patched_workloads(app, base_objects)
    if not patched:
        raise ValidationError(
            f"{app.path / app.base}: no Deployment, StatefulSet or DaemonSet references ConfigMap "
            f"{app.config_name}; ship points that reference at each release's versioned ConfigMap"
        )
    for obj in base_objects:
        if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
            raise ValidationError(
                f"{app.path / app.base}: Secret {obj['metadata'].get('name')} carries data; "
                "secrets never go in git"
            )
    return patched


def _resources(kz: dict, app: App, release: Release, base_path: str) -> tuple[list[str], list[str]]:
    """(the kustomization's resources with the release's config, config names dropped)."""
    prefix = f"{CONFIG_DIR}/{app.config_name}-"
    resources = [r for r in kz.get("resources", []) if isinstance(r, str)]
    existing = [PurePosixPath(r).stem for r in resources if r.startswith(prefix)]
    kept, dropped = kept_configs(existing, release.config, app.keep_configs)
    others = [
        r
        for r in resources
        if not r.startswith((prefix, f"{CHARTS_DIR}/")) and r not in (NAMESPACE_FILE, base_path)
    ]
    return [base_path, *others, *[f"{CONFIG_DIR}/{n}.yaml" for n in kept]], dropped


def pinned_images(images: list[dict], app: App, release: Release) -> list[dict]:
    """The kustomization's `images:` with APP's image pinned to the release's digest."""
    ref = ImageRef.parse(release.image)
    return [
        *[i for i in images if i.get("name") != app.image],
        {"name": app.image, "newName": ref.repository, "newTag": ref.tag, "digest": ref.digest},
    ]


def patch_target(workload: dict, **extra: str) -> dict:
    group, _, version = workload["apiVersion"].rpartition("/")
    return {
        "group": group,
        "version": version,
        "kind": workload["kind"],
        "name": workload["metadata"]["name"],
        **extra,
    }


def _stable_patches(
    patches: list[dict],
    app: App,
    env: Environment,
    release: Release,
    base_objects: list[dict],
    patched: list[dict],
) -> list[dict]:
    """The kustomization's patches with the stable workloads (and Services) on `release`."""
    workload_names = {w["metadata"]["name"] for w in patched}

    def ours(p: dict, kinds: tuple[str, ...], names_: set[str]) -> bool:
        target = p.get("target") or {}
        return target.get("kind") in kinds and target.get("name") in names_

    patches = [p for p in patches if not ours(p, WORKLOAD_KINDS, workload_names)]
    services: set[str] = set()
    if routed(env):
        services = {s[0] for w in patched if (s := routing.service_for(base_objects, w))}
        patches = [p for p in patches if not ours(p, ("Service",), services)]
    for w in patched:
        ops = workload_ops(w, release, app.config_name) + (
            routing.track_ops(names.STABLE, selector=False) if routed(env) else []
        )
        # kustomize matches a target by original name too: the selector keeps the canary (the
        # same base, suffixed) out of the stable release's patches.
        patches.append(
            {
                "target": patch_target(w, labelSelector=names.NOT_CANARY),
                "patch": yamlsafe.dumps(ops),
            }
        )
    for service in sorted(services):
        patch = routing.service_track_patch(service, names.STABLE)
        patches.append(
            {
                "target": {**patch["target"], "labelSelector": names.NOT_CANARY},
                "patch": yamlsafe.dumps(patch["patch"]),
            }
        )
    return patches


def _ordered(kz: dict) -> dict:
    ordered = {k: kz[k] for k in KEY_ORDER if k in kz}
    ordered.update({k: v for k, v in kz.items() if k not in ordered})
    return ordered
