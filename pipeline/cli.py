"""The `ship` command line: parses arguments, calls the pipeline, prints results.

It catches only ShipError (printed as one line, non-zero exit); anything else is a bug and
keeps its traceback. It holds no pipeline logic of its own.
"""

from __future__ import annotations

import typer

from pipeline import __version__

app = typer.Typer(
    name="ship",
    help="GitOps release pipeline: build, release, sync, gate, promote and roll back.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """GitOps release pipeline: build, release, sync, gate, promote and roll back."""


@app.command()
def version() -> None:
    """Print ship's version."""
    typer.echo(f"ship {__version__}")


def main() -> None:
    app()
