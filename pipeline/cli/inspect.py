"""`ship diff | status | history | verify | summary | rbac | init | version`: commands that look,
and the one that scaffolds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pipeline import __version__
from pipeline.cli import Output, OutputOpt, app, fail, run, show
from pipeline.commands import inspect
from pipeline.errors import ShipError


@app.command()
def version() -> None:
    """Print ship's version."""
    typer.echo(f"ship {__version__}")


@app.command()
def diff(env_name: str = typer.Argument(..., metavar="ENV"),
         app_name: Optional[str] = typer.Argument(None, metavar="[APP]", help="Only this app's objects."),
         output: Output = OutputOpt) -> None:
    """Show what `ship sync ENV` would change (exit 0 in sync, 1 drift, 2 error).

    Example: ship diff prod
    """
    run(lambda ctx: inspect.diff(ctx, env_name, app_name), output, error_code=2)


@app.command()
def status(env_name: Optional[str] = typer.Argument(None, metavar="[ENV]"), output: Output = OutputOpt) -> None:
    """What runs where: release, image, config, health, drift and canary per environment.

    Example: ship status
    """
    run(lambda ctx: inspect.status(ctx, env_name), output)


@app.command()
def history(env_name: str = typer.Argument(..., metavar="ENV"),
            app_name: Optional[str] = typer.Argument(None, metavar="[APP]", help="Only this app's releases."),
            output: Output = OutputOpt) -> None:
    """ENV's ledger: every release, its image, config, outcome and reason, newest first.

    Example: ship history prod
    """
    run(lambda ctx: inspect.history(ctx, env_name, app_name), output)


@app.command()
def verify(env_name: str = typer.Argument(..., metavar="ENV"), output: Output = OutputOpt) -> None:
    """Check every pinned tag@digest in ENV's overlay still points where it was pinned (and is signed).

    Signatures are checked with ENV's policy.public_key, when it names one.

    Example: ship verify prod
    """
    run(lambda ctx: inspect.verify(ctx, env_name), output)


@app.command()
def rbac(
    env_name: str = typer.Argument(..., metavar="ENV"),
    service_account: str = typer.Option("ship-deployer", "--service-account", help="The deployer's ServiceAccount."),
    sa_namespace: Optional[str] = typer.Option(None, "--service-account-namespace",
                                               help="Where the ServiceAccount lives (default: ENV's namespace)."),
) -> None:
    """Print the least-privilege ServiceAccount, Role and RoleBinding for deploying to ENV, and the
    admission policies that refuse what RBAC cannot (token Secrets, externalIPs, privileged or
    host-sharing pods, hostPath, other ServiceAccounts).

    Example: ship rbac prod | kubectl apply -f -
    """
    run(lambda ctx: inspect.rbac(ctx, env_name, service_account, sa_namespace))


@app.command()
def summary(title: str = typer.Option("ship", "--title", help="The summary's heading.")) -> None:
    """Markdown for a GitHub job summary: what runs where, last outcomes, a Mermaid diagram.

    Example: ship summary >> "$GITHUB_STEP_SUMMARY"
    """
    run(lambda ctx: inspect.summary(ctx, title))


@app.command()
def init(
    app_name: str = typer.Argument(..., metavar="APP", help="Your app's name (a DNS label)."),
    path: Optional[str] = typer.Option(None, "--path", help="The app's folder (default: apps/APP)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="The port your app listens on (for a new base)."),
    registry: str = typer.Option("127.0.0.1:15000", "--registry", help="Where images are pushed."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Scaffold ship into this repository: ship.yaml, overlays, a kustomize base, RBAC, workflows.

    Example: ship init shop --port 8080
    """
    try:
        result = inspect.init(Path.cwd(), app_name, path, port, registry, force)
    except ShipError as exc:
        fail(exc)
    show(result, Output.text)
