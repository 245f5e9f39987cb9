"""`ship build | release | sync | promote | abort | rollback | retire`: the commands that change
something."""

from __future__ import annotations

from typing import Optional

import typer

from pipeline.cli import (
    DryRunOpt,
    LockTimeoutOpt,
    NoWaitOpt,
    Output,
    OutputOpt,
    app,
    lock_wait,
    rehearse,
    run,
)


@app.command()
def build(
    app_names: Optional[list[str]] = typer.Argument(
        None, metavar="APP", help="Apps from ship.yaml (default: every app)."
    ),
    changed: bool = typer.Option(
        False,
        "--changed",
        help="Only the apps whose path changed since their release in the first environment.",
    ),
    list_only: bool = typer.Option(
        False, "--list", help='Print the apps as a CI matrix, {"app": [...]}, and build none.'
    ),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Build even with uncommitted changes."
    ),
    key: Optional[str] = typer.Option(
        None,
        "--key",
        metavar="PATH",
        help="cosign private key to sign the digest with (default: $SHIP_COSIGN_KEY).",
    ),
    output: Output = OutputOpt,
) -> None:
    """Build each APP's image, push it, sign it (with a key) and print the digest-pinned reference.

    One app: the reference alone; several (or --changed): a line `APP IMAGE` each.
    Example: ship build hellok8s  →  127.0.0.1:15000/hellok8s:3f2a1bc@sha256:…
    Example: ship build --changed --list  →  {"app": ["hellok8s"]}
    """
    from pipeline.commands import deploy

    run(
        lambda ctx: deploy.build(
            ctx, app_names, allow_dirty=allow_dirty, key=key, changed=changed, list_only=list_only
        ),
        output,
    )


OverrideFreezeOpt = typer.Option(
    False, "--override-freeze", help="Go through a freeze; needs --reason (recorded)."
)
ReasonOpt = typer.Option(
    None, "--reason", help="Why the freeze is overridden; recorded in git and the ledger."
)


def override_reason(reason: Optional[str], *, override_freeze: bool) -> Optional[str]:
    """The reason an override goes through with; an override needs one."""
    if override_freeze and not (reason or "").strip():
        raise typer.BadParameter(
            "--override-freeze needs --reason TEXT: the reason is recorded in git",
            param_hint="--reason",
        )
    return reason.strip() if override_freeze and reason else None


@app.command()
def release(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_names: Optional[list[str]] = typer.Argument(
        None, metavar="[APP]...", help="Apps to release (default: the only app)."
    ),
    image: Optional[list[str]] = typer.Option(
        None,
        "--image",
        help="A pinned image from `ship build` (default: build "
        "HEAD); with several apps, APP=IMAGE, once per app.",
    ),
    no_sync: bool = typer.Option(
        False, "--no-sync", help="Only write, commit and push the overlay."
    ),
    no_push: bool = typer.Option(False, "--no-push", help="Commit locally without pushing."),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Release even with uncommitted changes."
    ),
    allow_rejected: bool = typer.Option(
        False, "--allow-rejected", help="Release a release that was rejected before."
    ),
    override_freeze: bool = OverrideFreezeOpt,
    reason: Optional[str] = ReasonOpt,
    allow_older: bool = typer.Option(
        False,
        "--allow-older",
        help="Release an image built from a commit older than ENV's current release.",
    ),
    dry_run: bool = DryRunOpt,
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    output: Output = OutputOpt,
) -> None:
    """Write a pinned release of each APP into ENV's overlay in one commit, push it (then sync, and
    gate each app, rolling back on its own any that fails).

    Refused, before anything is written, when ENV is frozen (exit 75), or requires signed images
    and one is not.
    Example: ship release dev hellok8s --no-sync
    Example: ship release dev web api
    """
    from pipeline.commands import deploy

    why = override_reason(reason, override_freeze=override_freeze)
    if dry_run and not image:
        raise typer.BadParameter(
            "a dry run builds nothing: give the image with --image", param_hint="--dry-run"
        )

    def release_(ctx, *, rehearsal: bool = False):
        options = deploy.ReleaseOptions(
            images=tuple(image or []),
            sync=not (no_sync or rehearsal),
            push=not (no_push or rehearsal),
            allow_dirty=allow_dirty,
            allow_rejected=allow_rejected,
            override_freeze=why,
            allow_older=allow_older,
        )
        return deploy.release(ctx, env_name, app_names or [], options)

    wait = lock_wait(lock_timeout, no_wait=no_wait)
    rehearse([env_name], release_, output) if dry_run else run(release_, output, lock_wait=wait)


@app.command()
def sync(
    env_name: str = typer.Argument(..., metavar="ENV"),
    prune: bool = typer.Option(
        True, "--prune/--no-prune", help="Delete ship's objects that git no longer renders."
    ),
    adopt: bool = typer.Option(
        False, "--adopt", help="Take over same-named objects ship does not manage yet."
    ),
    force_conflicts: bool = typer.Option(
        False, "--force-conflicts", help="Take fields other field managers own."
    ),
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    no_gate: bool = typer.Option(
        False, "--no-gate", help="Apply and prune only; do not wait on the rollout."
    ),
    output: Output = OutputOpt,
) -> None:
    """Make ENV's namespace match git: server-side apply in stages, then prune, then gate.

    Example: ship sync dev  →  deployment.apps/hellok8s configured
    """
    from pipeline.commands import deploy
    from pipeline.kube.apply import SyncOptions

    options = SyncOptions(prune=prune, adopt=adopt, force_conflicts=force_conflicts)
    wait = lock_wait(lock_timeout, no_wait=no_wait)
    run(lambda ctx: deploy.sync(ctx, env_name, options, gate=not no_gate), output, lock_wait=wait)


@app.command()
def promote(
    from_env: str = typer.Argument(..., metavar="FROM"),
    to_env: str = typer.Argument(..., metavar="TO"),
    app_names: Optional[list[str]] = typer.Argument(
        None,
        metavar="[APP]...",
        help="Apps to promote (default: every "
        "app whose healthy release in FROM differs from TO's).",
    ),
    independent: bool = typer.Option(
        False,
        "--independent",
        help="Promote, gate and roll back each app on its own, not as one unit.",
    ),
    canary: Optional[int] = typer.Option(
        None,
        "--canary",
        metavar="PERCENT",
        min=1,
        max=100,
        help="Run a one-step canary at this share of traffic (1-100) first.",
    ),
    no_canary: bool = typer.Option(
        False, "--no-canary", help="Skip TO's configured canary; promote directly."
    ),
    hold: bool = typer.Option(
        False, "--hold", help="Stop after the canary's analysis for a person to decide."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a held or interrupted canary in TO."
    ),
    no_sync: bool = typer.Option(
        False, "--no-sync", help="Only write, commit and push TO's overlay (no canary)."
    ),
    override_freeze: bool = OverrideFreezeOpt,
    reason: Optional[str] = ReasonOpt,
    dry_run: bool = DryRunOpt,
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    output: Output = OutputOpt,
) -> None:
    """Promote the releases healthy in FROM to TO (same image digests, TO's own config), as one
    unit: one commit, one sync, one gate; if any app fails, every app of the unit goes back.

    Refused, before anything is written, when TO is frozen (exit 75), when an app is unhealthy in
    FROM, or when TO requires signed images and one is not.
    Example: ship promote dev uat
    Example: ship promote uat prod web api --canary 10
    """
    from pipeline.commands import deploy

    why = override_reason(reason, override_freeze=override_freeze)

    def promote_(ctx, *, rehearsal: bool = False):
        options = deploy.PromoteOptions(
            independent=independent,
            sync=not (no_sync or rehearsal),
            push=not rehearsal,
            canary_weight=canary,
            no_canary=no_canary,
            hold=hold,
            resume=resume,
            override_freeze=why,
        )
        return deploy.promote(ctx, from_env, to_env, app_names or [], options)

    rehearse([to_env], promote_, output) if dry_run else run(
        promote_, output, lock_wait=lock_wait(lock_timeout, no_wait=no_wait)
    )


@app.command()
def abort(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_name: Optional[str] = typer.Argument(
        None, metavar="[APP]", help="Only this app's canary (default: all)."
    ),
    reason: str = typer.Option(
        "aborted by hand", "--reason", help="Why; recorded in git and the ledger."
    ),
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    output: Output = OutputOpt,
) -> None:
    """Abort ENV's canaries: weight to 0, canaries removed, stables untouched, the releases
    rejected.

    Example: ship abort prod --reason "latency looks off"
    Example: ship abort prod web
    """
    from pipeline.commands import deploy

    run(
        lambda ctx: deploy.abort(ctx, env_name, reason, app_name),
        output,
        lock_wait=lock_wait(lock_timeout, no_wait=no_wait),
    )


@app.command()
def rollback(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_name: Optional[str] = typer.Argument(
        None, metavar="[APP]", help="The app to roll back (default: the only one)."
    ),
    to: Optional[str] = typer.Option(
        None, "--to", help="Release to return to, ID or APP@ID (default: the previous healthy one)."
    ),
    every: bool = typer.Option(
        False, "--all", help="Every app of ENV back to its previous healthy release, in one commit."
    ),
    reason: str = typer.Option(
        "manual rollback", "--reason", help="Why; recorded in git and the ledger."
    ),
    dry_run: bool = DryRunOpt,
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    output: Output = OutputOpt,
) -> None:
    """Put an app of ENV back on an earlier release (re-applied, gated, recorded in git).

    Example: ship rollback prod hellok8s --reason "checkout errors"
    Example: ship rollback prod --all
    """
    from pipeline.commands import deploy

    def rollback_(ctx, *, rehearsal: bool = False):
        return deploy.rollback(ctx, env_name, app_name, to, reason, every=every)

    wait = lock_wait(lock_timeout, no_wait=no_wait)
    rehearse([env_name], rollback_, output) if dry_run else run(rollback_, output, lock_wait=wait)


@app.command()
def retire(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_name: str = typer.Argument(..., metavar="APP"),
    reason: str = typer.Option("retired by hand", "--reason", help="Why; recorded in git."),
    no_sync: bool = typer.Option(
        False, "--no-sync", help="Only commit; the next sync removes the objects."
    ),
    dry_run: bool = DryRunOpt,
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    output: Output = OutputOpt,
) -> None:
    """Take APP out of ENV: its folder leaves the overlay in one commit, and a sync removes its
    objects, no other app's. Its ledger stays for `ship history`.

    Example: ship retire dev shop --reason "merged into web"
    """
    from pipeline.commands import deploy

    def retire_(ctx, *, rehearsal: bool = False):
        return deploy.retire(ctx, env_name, app_name, reason, sync=not (no_sync or rehearsal))

    rehearse([env_name], retire_, output) if dry_run else run(
        retire_, output, lock_wait=lock_wait(lock_timeout, no_wait=no_wait)
    )
