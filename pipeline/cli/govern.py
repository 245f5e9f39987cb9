"""`ship freeze | unfreeze | policy`: stop the line, start it again, and say what applies now."""

from __future__ import annotations

from typing import Optional

import typer

from pipeline.cli import DryRunOpt, Output, OutputOpt, app, rehearse, run


@app.command()
def freeze(
    env_name: str = typer.Argument(..., metavar="ENV"),
    reason: str = typer.Option(
        ..., "--reason", help="Why; recorded in git and named when a release is refused."
    ),
    until: Optional[str] = typer.Option(
        None,
        "--until",
        metavar="TIME",
        help="Lift it by itself then: 2026-12-01T08:00+01:00 (no offset: UTC), or 4h, 2d.",
    ),
    dry_run: bool = DryRunOpt,
    output: Output = OutputOpt,
) -> None:
    """Freeze ENV by hand (a commit): ship release and ship promote into it refuse, exit 75.

    Rollbacks and aborts still go through; --override-freeze --reason TEXT goes through, recorded.
    Example: ship freeze prod --reason "payment provider incident" --until 4h
    """
    from pipeline.commands import govern

    def freeze_(ctx, *, rehearsal: bool = False):
        return govern.freeze(ctx, env_name, reason, until)

    rehearse([], freeze_, output) if dry_run else run(freeze_, output)


@app.command()
def unfreeze(
    env_name: str = typer.Argument(..., metavar="ENV"),
    reason: str = typer.Option("", "--reason", help="Why; recorded in the commit."),
    dry_run: bool = DryRunOpt,
    output: Output = OutputOpt,
) -> None:
    """Lift ENV's freeze by hand (a commit); ship.yaml's freeze windows still apply.

    Example: ship unfreeze prod
    """
    from pipeline.commands import govern

    def unfreeze_(ctx, *, rehearsal: bool = False):
        return govern.unfreeze(ctx, env_name, reason)

    rehearse([], unfreeze_, output) if dry_run else run(unfreeze_, output)


@app.command()
def policy(env_name: str = typer.Argument(..., metavar="ENV"), output: Output = OutputOpt) -> None:
    """What applies to a change into ENV now, and why: freezes, signatures, older releases,
    approvals.

    Example: ship policy prod
    """
    from pipeline.commands import govern

    run(lambda ctx: govern.policy(ctx, env_name), output)
