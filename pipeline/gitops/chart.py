"""The kustomization that renders an app's Helm chart for one environment. Pure.

ship never runs helm itself: an app from a chart (`chart: {path: …}` in ship.yaml) gets a
kustomization whose `helmCharts` names the chart and the app's values files for the environment,
and kustomize inflates it (`--enable-helm`, render.py) with the pinned helm. Everything ship does
to a kustomize base (the image pinned by `images:`, labels, patches) then applies to the chart's
output, since it is kustomize's output like any other base. The chart itself is never edited:
its only inputs are values.

The app's values files are merged here as helm merges them (mappings key by key, anything else
replaced, null deleting) into one `values.yaml` beside the kustomization: kustomize refuses to
read a values file outside the kustomization's folder (and, given none, reads the chart's own
values.yaml, which is outside too), while the app's values live beside the app. helm still
applies the chart's own defaults under them.

A release writes its chart base into the environment's overlay (`APP/charts/NAME-VERSION-DIGEST/`):
the chart's files as they are, the merged values and this kustomization, so the overlay renders
on its own (Argo CD or Flux can read it), a chart changed in the repository moves no environment
until it is released, a canary renders its own chart and values beside the stable's, and a
rollback returns to the chart and values it ran. The folder's name carries the chart's version
and a digest of everything in it, which the release records (`chart`, `chart_digest`).

ship wires the chart's output as it wires a base it wrote (`wiring`): the containers that run the
app's image (by its last path part, e.g. `ghcr.io/stefanprodan/podinfo` for image `podinfo`) are
renamed to the app's image, so the overlay's `images:` pins them by digest whatever the values
say, and get `envFrom` the app's ConfigMap (and Secret), which each release repoints at its
versioned ConfigMap like any base's reference.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import paths, yamlsafe
from pipeline.config.model import App, Slot
from pipeline.errors import ConfigError
from pipeline.gitops.ledger import LEDGER_FILE, Ledger
from pipeline.gitops.records import Release

VALUES_FILE = "values.yaml"
CHARTS_DIR = "charts"  # in an app's slot of an overlay: one folder per chart base a release runs
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class ChartBase:
    """An app's chart rendered for one environment, as a release writes it into the overlay."""

    chart: str  # NAME-VERSION, from the chart's Chart.yaml
    # sha256:… of every file below: the chart as it is, the merged values, ship's wiring
    digest: str
    objects: list[dict] = field(compare=False)  # the base as kustomize renders it
    # by path in `folder`; {} when already written
    files: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def folder(self) -> str:
        return folder_of(self.chart, self.digest)


def folder_of(chart: str, digest: str) -> str:
    """The chart base's folder in an app's slot: `charts/NAME-VERSION-DIGEST12`."""
    return f"{CHARTS_DIR}/{chart}-{digest.removeprefix('sha256:')[:12]}"


def digest_of(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return "sha256:" + h.hexdigest()


def chart_id(app: App, root: Path, source: Path | None = None) -> str:
    """NAME-VERSION of APP's chart (or the copy at `source`), from its Chart.yaml; ConfigError
    naming the file when missing."""
    assert app.chart is not None
    where = (source or app.chart.path) / "Chart.yaml"
    if not (root / where).is_file():
        raise ConfigError(
            f"{where.parent}: no Chart.yaml (apps.{app.name}.chart.path names no Helm chart)"
        )
    meta = yamlsafe.load_file(root / where, str(where), root)
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise ConfigError(f"{where}: a chart needs a name and a version")
    return f"{meta['name']}-{meta['version']}"


def base_files(
    app: App,
    env: str,
    namespace: str,
    root: Path,
    wired: dict | None = None,
    source: Path | None = None,
) -> dict[str, str]:
    """The chart base's files by path in its folder: kustomization.yaml (with `wired`, the
    wiring's images and patches), values.yaml, and the chart's own files (from `source`, by
    default the app's chart) under its name."""
    assert app.chart is not None
    chart_id(app, root, source)
    folder = paths.contained(root, source or app.chart.path)
    files = {
        f"{app.chart.name}/{p.relative_to(folder)}": paths.read_text(root, p)
        for p in paths.regular_files(root, source or app.chart.path)
    }
    values = merged_values(app, env, root)
    entry = {
        "name": app.chart.name,
        "releaseName": app.name,
        "namespace": namespace,
        "includeCRDs": True,
        "skipTests": True,
        "valuesFile": VALUES_FILE,
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "helmGlobals": {"chartHome": "."},
        "helmCharts": [entry],
        **(wired or {}),
    }
    return {
        **files,
        "kustomization.yaml": yamlsafe.dumps(kustomization),
        VALUES_FILE: yamlsafe.dumps(values),
    }


def image_name(image: str) -> str:
    """An image reference without its tag and digest: what kustomize's `images:` matches on."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def wiring(app: App, objects: list[dict], where: str) -> dict:
    """The kustomization's `images:` and `patches:` that wire the chart's output like a base ship
    wrote: the app's containers renamed to its image, and given `envFrom` its ConfigMap (and
    Secret)."""
    want = app.image.rsplit("/", 1)[-1]
    renamed: set[str] = set()
    patches = []
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        ops: list[dict] = []
        for i, c in enumerate(containers):
            name = image_name(str(c.get("image", "")))
            if name.rsplit("/", 1)[-1] != want:
                continue
            if name != app.image:
                renamed.add(name)
            sources = [{"configMapRef": {"name": app.config_name}}]
            sources += [{"secretRef": {"name": app.secret_name}}] if app.secrets else []
            pointer = f"/spec/template/spec/containers/{i}/envFrom"
            ops += (
                [{"op": "add", "path": f"{pointer}/-", "value": s} for s in sources]
                if c.get("envFrom")
                else [{"op": "add", "path": pointer, "value": sources}]
            )
        if ops:
            group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
            target = {
                "group": group,
                "version": version,
                "kind": obj["kind"],
                "name": obj["metadata"]["name"],
            }
            patches.append({"target": target, "patch": yamlsafe.dumps(ops)})
    if not patches:
        raise ConfigError(
            f"{where}: no Deployment, StatefulSet or DaemonSet of the chart runs an image named "
            f"{want} (apps.{app.name}.image); ship pins and configures the containers that do"
        )
    return {
        "images": [{"name": n, "newName": app.image} for n in sorted(renamed)],
        "patches": patches,
    }


def merged_values(app: App, env: str, root: Path) -> dict:
    """APP's values files for ENV merged (each optional; each must parse to a mapping)."""
    values: dict = {}
    for file in app.values_files(env):
        if (root / file).is_file():
            loaded = yamlsafe.load_file(root / file, str(file), root)
            if loaded is not None and not isinstance(loaded, dict):
                raise ConfigError(f"{file}: chart values must be a mapping")
            values = merge_values(values, loaded or {})
    return values


def chart_files(app: App, env: str, namespace: str, folder: Path, root: Path) -> dict[str, dict]:
    """The files, by name, to write in `folder` (absolute, inside `root`) that render APP's chart
    with its values for ENV (each values file optional): kustomization.yaml and values.yaml.
    The chart must exist under `root`."""
    if app.chart is None:
        raise ConfigError(f"app {app.name}: no chart to render")
    chart = root / app.chart.path
    if not (chart / "Chart.yaml").is_file():
        raise ConfigError(
            f"{app.chart.path}: no Chart.yaml (apps.{app.name}.chart.path names no Helm chart)"
        )
    values = merged_values(app, env, root)
    entry = {
        "name": app.chart.name,
        "releaseName": app.name,
        "namespace": namespace,
        "includeCRDs": True,
        "valuesFile": VALUES_FILE,
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "helmGlobals": {"chartHome": os.path.relpath(chart.parent, folder)},
        "helmCharts": [entry],
    }
    return {"kustomization.yaml": kustomization, VALUES_FILE: values}


def merge_values(base: dict, override: dict) -> dict:
    """`override` over `base` as helm merges values files: mappings merge, null deletes a key."""
    merged: dict[str, Any] = {str(k): v for k, v in base.items()}
    for key, value in override.items():
        key = str(key)
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            merged[key] = merge_values(
                merged[key] if isinstance(merged.get(key), dict) else {}, value
            )
        else:
            merged[key] = value
    return merged


def chart_folder(release: Release | None) -> str | None:
    return (
        folder_of(release.chart, release.chart_digest)
        if release and release.chart and release.chart_digest
        else None
    )


def dropped_chart_files(
    current: dict[str, str | None], slot: Slot, release: Release, keep: int, canary_file: str
) -> dict[str, None]:
    """Chart bases no longer kept once `release` is written: all but its own, a running canary's
    and those of the newest `keep` releases in the ledger (what a rollback may return to)."""
    ledger = Ledger.parse(current.get(LEDGER_FILE), str(slot.overlay / LEDGER_FILE))
    state = current.get(canary_file)
    canary = yamlsafe.loads(state, canary_file) if state else None
    canary_release = (
        Release.from_record(canary["release"])
        if isinstance(canary, dict) and canary.get("release")
        else None
    )
    kept = {
        chart_folder(release),
        chart_folder(canary_release),
        *[chart_folder(e.release) for e in ledger.entries[-keep:]],
    }
    return {
        path: None
        for path in current
        if path.startswith(f"{CHARTS_DIR}/") and "/".join(path.split("/")[:2]) not in kept
    }
