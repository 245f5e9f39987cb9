"""Builds an app's chart base for one environment (chart.py decides its files): renders the chart
once to find what to wire, then the wired base, each in a scratch folder. Reads the repository,
runs kustomize and helm; never writes to the repository or git.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.config import App, Environment
from pipeline.gitops import chart
from pipeline.gitops.chart import ChartBase
from pipeline.gitops.render import render


def build(app: App, env: Environment, root: Path) -> ChartBase:
    """APP's chart with its values for ENV, wired, as files and as rendered objects."""
    assert app.chart is not None
    chart_id = chart.chart_id(app, root)  # a missing chart is named before anything renders
    display = f"{app.chart.path} (values for {env.name}: {', '.join(map(str, app.values_files(env.name)))})"
    plain = _rendered(chart.base_files(app, env.name, env.namespace, root), display)
    files = chart.base_files(app, env.name, env.namespace, root, chart.wiring(app, plain, str(app.chart.path)))
    return ChartBase(chart_id, chart.digest_of(files), _rendered(files, display), files)


def _rendered(files: dict[str, str], display: str) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="ship-chart-") as tmp:
        for name, text in files.items():
            path = Path(tmp) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return render(Path(tmp), display)
