"""The checks a change into an environment passes before anything is written or applied.

    unfrozen(ctx, env, override)   FrozenError naming the freeze, unless overridden with a reason
    signed(ctx, env, images)       SignatureError naming the first image not signed with ENV's key

Release and promote run both, sync only `signed`; rollback and abort run none (taking a change
back is always allowed, and the release they return to was checked when it came in). Older
images are release.refuse_older's, which ENV's `policy.allow_older` lets through.
What passed, and what was overridden by whom and why, becomes a Clearance: trailers of the
commit and a note in the ledger. Reads git, the clock and the registry (through cosign).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline import names, paths
from pipeline.config import Environment
from pipeline.context import Context
from pipeline.errors import FrozenError, GitError, SignatureError
from pipeline.imageref import ImageRef
from pipeline.names import FREEZE_FILE
from pipeline.policy.freeze import Freeze, ManualFreeze, holding


@dataclass(frozen=True)
class Override:
    """A freeze someone went through, and why."""

    freeze: str  # what held: `window 'weekend' (…)` or `freeze commit 3f2a1bc (…)`
    reason: str
    by: str


@dataclass(frozen=True)
class Clearance:
    """What a change passed on its way into an environment, for its commit and its ledger entry."""

    override: Override | None = None
    signature: str | None = None  # how its image was verified, when the environment requires it

    def trailers(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {names.SIGNATURE: self.signature}
        if self.override:
            out.update(
                {
                    names.OVERRIDE_FREEZE: self.override.freeze,
                    names.OVERRIDE_REASON: self.override.reason,
                    names.OVERRIDE_BY: self.override.by,
                }
            )
        return out

    @property
    def note(self) -> str:
        """The ledger's `override` field: empty unless a freeze was overridden."""
        o = self.override
        return f"freeze overridden by {o.by}: {o.reason} ({o.freeze})" if o else ""


def actor(ctx: Context) -> str:
    """Who is acting: $SHIP_ACTOR (CI sets it), else git's user; refused when it could break out of
    its line."""
    given = os.environ.get("SHIP_ACTOR")
    return (
        names.check_text(given, "$SHIP_ACTOR")
        if given
        else names.check_text(ctx.workspace.git.author(), "git's user")
    )


def manual_freeze(ctx: Context, env: Environment) -> tuple[ManualFreeze | None, str | None]:
    """ENV's freeze by hand, if any, and the short sha of the commit that set it."""
    try:
        text = paths.read_text(ctx.config.root, env.folder / FREEZE_FILE)
    except FileNotFoundError:
        return None, None
    state = ManualFreeze.parse(text, str(env.folder / FREEZE_FILE))
    try:
        commit: str | None = ctx.workspace.git.last_change(str(env.folder / FREEZE_FILE)).short
    except GitError:
        commit = None
    return state, commit


def freezes(ctx: Context, env: Environment) -> list[Freeze]:
    """Every freeze holding ENV now: by hand (freeze.yaml), then ship.yaml's windows."""
    state, commit = manual_freeze(ctx, env)
    return holding(env.name, env.policy.freeze, state, commit, ctx.clock.now())


def unfrozen(ctx: Context, env: Environment, override_reason: str | None) -> Override | None:
    """Nothing when ENV is not frozen; the override when one was asked for with a reason; else
    FrozenError naming what holds ENV (its window or its freeze commit)."""
    if override_reason is not None:
        names.check_text(override_reason, "--reason")
    held = freezes(ctx, env)
    if not held:
        if override_reason is not None:
            ctx.progress(
                f"{env.name} is not frozen: --override-freeze "
                "has nothing to override, and nothing is recorded"
            )
        return None
    if override_reason is None:
        raise FrozenError(
            f"{held[0].line()}; nothing was written (rollbacks and aborts still go through; "
            "--override-freeze --reason TEXT goes through and is recorded)"
        )
    override = Override("; ".join(f.source for f in held), override_reason, actor(ctx))
    ctx.progress(f"{held[0].line()}; overridden by {override.by}: {override_reason}")
    return override


def signed(ctx: Context, env: Environment, images: Iterable[ImageRef]) -> str | None:
    """How the images were verified, when ENV requires signatures (None when it does not);
    SignatureError naming the first image that is unsigned or signed with another key."""
    policy = env.policy
    if not policy.require_signature or policy.public_key is None:
        return None
    key = ctx.config.root / policy.public_key
    for ref in images:
        ctx.progress(f"verifying the signature of {ref} with {policy.public_key}")
        problem = ctx.signer().verify(ref, key)
        if problem:
            raise SignatureError(
                f"{ref}: not signed with {policy.public_key}, "
                f"which {env.name} requires ({problem}); "
                "nothing was written"
            )
    return f"cosign, key {policy.public_key}"
