"""`ship retire ENV APP`: take one app out of an environment, leaving every other app alone.

    APP's folder leaves ENV's overlay (its ledger stays, for history) ─► one commit ─► sync:
    the prune removes APP's objects, and only APP's (every other app is still rendered)

An app removed from ship.yaml is retired the same way by the next `ship sync` of each
environment that still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import names
from pipeline.config import Environment, Slot
from pipeline.context import Context
from pipeline.errors import PromotionError
from pipeline.gitops import overlay
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE
from pipeline.kube.apply import Action, SyncResult
from pipeline.rollout.sync import sync_environment


@dataclass
class RetireResult:
    environment: str
    app: str
    commit: Commit | None
    sync: SyncResult | None = None

    @property
    def removed(self) -> list[str]:
        return [str(c) for c in self.sync.changes if c.action is Action.PRUNED] if self.sync else []

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "app": self.app,
            "commit": self.commit.sha if self.commit else None,
            "removed": self.removed,
        }

    def text(self) -> str:
        lines = [
            f"retired {self.app} from {self.environment}"
            + (f" (commit {self.commit.short})" if self.commit else "")
        ]
        return "\n".join(lines + self.removed)


def retire(
    ctx: Context, env: Environment, app: str, reason: str, *, sync: bool = True
) -> RetireResult:
    """APP's folder out of ENV's overlay in one commit, then (with `sync`) its objects pruned."""
    if app not in ctx.workspace.apps_in(env):
        raise PromotionError(
            f"{app} is not in {env.name} (apps there: "
            f"{', '.join(ctx.workspace.apps_in(env)) or 'none'})"
        )
    slot = Slot(env, app)
    current = ctx.workspace.current_release(slot)

    def plan(files: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str]:
        gone: dict[str, str | None] = {rel: None for rel in files if rel != LEDGER_FILE}
        title = f"retire({env.name}): {app}: {reason}"
        return overlay.OverlayFiles(gone), names.commit_message(
            title,
            "retire",
            {"App": app, "Environment": env.name, "Release": current.id if current else None},
        )

    ctx.progress(f"retiring {app} from {env.name}: {reason}")
    commit = ctx.workspace.publish(slot, [], plan)
    result = RetireResult(env.name, app, commit)
    if sync:
        result.sync = sync_environment(ctx, env)
    return result


def retire_removed(ctx: Context, env: Environment) -> list[RetireResult]:
    """Retire from ENV (without syncing) the apps it holds that ship.yaml no longer lists."""
    return [
        retire(ctx, env, name, "removed from ship.yaml", sync=False)
        for name in ctx.workspace.apps_in(env)
        if name not in ctx.config.apps
    ]
