"""Builds an app's chart base for one environment (chart.py decides its files): renders the chart
once to find what to wire, then the wired base, each in a scratch folder; and finds a release's
chart base in the overlay (`ChartBases`, mixed into the workspace). Reads the repository, runs
kustomize and helm; never writes to the repository or git.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline import paths
from pipeline.config import App, Environment, Slot
from pipeline.errors import ConfigError
from pipeline.gitops import chart
from pipeline.gitops.chart import ChartBase, folder_of
from pipeline.gitops.records import Release
from pipeline.gitops.render import render

KUSTOMIZATION = "kustomization.yaml"


def build(app: App, env: Environment, root: Path, source: Path | None = None) -> ChartBase:
    """APP's chart (the one at `source`, by default its own) with its values for ENV, wired, as
    files and as rendered objects."""
    assert app.chart is not None
    source = source or app.chart.path
    chart_id = chart.chart_id(app, root, source)  # a missing chart is named before anything renders
    display = f"{source} (values for {env.name}: {', '.join(map(str, app.values_files(env.name)))})"
    plain = _rendered(chart.base_files(app, env.name, env.namespace, root, source=source), display)
    files = chart.base_files(
        app, env.name, env.namespace, root, chart.wiring(app, plain, str(source)), source
    )
    return ChartBase(chart_id, chart.digest_of(files), _rendered(files, display), files)


def _rendered(files: dict[str, str], display: str) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="ship-chart-") as tmp:
        for name, text in files.items():
            path = Path(tmp) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return render(Path(tmp), display)


class ChartBases:
    """Mixed into Workspace: `root` is the repository's working tree, `render` its cached
    kustomize."""

    root: Path
    _charts: dict[str, ChartBase]  # built this run, by the digest of their inputs

    render: Callable[[Path], list[dict]]  # Workspace.render

    def chart_base(
        self, app: App, slot: Slot, release: Release | None = None, source: Path | None = None
    ) -> ChartBase:
        """APP's chart base in ENV (a slot): `release`'s, as the overlay holds it (no files to
        write) or as this run built it, or else the chart (at `source`, by default the app's own)
        with the working tree's values, built once per run."""
        if release is not None and release.chart and release.chart_digest:
            folder = slot.overlay / folder_of(release.chart, release.chart_digest)
            if (self.root / folder / KUSTOMIZATION).is_file():
                return ChartBase(release.chart, release.chart_digest, self.render(folder))
            if found := next(
                (b for b in self._charts.values() if b.digest == release.chart_digest), None
            ):
                return found  # a promotion's: the chart its source environment runs (promotion.py)
        assert app.chart is not None
        source = source or app.chart.path
        digest = hashlib.sha256(f"{app.name}\0{slot.env.name}\0{slot.env.namespace}".encode())
        # the inputs, as the tree has them now
        for folder in (source, *app.values_files(slot.env.name)):
            for path in self._files_of(folder):
                digest.update(str(path).encode() + b"\0")
                paths.hash_into(digest, self.root, path)
        key = digest.hexdigest()
        if key not in self._charts:
            self._charts[key] = build(app, slot.env, self.root, source)
        built = self._charts[key]
        if release is not None and release.chart_digest and release.chart_digest != built.digest:
            raise ConfigError(
                f"{slot.overlay}/{folder_of(str(release.chart), release.chart_digest)}: release "
                f"{release.id}'s chart base is no longer in the overlay (ship keeps the newest "
                f"{app.keep_configs}); roll back to a newer release, or release it again"
            )
        return built

    def _files_of(self, folder: Path) -> list[Path]:
        """The files under FOLDER (or FOLDER itself, a file), as the tree has them now."""
        if (self.root / folder).is_dir():
            return paths.regular_files(self.root, folder, strict=False)
        return [self.root / folder] if (self.root / folder).is_file() else []

    def base_files(self, app: App, slot: Slot, release: Release | None = None) -> dict[str, str]:
        """The files a release of APP writes into ENV's slot beside its kustomization: its chart
        base, unless the overlay holds it already ({} for an app with a kustomize base)."""
        if app.chart is None:
            return {}
        base = self.chart_base(app, slot, release)
        return {f"{base.folder}/{name}": text for name, text in base.files.items()}
