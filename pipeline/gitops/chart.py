"""The kustomization that renders an app's Helm chart for one environment. Pure.

ship never runs helm itself: an app from a chart (`chart: {path: …}` in ship.yaml) gets a
kustomization whose `helmCharts` names the chart and the app's values files for the environment,
and kustomize inflates it (`--enable-helm`, render.py) with the pinned helm. Everything ship does
to a kustomize base (the image pinned by `images:`, labels, patches) then applies to the chart's
output, since it is kustomize's output like any other base. The chart itself is never edited:
its only inputs are values.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config.model import App
from pipeline.errors import ConfigError


def chart_kustomization(app: App, env: str, namespace: str, folder: Path, root: Path) -> dict:
    """The kustomization, to be written in `folder` (absolute, inside `root`), that renders APP's
    chart with its values for ENV; the chart and every values file must exist under `root`.
    kustomize reads the values files relative to the kustomization, so they are named from there."""
    if app.chart is None:
        raise ConfigError(f"app {app.name}: no chart to render")
    chart = root / app.chart.path
    if not (chart / "Chart.yaml").is_file():
        raise ConfigError(f"{app.chart.path}: no Chart.yaml (apps.{app.name}.chart.path names no Helm chart)")
    values = [os.path.relpath(root / f, folder) for f in app.values_files(env) if (root / f).is_file()]
    entry: dict = {"name": app.chart.name, "releaseName": app.name, "namespace": namespace, "includeCRDs": True}
    if values:
        entry["valuesFile"] = values[0]
    if values[1:]:
        entry["additionalValuesFiles"] = values[1:]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "helmGlobals": {"chartHome": os.path.relpath(chart.parent, folder)},
        "helmCharts": [entry],
    }
