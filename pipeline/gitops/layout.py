"""Moves an overlay from the one-app layout to one folder per app: pure, files in and out.

Before, `environments/ENV/` held one app's kustomization, configs, canary, release record and
ledger beside the Namespace. Now each app has its own folder (`environments/ENV/APP/`) and the
environment's kustomization lists them (overlay.py). A repository in the old layout is moved
over by the first ship command that runs in it, in one commit: the same objects render, so the
cluster sees no change but ship's app label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline import names, yamlsafe
from pipeline.config import Environment
from pipeline.errors import ConfigError
from pipeline.gitops import overlay
from pipeline.gitops.ledger import LEDGER_FILE, Ledger
from pipeline.names import FREEZE_FILE

if TYPE_CHECKING:
    from pipeline.gitops.git import Commit
    from pipeline.gitops.workspace import Workspace

# files that stay where they are
ENVIRONMENT_LEVEL = (overlay.NAMESPACE_FILE, FREEZE_FILE, ".gitkeep")


def is_old_layout(files: dict[str, str | None]) -> bool:
    """An environment overlay written before apps had folders: its release record at the top."""
    return files.get(overlay.RELEASE_FILE) is not None


def _deeper(kz_text: str, source: str, app: str) -> str:
    """A kustomization moved one folder down into APP's: its relative paths out of the folder
    gain `../`, and ship's labels name the app."""
    kz = yamlsafe.loads(kz_text, source)
    if not isinstance(kz, dict):
        raise ConfigError(f"{source}: expected a mapping")
    resources = [
        f"../{r}" if isinstance(r, str) and r.startswith("../") else r
        for r in kz.get("resources", [])
        if r != overlay.NAMESPACE_FILE
    ]
    labels = [
        {**entry, "pairs": {**entry["pairs"], names.APP_LABEL: app}}
        if isinstance(entry, dict)
        and (entry.get("pairs") or {}).get(names.MANAGED_BY) == names.MANAGER
        else entry
        for entry in kz.get("labels", [])
    ]
    return overlay.HEADER + yamlsafe.dumps(
        {**kz, "resources": resources, **({"labels": labels} if labels else {})}
    )


def migrated(files: dict[str, str | None], env: Environment) -> dict[str, str | None]:
    """The environment overlay's files (relative to it) in the per-app layout; {} when already
    there."""
    if not is_old_layout(files):
        return {}
    release = overlay.read_release(files, env.folder)
    if release is None:
        raise ConfigError(
            f"{env.folder}/{overlay.RELEASE_FILE}: no release id; cannot tell which app it holds"
        )
    app = release.app
    out: dict[str, str | None] = {}
    for rel, text in files.items():
        if rel in ENVIRONMENT_LEVEL or text is None:
            continue
        out[rel] = None
        if rel == LEDGER_FILE:
            continue  # split by app below
        if rel in (overlay.KUSTOMIZATION, f"{overlay.CANARY_DIR}/{overlay.KUSTOMIZATION}"):
            text = _deeper(text, f"{env.folder}/{rel}", app)
        out[f"{app}/{rel}"] = text
    ledger = Ledger.parse(files.get(LEDGER_FILE), f"{env.folder}/{LEDGER_FILE}")
    for name in sorted({e.release.app for e in ledger.entries} | {app}):
        mine = Ledger(tuple(e for e in ledger.entries if e.release.app == name))
        if mine.entries:
            out[f"{name}/{LEDGER_FILE}"] = mine.dumps()
    out.update(overlay.environment_files(env, [app]))
    return out


def migrate(workspace: Workspace, envs: list[Environment], *, push: bool = True) -> Commit | None:
    """Move overlays in the one-app layout to one folder per app, all in one commit (layout.py)."""

    def write() -> tuple[list[str], str] | None:
        moves = [(env, migrated(workspace.files(env), env)) for env in envs]
        moves = [(env, files) for env, files in moves if files]
        if not moves:
            return None
        paths = [
            p for env, files in moves for p in workspace.write(env, overlay.OverlayFiles(files))
        ]
        for env, _files in moves:
            workspace.journal.done(env)
        moved = ", ".join(env.name for env, _files in moves)
        return paths, names.commit_message(
            f"migrate({moved}): one overlay folder per app", "migrate", {"Environment": moved}
        )

    return workspace.git.publish(write, push=push)
