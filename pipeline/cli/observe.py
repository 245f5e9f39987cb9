"""`ship metrics | dashboard | serve | preview`: how releases go, and what a change would do."""

from __future__ import annotations

from typing import Optional

import typer

from pipeline.cli import Output, OutputOpt, app, run
from pipeline.commands import observe

SinceOpt = typer.Option("30d", "--since", help="The window: a span (30d, 12w, 48h) or a date (2026-10-01), up to now.")


@app.command()
def metrics(
    env_name: Optional[str] = typer.Argument(None, metavar="[ENV]"),
    since: str = SinceOpt,
    output: Output = OutputOpt,
) -> None:
    """DORA's four keys from git, per environment and app: deployment frequency, lead time
    (median, p90), change failure rate, time to restore.

    Example: ship metrics prod --since 30d
    """
    run(lambda ctx: observe.metrics(ctx, env_name, since), output)


@app.command()
def preview(
    base: str = typer.Option("main", "--base", help="Compare with this branch or commit (its merge base with HEAD)."),
    title: str = typer.Option("ship preview", "--title", help="The Markdown's heading."),
    output: Output = OutputOpt,
) -> None:
    """What this change does to every environment: each overlay rendered at the base and in the
    working tree with kustomize (no cluster), images, config values and secret keys (never values)
    that change, and what each app's next release carries. Markdown for a pull request.

    Example: ship preview --base main >> "$GITHUB_STEP_SUMMARY"
    """
    run(lambda ctx: observe.preview(ctx, base, title), output)
