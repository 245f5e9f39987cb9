"""`ship kubeconfig ENV`: the deployer's kubeconfig for CI (commands/access.py)."""

from __future__ import annotations

import typer

from pipeline.cli import Output, OutputOpt, app, run


def _seconds(text: str) -> int:
    from pipeline.config.checks import parse_duration

    try:
        seconds = int(parse_duration(text))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: expected a duration such as 8760h or 30m") from exc
    if seconds < 600:
        raise typer.BadParameter(f"{text!r}: Kubernetes mints tokens for 10m at least")
    return seconds


@app.command()
def kubeconfig(
    env_name: str = typer.Argument(..., metavar="ENV"),
    service_account: str = typer.Option(
        "ship-deployer", "--service-account", help="The deployer's ServiceAccount."
    ),
    duration: str = typer.Option(
        "8760h", "--duration", help="How long the token lives (the API server may cap it)."
    ),
    output: Output = OutputOpt,
) -> None:
    """Mint a kubeconfig for ENV's deployer (a TokenRequest), for the KUBECONFIG secret of CI.

    Example: ship kubeconfig prod | gh secret set KUBECONFIG --env prod
    """
    from pipeline.commands import access

    seconds = _seconds(duration)
    run(lambda ctx: access.kubeconfig(ctx, env_name, service_account, seconds), output)
