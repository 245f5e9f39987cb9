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
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Any

from pipeline.config.model import App
from pipeline.errors import ConfigError
from pipeline import yamlsafe


VALUES_FILE = "values.yaml"


def chart_files(app: App, env: str, namespace: str, folder: Path, root: Path) -> dict[str, dict]:
    """The files, by name, to write in `folder` (absolute, inside `root`) that render APP's chart
    with its values for ENV (each values file optional): kustomization.yaml and values.yaml.
    The chart must exist under `root`."""
    if app.chart is None:
        raise ConfigError(f"app {app.name}: no chart to render")
    chart = root / app.chart.path
    if not (chart / "Chart.yaml").is_file():
        raise ConfigError(f"{app.chart.path}: no Chart.yaml (apps.{app.name}.chart.path names no Helm chart)")
    values: dict = {}
    for file in app.values_files(env):
        if (root / file).is_file():
            loaded = yamlsafe.load_file(root / file, str(file), root)
            if loaded is not None and not isinstance(loaded, dict):
                raise ConfigError(f"{file}: chart values must be a mapping")
            values = merge_values(values, loaded or {})
    entry = {"name": app.chart.name, "releaseName": app.name, "namespace": namespace, "includeCRDs": True,
             "valuesFile": VALUES_FILE}
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
            merged[key] = merge_values(merged[key] if isinstance(merged.get(key), dict) else {}, value)
        else:
            merged[key] = value
    return merged
