"""`ship diff | status | history | verify | summary | rbac | init | version | completion`: commands
that look, the one that scaffolds, and the shell's completion script."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from pipeline import __version__
from pipeline.cli import Output, OutputOpt, app, guarded, run, show


@app.command()
def version() -> None:
    """Print ship's version."""
    typer.echo(f"ship {__version__}")


@app.command()
def diff(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_name: Optional[str] = typer.Argument(
        None, metavar="[APP]", help="Only this app's objects."
    ),
    output: Output = OutputOpt,
) -> None:
    """Show what `ship sync ENV` would change (exit 0 in sync, 3 drift, 1 error).

    Example: ship diff prod
    """
    from pipeline.commands import inspect

    run(lambda ctx: inspect.diff(ctx, env_name, app_name), output)


@app.command()
def status(
    env_name: Optional[str] = typer.Argument(None, metavar="[ENV]"), output: Output = OutputOpt
) -> None:
    """What runs where: release, image, config, health, drift and canary per environment.

    Example: ship status
    """
    from pipeline.commands import inspect

    run(lambda ctx: inspect.status(ctx, env_name), output)


@app.command()
def history(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_name: Optional[str] = typer.Argument(
        None, metavar="[APP]", help="Only this app's releases."
    ),
    output: Output = OutputOpt,
) -> None:
    """ENV's ledger: every release, its image, config, outcome and reason, newest first.

    Example: ship history prod
    """
    from pipeline.commands import inspect

    run(lambda ctx: inspect.history(ctx, env_name, app_name), output)


@app.command()
def verify(env_name: str = typer.Argument(..., metavar="ENV"), output: Output = OutputOpt) -> None:
    """Check every pinned tag@digest in ENV's overlay still points where it was pinned (and is
    signed).

    Signatures are checked with ENV's policy.public_key, when it names one.

    Example: ship verify prod
    """
    from pipeline.commands import inspect

    run(lambda ctx: inspect.verify(ctx, env_name), output)


@app.command()
def rbac(
    env_name: str = typer.Argument(..., metavar="ENV"),
    service_account: str = typer.Option(
        "ship-deployer", "--service-account", help="The deployer's ServiceAccount."
    ),
    sa_namespace: Optional[str] = typer.Option(
        None,
        "--service-account-namespace",
        help="Where the ServiceAccount lives (default: ENV's namespace).",
    ),
    output: Output = OutputOpt,
) -> None:
    """Print the least-privilege ServiceAccount, Role and RoleBinding for deploying to ENV.

    Also the Namespace's Pod Security labels and the admission policies that refuse what RBAC
    cannot (token Secrets, externalIPs, privileged or host-sharing pods, hostPath, other
    ServiceAccounts).

    Example: ship rbac prod | kubectl apply -f -
    """
    from pipeline.commands import inspect

    run(lambda ctx: inspect.rbac(ctx, env_name, service_account, sa_namespace), output)


@app.command()
def summary(
    title: str = typer.Option("ship", "--title", help="The summary's heading."),
    output: Output = OutputOpt,
) -> None:
    """Markdown for a GitHub job summary: what runs where, last outcomes, a Mermaid diagram.

    Example: ship summary >> "$GITHUB_STEP_SUMMARY"
    """
    from pipeline.commands import inspect

    run(lambda ctx: inspect.summary(ctx, title), output)


@app.command()
def init(
    app_name: str = typer.Argument(..., metavar="APP", help="Your app's name (a DNS label)."),
    path: Optional[str] = typer.Option(
        None, "--path", help="The app's folder (default: apps/APP)."
    ),
    port: int = typer.Option(
        8080, "--port", min=1, max=65535, help="The port your app listens on (for a new base)."
    ),
    registry: Optional[str] = typer.Option(
        None,
        "--registry",
        help="Where images are pushed (default: ghcr.io/OWNER of a GitHub repository).",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
    chart: Optional[str] = typer.Option(
        None,
        "--chart",
        metavar="PATH|oci://HOST/PATH/NAME:VERSION",
        help="The app's base is this Helm chart (a folder with Chart.yaml, or a chart in "
        "an OCI registry, pinned at VERSION), used as it is; writes values files "
        "instead of a kustomize base.",
    ),
    upgrade: bool = typer.Option(
        False,
        "--upgrade",
        help="Only move the workflows to this ship's action, keeping your edits.",
    ),
    output: Output = OutputOpt,
) -> None:
    """Scaffold ship into this repository: ship.yaml, overlays, a kustomize base, RBAC, workflows.

    Example: ship init shop --port 8080
    Example: ship init podinfo --chart charts/podinfo
    Example: ship init podinfo --chart oci://ghcr.io/org/charts/podinfo:6.9.2
    """
    from pipeline.commands import inspect
    from pipeline.scaffold import InitOptions

    options = InitOptions(path=path, port=port, registry=registry, force=force, chart=chart)
    show(
        guarded(
            lambda: (
                inspect.upgrade(Path.cwd())
                if upgrade
                else inspect.init(Path.cwd(), app_name, options)
            )
        ),
        output,
    )


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(
    shell: Shell = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
) -> None:
    """Print the shell's completion script for ship: commands, options, and values where known.

    Example: ship completion bash > ~/.bash_completion.d/ship
    Example: ship completion zsh > "${fpath[1]}/_ship"
    Example: ship completion fish > ~/.config/fish/completions/ship.fish
    """
    from typer._completion_shared import get_completion_script

    typer.echo(
        get_completion_script(prog_name="ship", complete_var="_SHIP_COMPLETE", shell=shell.value)
    )
