"""`ship release ENV [APP]`: write a pinned release into ENV's overlay, commit and push it.

The decisions live in overlay.py; this module gathers the inputs (git, the app's config, the
rendered base, the image), performs the writes and the commit, and checks the result renders
with kustomize before anything is committed. Secrets never reach git: a Secret with data in
the overlay or the app's base stops the release, naming the file.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from pipeline.gitops import overlay
from pipeline.gitops import yamlsafe
from pipeline.config import App, Environment, ShipConfig
from pipeline.errors import ConfigError, RegistryError, ShipError, ValidationError
from pipeline.gitops.git import Commit, GitRepo
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.image.registry import ImageRef, Registry
from pipeline.gitops.render import render

Progress = Callable[[str], None]


@dataclass
class ReleaseResult:
    release: overlay.Release
    commit: Commit | None  # None when the release was already in place
    changed: bool
    sync: object | None = None  # apply.SyncResult when the release was synced
    gate: object | None = None  # gates.GateResult when it was gated


def read_overlay(root: Path, env: Environment) -> dict[str, str | None]:
    folder = root / env.overlay
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def write_overlay(root: Path, env: Environment, files: overlay.OverlayFiles) -> list[str]:
    folder = root / env.overlay
    written = []
    for rel, text in files.files.items():
        path = folder / rel
        if text is None:
            if not path.exists():
                continue  # nothing to delete, nothing for git to stage
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        written.append(str(env.overlay / rel))
    keep = folder / ".gitkeep"
    if keep.exists():
        keep.unlink()
    # The whole overlay: a file written earlier in the same change (a rollback writes before it
    # applies) must be committed too.
    return [*written, str(env.overlay)]


def find_secrets_with_data(root: Path, folders: list[Path]) -> list[str]:
    """Files under `folders` holding a Secret with data or stringData (never allowed in git)."""
    offending = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            try:
                docs = yamlsafe.loads_all(path.read_text(), str(path.relative_to(root)))
            except (ConfigError, UnicodeDecodeError):
                continue  # not a manifest; kustomize reports it if it matters
            for doc in docs:
                if isinstance(doc, dict) and doc.get("kind") == "Secret" and (doc.get("data") or doc.get("stringData")):
                    offending.append(str(path.relative_to(root)))
                    break
    return offending


def guard_secrets(root: Path, app: App, env: Environment) -> None:
    offending = find_secrets_with_data(root, [env.overlay, app.path / app.base])
    if offending:
        raise ValidationError(
            f"{offending[0]}: a Secret with data must never be committed; remove it "
            "(ship supplies secret values at sync time from SHIP_SECRET_* variables)"
        )


def load_config_data(root: Path, app: App, env: Environment) -> dict[str, str]:
    path = app.path / app.config / f"{env.name}.env"
    if not (root / path).is_file():
        raise ConfigError(f"{path}: config for environment {env.name} not found")
    data = overlay.parse_env_file((root / path).read_text(), str(path))
    overlay.check_config_has_no_secrets(app, data, str(path))
    return data


def check_image(registry: Registry, image: str) -> ImageRef:
    """The pinned image, after confirming its tag still points at its digest in the registry."""
    ref = ImageRef.parse(image)
    live = registry.manifest_digest(ref.path, ref.tag)
    if live is None:
        raise RegistryError(f"{ref.repository}:{ref.tag} is not in the registry")
    if live != ref.digest:
        raise RegistryError(f"{ref.repository}:{ref.tag} now points at {live}, not {ref.digest}")
    return ref


def commit_message(release: overlay.Release, action: str = "release", summary: str | None = None) -> str:
    title = summary or f"{release.app} {release.id}"
    return (
        f"{action}({release.environment}): {title}\n\n"
        f"Ship-Action: {action}\n"
        f"Ship-Release: {release.id}\n"
        f"Ship-App: {release.app}\n"
        f"Ship-Environment: {release.environment}\n"
        f"Ship-Commit: {release.commit}\n"
        f"Ship-Image: {release.image}\n"
        f"Ship-Config: {release.config}\n"
    )


def new_release(cfg: ShipConfig, app: App, env: Environment, image: str, head: Commit, author: str,
                promoted_from: str | None = None) -> overlay.Release:
    data = load_config_data(cfg.root, app, env)
    rid = overlay.release_id(head.time, head.short)
    # Another image or config from the same commit is another release: same id, a suffix.
    ledger, n, base_id = read_ledger(cfg.root, env), 1, rid
    while (entry := ledger.find(rid)) is not None and (entry.release.image != image
                                                        or dict(entry.release.config_data) != data):
        n += 1
        rid = f"{base_id}.{n}"
    return overlay.Release(
        id=rid, app=app.name, environment=env.name, commit=head.sha, image=image, config="",
        created_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        created_by=os.environ.get("SHIP_ACTOR") or author, promoted_from=promoted_from, config_data=data,
    )


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_ledger(root: Path, env: Environment) -> Ledger:
    path = root / env.overlay / LEDGER_FILE
    return Ledger.parse(path.read_text() if path.is_file() else None, str(env.overlay / LEDGER_FILE))


def write_release(cfg: ShipConfig, app: App, env: Environment, release: overlay.Release, *, push: bool = True,
                  action: str = "release", summary: str | None = None, always: bool = False,
                  ledger_change: Callable[[Ledger, overlay.Release], Ledger] | None = None,
                  progress: Progress = lambda _m: None) -> ReleaseResult:
    """Write `release` into ENV's overlay (and its ledger), check it renders, commit and push.

    `always`: write even when the release is already the current one (a rollback does);
    `ledger_change`: how the ledger changes (default: the release added as pending).
    """
    base_objects, base_rel = base_of(cfg, app, env)
    change = ledger_change or (lambda ledger, rel: ledger.record(rel, Outcome.PENDING, "", now_iso()))
    state: dict = {}

    def plan(current: dict[str, str | None]):
        now = overlay.current_release(current, env)
        if always:
            rel = release
        else:
            rel = replace(release, config=overlay.config_name_for(app, release.id, release.config_data, current))
        state["release"] = rel
        if not always and now and now.id == rel.id and now.image == rel.image and now.config == rel.config:
            return None  # the same commit, image and config are already released here
        files = overlay.plan_release(current, app, env, rel, base_objects, base_rel)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(env.overlay / LEDGER_FILE))
        files.files[LEDGER_FILE] = change(ledger, rel).dumps()
        progress(f"wrote {env.overlay}: {rel.image}, ConfigMap {rel.config}")
        return files, (summary(rel) if callable(summary) else commit_message(rel, action, summary))

    commit = publish_overlay(cfg, app, env, plan, push=push)
    return ReleaseResult(state["release"], commit, changed=commit is not None)


def base_of(cfg: ShipConfig, app: App, env: Environment) -> tuple[list[dict], str]:
    """The app's base as kustomize renders it, and its folder relative to ENV's overlay."""
    base_folder = cfg.root / app.path / app.base
    return render(base_folder, str(app.path / app.base)), os.path.relpath(base_folder, cfg.root / env.overlay)


def publish_overlay(cfg: ShipConfig, app: App, env: Environment,
                    plan: Callable[[dict[str, str | None]], tuple[overlay.OverlayFiles, str] | None],
                    push: bool = True) -> Commit | None:
    """Write the files `plan` returns for ENV's overlay as it is, check they render, commit, push.

    `plan` sees the overlay's current files and returns (files, commit message), or None for no
    change; it runs again on the remote's state when a push is rejected.
    """
    repo = GitRepo(cfg.root)

    def write():
        current = read_overlay(cfg.root, env)
        planned = plan(current)
        if planned is None:
            return None
        files, message = planned
        paths = write_overlay(cfg.root, env, files)
        try:
            guard_secrets(cfg.root, app, env)
            render(cfg.root / env.overlay, str(env.overlay))
        except ShipError:
            _restore(cfg.root, env, current)
            raise
        return paths, message

    guard_secrets(cfg.root, app, env)
    return repo.publish(write, push=push)


def record_outcome(cfg: ShipConfig, env: Environment, release: overlay.Release, outcome: str, reason: str = "",
                   push: bool = True) -> Commit | None:
    """Commit a new outcome for `release` in ENV's ledger (no change when it already has it)."""
    repo = GitRepo(cfg.root)
    path = cfg.root / env.overlay / LEDGER_FILE

    def write():
        ledger = read_ledger(cfg.root, env)
        entry = ledger.find(release.id)
        if entry is not None and entry.outcome == outcome and entry.reason == reason:
            return None
        path.write_text(ledger.record(entry.release if entry else release, outcome, reason, now_iso()).dumps())
        title = f"{release.app} {release.id} {outcome}" + (f": {reason}" if reason else "")
        return [str(env.overlay / LEDGER_FILE)], (
            f"record({env.name}): {title}\n\nShip-Action: record\nShip-Release: {release.id}\n"
            f"Ship-Environment: {env.name}\nShip-Outcome: {outcome}\n")

    return repo.publish(write, push=push)


def _restore(root: Path, env: Environment, files: dict[str, str | None]) -> None:
    """Put an overlay back as it was, so a failed release leaves nothing half-written."""
    folder = root / env.overlay
    for path in list(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and str(path.relative_to(folder)) not in files:
            path.unlink()
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text or "")
