"""The repository as ship reads and writes it: overlay files, ledgers, app config and bases,
and publishing a change as one commit.

Every write goes through `publish`: the planned files are written, checked (no Secret with
data, the overlay still renders with kustomize), committed and pushed; a failed check puts the
overlay back as it was, so nothing is left half-written. Until the change is committed, the
journal (journal.py) names the overlay and the writing process, so a run killed in between
leaves nothing the next run (`recover`) does not put back. Decisions live in overlay.py and
canary_overlay.py; this module only performs them. Never talks to a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pipeline import names, paths
from pipeline.clock import Clock
from pipeline.config import App, Environment, Slot
from pipeline.errors import ShipError
from pipeline.gitops import canary_overlay, overlay
from pipeline.gitops.chart import ChartBase
from pipeline.gitops.chart_build import ChartBases
from pipeline.gitops.git import Commit, GitRepo
from pipeline.gitops.inputs import AppInputs, refuse_rendered_secrets
from pipeline.gitops.journal import Journal
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.gitops.records import Release
from pipeline.gitops.render import render
from pipeline.progress import Progress, quiet

OverlayText = dict[str, str | None]
# A plan sees the overlay's files now and returns (files to write, commit message), or None.
OverlayPlan = Callable[[OverlayText], "tuple[overlay.OverlayFiles, str] | None"]


class Workspace(AppInputs, ChartBases):
    """A working clone of the repository: `root` holds ship.yaml, apps/ and environments/."""

    def __init__(self, root: Path, git: GitRepo, clock: Clock | None = None):
        self.root, self.git, self.clock = root, git, clock or Clock()
        self._charts: dict[str, ChartBase] = {}  # built this run, by the digest of their inputs

    def render(self, folder: Path) -> list[dict]:
        """`folder` (relative to the root) rendered by kustomize; render.py remembers the result
        by the content of what kustomize reads, so a publish's check and the sync after it
        run kustomize once between them."""
        return render(self.root / folder, str(folder))

    def render_overlay(self, env: Environment) -> list[dict]:
        """ENV's overlay as kustomize renders it."""
        return self.render(env.folder)

    # ── reading ──────────────────────────────────────────────────────────────────────────────

    def files(self, env: Environment) -> OverlayText:
        """ENV's overlay files (every app's folder too) by path relative to that overlay."""
        return self._files(env.folder)

    def slot_files(self, slot: Slot) -> OverlayText:
        """The files of one app's folder in its environment's overlay, by path relative to it."""
        return self._files(slot.overlay)

    def _files(self, where: Path) -> OverlayText:
        folder = paths.contained(self.root, where)
        return {
            str(p.relative_to(folder)): paths.read_text(self.root, p)
            for p in paths.regular_files(self.root, folder)
        }

    def apps_in(self, env: Environment) -> list[str]:
        """The apps with a folder in ENV's overlay (released there at least once), by name."""
        folder = self.root / env.folder
        if not folder.is_dir():
            return []
        return sorted(p.parent.name for p in folder.glob(f"*/{overlay.KUSTOMIZATION}"))

    def slots(self, env: Environment) -> list[Slot]:
        """The slots of the apps with a folder in ENV's overlay."""
        return [Slot(env, app) for app in self.apps_in(env)]

    def current_release(self, slot: Slot) -> Release | None:
        """The app's current release in its environment (None before its first)."""
        return overlay.current_release(self.slot_files(slot), slot)

    def canary_state(self, slot: Slot) -> canary_overlay.CanaryState | None:
        return canary_overlay.read_state(self.slot_files(slot), slot)

    def ledger(self, slot: Slot) -> Ledger:
        """The app's ledger in its environment."""
        try:
            text: str | None = paths.read_text(self.root, slot.overlay / LEDGER_FILE)
        except FileNotFoundError:
            text = None
        return Ledger.parse(text, str(slot.overlay / LEDGER_FILE))

    def environment_ledger(self, env: Environment) -> Ledger:
        """Every app's ledger in ENV (a retired app's too), merged, oldest first."""
        entries = [e for app in self.ledger_apps(env) for e in self.ledger(Slot(env, app)).entries]
        return Ledger(tuple(sorted(entries, key=lambda e: e.release.created_at or "")))

    def ledger_apps(self, env: Environment) -> list[str]:
        """Apps with a ledger in ENV (a retired app's stays, for its history)."""
        folder = self.root / env.folder
        return (
            sorted(p.parent.name for p in folder.glob(f"*/{LEDGER_FILE}"))
            if folder.is_dir()
            else []
        )

    def base_of(
        self, app: App, slot: Slot, release: Release | None = None
    ) -> tuple[list[dict], str]:
        """The app's base as kustomize renders it, and its folder relative to the slot's folder;
        for an app from a chart, `release`'s chart base (chart_build.ChartBases)."""
        if app.chart is not None:
            base = self.chart_base(app, slot, release)
            return base.objects, base.folder
        base_folder = self.root / app.path / app.base
        return self.render(app.path / app.base), os.path.relpath(
            base_folder, self.root / slot.overlay
        )

    # ── writing ──────────────────────────────────────────────────────────────────────────────

    @property
    def journal(self) -> Journal:
        """Who is writing which overlay, so `recover` can put back what a killed run left."""
        return Journal(self.git)

    def recover(self, progress: Progress = quiet) -> list[str]:
        """Put back, as git has them, the overlays a ship run was writing when it died; the
        overlays."""
        return self.journal.recover(progress)

    def in_environment(self, slot: Slot, files: overlay.OverlayFiles) -> overlay.OverlayFiles:
        """A slot's files as paths of its environment's overlay, with the environment's
        kustomization listing the apps that have a folder once they are written."""
        env, app = slot.env, slot.app
        out: dict[str, str | None] = {f"{app}/{rel}": text for rel, text in files.files.items()}
        apps = set(self.apps_in(env))
        key = f"{app}/{overlay.KUSTOMIZATION}"
        if key in out:
            apps = apps | {app} if out[key] is not None else apps - {app}
        top = self.root / env.folder / overlay.KUSTOMIZATION
        out.update(
            overlay.environment_files(env, sorted(apps), top.read_text() if top.is_file() else None)
        )
        return overlay.OverlayFiles(out)

    def write_slot(self, slot: Slot, files: overlay.OverlayFiles) -> list[str]:
        """Write (or delete, for None) the files of an app's folder; the paths git must stage."""
        return self.write(slot.env, self.in_environment(slot, files))

    def write(self, env: Environment, files: overlay.OverlayFiles) -> list[str]:
        """Write (or delete, for None) the files of ENV's overlay; the paths git must stage."""
        # Every target checked before any is written: a symlinked folder refuses the whole change.
        targets = {rel: paths.writable(self.root, env.folder / rel) for rel in files.files}
        paths.regular_files(self.root, env.folder)
        self.journal.begin(env)
        folder = paths.contained(self.root, env.folder)
        written = []
        for rel, text in files.files.items():
            path = targets[rel]
            if text is None:
                if not path.exists():
                    continue  # nothing to delete, nothing for git to stage
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists() or path.read_text() != text:
                    path.write_text(text)
            written.append(str(env.folder / rel))
        for empty in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
            if not any(empty.iterdir()):
                empty.rmdir()  # a retired app's folder
        keep = folder / ".gitkeep"
        if keep.exists():
            keep.unlink()
        # The whole overlay: a file written earlier in the same change (a rollback writes before
        # it applies) must be committed too.
        return [*written, str(env.folder)]

    def restore(self, env: Environment, files: OverlayText) -> None:
        """Put an overlay back as it was, so a failed change leaves nothing half-written."""
        folder = paths.contained(self.root, env.folder)
        for path in paths.regular_files(self.root, folder):
            if str(path.relative_to(folder)) not in files:
                path.unlink()
        for rel, text in files.items():
            target = paths.writable(self.root, env.folder / rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text or "")

    def publish(
        self, slot: Slot, apps: list[App], plan: OverlayPlan, *, push: bool = True
    ) -> Commit | None:
        """Write the files `plan` returns for an app's folder as it is, check them, commit, push.

        `plan` runs again on the remote's state when a push is rejected. Nothing is committed
        when it returns None.
        """
        return self.publish_many(slot.env, apps, [(slot, plan)], push=push)

    def publish_many(
        self,
        env: Environment,
        apps: list[App],
        plans: list[tuple[Slot, OverlayPlan]],
        message: Callable[[], str] | None = None,
        *,
        push: bool = True,
    ) -> Commit | None:
        """Several slots of ENV changed in one commit: each plan sees its slot as it is; the commit
        message is `message()` once they ran, else the first plan's. Nothing is committed when every
        plan returns None."""

        def write() -> tuple[list[str], str] | None:
            before = self.files(env)
            staged: list[str] = []
            messages: list[str] = []
            try:
                for slot, plan in plans:
                    planned = plan(self.slot_files(slot))
                    if planned is not None:
                        staged += self.write_slot(slot, planned[0])
                        messages.append(planned[1])
                if not messages:
                    return None
                self.guard_secrets(env, apps)
                refuse_rendered_secrets(self.render_overlay(env), str(env.folder))
            except ShipError:
                self.restore(env, before)
                raise
            return staged, message() if message else messages[0]

        self.guard_secrets(env, apps)
        return self.journal.published(env, write, push=push)

    def publish_state(
        self, env: Environment, files: dict[str, str | None], message: str, *, push: bool = True
    ) -> Commit | None:
        """Commit state files of ENV's overlay that kustomize never reads (a freeze by hand): no
        render check, so an environment nothing was released to yet can hold them too. None
        when they are already as given."""

        def write() -> tuple[list[str], str] | None:
            current = self.files(env)
            if all(current.get(rel) == text for rel, text in files.items()):
                return None
            staged = self.write(env, overlay.OverlayFiles(dict(files)))
            folder = paths.contained(self.root, env.folder)
            if not any(folder.iterdir()):  # the last file went: keep the folder in git
                (folder / ".gitkeep").write_text("")
            return staged, message

        return self.journal.published(env, write, push=push)

    def record_outcome(
        self,
        env: Environment,
        release: Release,
        outcome: Outcome,
        reason: str = "",
        *,
        push: bool = True,
    ) -> Commit | None:
        """Commit a new outcome for `release` in its app's ledger in ENV (no commit when it already
        has it)."""
        return self.record_outcomes(env, [(release, outcome, reason)], push=push)

    def record_outcomes(
        self, env: Environment, outcomes: list[tuple[Release, Outcome, str]], *, push: bool = True
    ) -> Commit | None:
        """New outcomes for releases of ENV's apps, in their ledgers, in one commit."""

        def write() -> tuple[list[str], str] | None:
            staged, said = [], []
            for release, outcome, reason in outcomes:
                slot = Slot(env, release.app)
                ledger = self.ledger(slot)
                entry = ledger.find(release.id)
                if entry is not None and entry.outcome == outcome and entry.reason == reason:
                    continue
                self.journal.begin(env)
                path = paths.writable(self.root, slot.overlay / LEDGER_FILE)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(
                    ledger.record(
                        entry.release if entry else release, outcome, reason, self.clock.iso()
                    ).dumps()
                )
                staged.append(str(slot.overlay / LEDGER_FILE))
                said.append(f"{release.ref} {outcome.value}" + (f": {reason}" if reason else ""))
            if not staged:
                return None
            release, outcome, _ = outcomes[0]
            same = {o for _, o, _ in outcomes} == {outcome}
            fields: dict[str, str | None]
            if len(outcomes) == 1:
                fields = {
                    "Release": release.id,
                    "App": release.app,
                    "Environment": env.name,
                    "Outcome": outcome.value,
                }
            else:
                fields = {
                    "Apps": ", ".join(r.ref for r, _, _ in outcomes),
                    "Environment": env.name,
                    "Outcome": outcome.value if same else None,
                }
            return staged, names.commit_message(
                f"record({env.name}): {', '.join(said)}", "record", fields
            )

        return self.journal.published(env, write, push=push)
