"""The `ship` command line: parses arguments, calls the commands layer, prints the result.

    __init__.py  the app, output options, and how results and errors are printed
    deploy.py    build, release, sync, promote, abort, rollback
    inspect.py   diff, status, history, verify, summary, rbac, init, version
    govern.py    freeze, unfreeze, policy
    observe.py   metrics, dashboard, serve, preview

It catches only ShipError (printed as `ErrorType: message`, one line, non-zero exit); anything
else is a bug and keeps its traceback. Progress goes to stderr, results to stdout, so
`--output json` output can be piped. Every command opens a context, calls one function of
pipeline.commands and prints what it returns: no pipeline logic lives here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.commands.context import open_context
from pipeline.context import Context
from pipeline.errors import ShipError

app = typer.Typer(
    name="ship",
    help="GitOps release pipeline: build, release, sync, gate, promote and roll back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Output(str, Enum):
    text = "text"
    json = "json"


OutputOpt = typer.Option(Output.text, "--output", "-o", help="text for people, json for scripts.")


def progress(message: str) -> None:
    err.print(f"[dim]·[/dim] {escape(message)}")


def fail(exc: ShipError, code: int | None = None) -> NoReturn:
    err.print(f"[bold red]{type(exc).__name__}[/bold red]: {escape(str(exc))}", markup=True)
    raise typer.Exit(code if code is not None else exc.exit_code)


def show(result: Any, output: Output) -> None:
    """Print a result as JSON or as its text; then end with its failure or exit code, if any."""
    if output is Output.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    else:
        text = result.text()
        if text:
            typer.echo(text)
    for note in getattr(result, "notes", lambda: [])():
        err.print(escape(note))
    failure = getattr(result, "failure", None)
    if failure is not None:
        fail(failure)
    code = getattr(result, "exit_code", 0)
    if code:
        raise typer.Exit(code)


def run(command: Callable[[Context], Any], output: Output = Output.text, error_code: int | None = None) -> None:
    """Open a context, run one command in it, show its result; a ShipError is one line and a
    non-zero exit (`error_code` when the command reserves 1 for a finding, as diff does)."""
    try:
        with open_context(progress) as ctx:
            result = command(ctx)
    except ShipError as exc:
        fail(exc, error_code)
    show(result, output)


@app.callback()
def _root() -> None:
    """GitOps release pipeline: build, release, sync, gate, promote and roll back."""


def main() -> None:
    app()


from pipeline.cli import deploy, govern, inspect, observe  # noqa: E402,F401 - registers the commands on `app`
from pipeline.cli import access  # noqa: E402,F401 - ship kubeconfig, listed after the others
