"""Gathering a preview: the base tree exported from git into a temporary folder, the working tree
as it is, each environment overlay rendered in both with the real kustomize, and each app's
config, secret keys and source compared.

The base is the merge base of `--base` and HEAD (as a pull request's diff is), so a branch that
is behind shows only its own changes. Never writes to the repository.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from pipeline import config, names, paths, yamlsafe
from pipeline.config import App, ShipConfig
from pipeline.errors import ConfigError, GitError, RenderError, ShipError
from pipeline.gitops import chart
from pipeline.gitops.records import parse_env_file
from pipeline.gitops.render import render
from pipeline.progress import Progress, quiet
from pipeline.report.preview.changes import Change, chart_changes, compare, env_changes, flat_values
from pipeline.report.preview.model import AppPreview, EnvironmentPreview, Preview


def _git(top: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(top), *args], capture_output=True, text=not binary)


def resolve_base(top: Path, base: str) -> tuple[str, str]:
    """(the ref found, the merge base of it and HEAD); `main` falls back to `origin/main`."""
    for ref in (base, f"origin/{base}"):
        found = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if found.returncode == 0 and found.stdout.strip():
            merge_base = _git(top, "merge-base", found.stdout.strip(), "HEAD")
            return ref, (
                merge_base.stdout.strip() if merge_base.returncode == 0 else ""
            ) or found.stdout.strip()
    raise GitError(
        f"--base {base}: no such branch or commit in {top} (in CI: fetch it, e.g. "
        f"actions/checkout with fetch-depth: 0)"
    )


def export(top: Path, sha: str, dest: Path) -> None:
    """The tree of commit `sha` written into `dest` (git archive; nothing in .git changes)."""
    proc = _git(top, "archive", "--format=tar", sha, binary=True)
    if proc.returncode != 0:
        raise GitError(
            f"git archive {sha[:7]} failed: {proc.stderr.decode(errors='replace').strip()}"
        )
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python before 3.11.4
            tar.extractall(dest)  # our own repository's tree, from git


def _load(root: Path) -> ShipConfig | None:
    if not (root / config.CONFIG_FILE).is_file():
        return None
    return config.parse(
        yamlsafe.load_file(root / config.CONFIG_FILE, f"{config.CONFIG_FILE} (base)"),
        root,
        f"{config.CONFIG_FILE} (base)",
        dict(os.environ),
    )


def _rendered(folder: Path, display: str) -> list[dict]:
    if (
        not (folder / "kustomization.yaml").is_file()
        and not (folder / "kustomization.yml").is_file()
    ):
        return []  # nothing released there yet
    return render(folder, display)


def _env_file(root: Path, app: App | None, env: str) -> dict[str, str]:
    if app is None:
        return {}
    rel = app.path / app.config / f"{env}.env"
    try:
        return parse_env_file(paths.read_text(root, rel, cap=names.MAX_CONFIG_BYTES), str(rel))
    except FileNotFoundError:
        return {}
    except ConfigError:
        return {}  # reported by the head's own check below when it is the head's


def _chart_inputs(root: Path, app: App | None, env: str, warnings: list[str]) -> dict[str, str]:
    """An app from a chart: its chart (NAME-VERSION) and its merged values for ENV, flattened."""
    if app is None or app.chart is None:
        return {}
    try:
        # a remote chart is named by ship.yaml alone: preview never pulls
        name = (
            f"{app.chart.name}-{app.chart.version}"
            if app.chart.remote
            else chart.chart_id(app, root)
        )
        return {"chart": name, **flat_values(chart.merged_values(app, env, root), "values.")}
    except ConfigError as exc:
        warnings.append(str(exc))
        return {}


def _source_changes(top: Path, prefix: Path, sha: str, app: App) -> list[str]:
    path = (prefix / app.path).as_posix()
    tracked = _git(top, "diff", "--name-only", sha, "--", path).stdout.split()
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "--", path).stdout.split()
    skip = tuple(f"{(prefix / app.path / sub).as_posix()}/" for sub in (app.config, app.base))
    return sorted({f for f in tracked + untracked if not f.startswith(skip)})


def gather(cfg: ShipConfig, base: str = "main", progress: Progress = quiet) -> Preview:
    top = Path(_git(cfg.root, "rev-parse", "--show-toplevel").stdout.strip() or cfg.root)
    prefix = cfg.root.resolve().relative_to(top.resolve())
    ref, sha = resolve_base(top, base)
    result = Preview(ref, sha, "working tree")
    with tempfile.TemporaryDirectory(prefix="ship-preview-") as tmp:
        progress(
            f"exporting {ref} at {sha[:7]} (the merge base "
            "with HEAD) and rendering every overlay in both"
        )
        export(top, sha, Path(tmp))
        old_root = Path(tmp) / prefix
        old: ShipConfig | None = None
        try:
            old = _load(old_root)
        except ShipError as exc:
            result.warnings.append(
                f"the base's ship.yaml does not load ({exc}); compared with nothing"
            )
        for name in [
            *cfg.environments,
            *[e for e in (old.environments if old else {}) if e not in cfg.environments],
        ]:
            result.environments.append(_environment(cfg, old, old_root, name, result.warnings))
        for name in [*cfg.apps, *[a for a in (old.apps if old else {}) if a not in cfg.apps]]:
            result.apps.append(_app(cfg, old, top, prefix, sha, name))
    return result


def _environment(
    cfg: ShipConfig, old: ShipConfig | None, old_root: Path, name: str, warnings: list[str]
) -> EnvironmentPreview:
    env = cfg.environments.get(name) or (old.environments[name] if old else None)
    assert env is not None
    folder = str(env.folder)
    try:
        before = (
            _rendered(old_root / env.folder, f"{folder} (base)")
            if old and name in old.environments
            else []
        )
    except RenderError as exc:
        warnings.append(f"{folder} does not render at the base: {exc}")
        before = []
    error = ""
    try:
        after = _rendered(cfg.root / env.folder, folder) if name in cfg.environments else []
    except RenderError as exc:
        error, after = str(exc), before
    next_release: dict[str, tuple[Change, ...]] = {}
    for app_name in sorted(set(cfg.apps) | set(old.apps if old else {})):
        new_app, old_app = cfg.apps.get(app_name), (old.apps.get(app_name) if old else None)
        secret = set(new_app.secrets if new_app else ()) | set(old_app.secrets if old_app else ())
        changes = env_changes(
            _env_file(old_root, old_app, name), _env_file(cfg.root, new_app, name), secret
        )
        changes += chart_changes(
            _chart_inputs(old_root, old_app, name, warnings),
            _chart_inputs(cfg.root, new_app, name, warnings),
        )
        leaked = sorted(secret & set(_env_file(cfg.root, new_app, name)))
        if leaked and new_app:
            warnings.append(
                f"{new_app.path / new_app.config}/{name}.env: "
                f"{', '.join(leaked)} is a secret of {app_name}: "
                "its value is not shown here, and ship refuses to release it from a config file"
            )
        if changes:
            next_release[app_name] = changes
    for obj in after:
        if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
            warnings.append(
                f"{folder}: Secret/{obj['metadata'].get('name')} "
                "has data in git; its values are not shown "
                "here, and ship refuses to release it "
                "(secrets come from SHIP_SECRET_* at sync time)"
            )
    return EnvironmentPreview(name, folder, compare(before, after), next_release, error)


def _app(
    cfg: ShipConfig, old: ShipConfig | None, top: Path, prefix: Path, sha: str, name: str
) -> AppPreview:
    new_app, old_app = cfg.apps.get(name), (old.apps.get(name) if old else None)
    app = new_app or old_app
    assert app is not None
    before, after = set(old_app.secrets if old_app else ()), set(new_app.secrets if new_app else ())
    keys = tuple(
        [(k, "added") for k in sorted(after - before)]
        + [(k, "removed") for k in sorted(before - after)]
    )
    return AppPreview(
        name, app.path.as_posix(), _source_changes(top, prefix, sha, app) if new_app else [], keys
    )
