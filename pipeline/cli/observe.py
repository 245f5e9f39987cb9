"""`ship metrics | dashboard | serve | preview`: how releases go, and what a change would do."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipeline.cli import Output, OutputOpt, app, run

SinceOpt = typer.Option(
    "30d", "--since", help="The window: a span (30d, 12w, 48h) or a date (2026-10-01), up to now."
)


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
    from pipeline.commands import observe

    run(lambda ctx: observe.metrics(ctx, env_name, since), output)


@app.command()
def preview(
    base: str = typer.Option(
        "main", "--base", help="Compare with this branch or commit (its merge base with HEAD)."
    ),
    title: str = typer.Option("ship preview", "--title", help="The Markdown's heading."),
    output: Output = OutputOpt,
) -> None:
    """What this change does to every environment: each overlay rendered at the base and in the
    working tree with kustomize (no cluster), images, config values and secret keys (never values)
    that change, and what each app's next release carries. Markdown for a pull request.

    Example: ship preview --base main >> "$GITHUB_STEP_SUMMARY"
    """
    from pipeline.commands import observe

    run(lambda ctx: observe.preview(ctx, base, title), output)


CommitUrlOpt = typer.Option(
    None,
    "--commit-url",
    help="Commit links, e.g. https://github.com/ORG/REPO/commit/{sha} "
    "(default: from GitHub Actions or origin).",
)


@app.command()
def dashboard(
    out: Path = typer.Option(
        ..., "--out", help="The folder to write the site into (created if needed)."
    ),
    live: bool = typer.Option(
        False, "--live", help="Also ask the cluster for health and live canary weights."
    ),
    since: str = typer.Option(
        "90d", "--since", help="The metrics' window: a span (90d, 12w) or a date."
    ),
    commit_url: Optional[str] = CommitUrlOpt,
    force: bool = typer.Option(
        False, "--force", help="Write into a folder holding files ship did not write."
    ),
    output: Output = OutputOpt,
) -> None:
    """Write a static dashboard from git: environments × apps, canaries, a timeline, DORA charts.
    Works offline; publish it to GitHub Pages or as a workflow artifact.

    Example: ship dashboard --out site --live
    """
    from pipeline.commands import observe

    run(
        lambda ctx: observe.dashboard(
            ctx, out, live=live, since=since, commit_url=commit_url, force=force
        ),
        output,
    )


@app.command()
def serve(
    port: int = typer.Option(
        8765, "--port", min=0, max=65535, help="The port on 127.0.0.1 (0: any free one)."
    ),
    interval: float = typer.Option(
        10.0, "--interval", min=1.0, help="Seconds between rebuilds (and page reloads)."
    ),
    git_only: bool = typer.Option(
        False, "--git-only", help="Do not ask the cluster; show what git knows."
    ),
    since: str = typer.Option(
        "90d", "--since", help="The metrics' window: a span (90d, 12w) or a date."
    ),
    commit_url: Optional[str] = CommitUrlOpt,
    output: Output = OutputOpt,
) -> None:
    """Serve the dashboard live on 127.0.0.1, rebuilt from git and the cluster as they change.

    Example: ship serve --port 8765
    """
    from pipeline.commands import observe

    run(
        lambda ctx: observe.serve(
            ctx, port, interval, live=not git_only, since=since, commit_url=commit_url
        ),
        output,
    )
