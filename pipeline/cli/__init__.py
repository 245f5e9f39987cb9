"""The `ship` command line: parses arguments, calls the commands layer, prints the result.

    __init__.py  the app, global and shared options, exit codes, how results and errors print
    helptext.py  ship's own --help layout (80 columns, independent of typer's version)
    deploy.py    build, release, sync, promote, abort, rollback, retire
    inspect.py   diff, status, history, verify, summary, rbac, init, version, completion
    govern.py    freeze, unfreeze, policy
    observe.py   metrics, dashboard, serve, preview

Every failure a user can cause or meet ends in one line on stderr and a documented exit code
(EXIT_CODES; docs/cli.md has the same table, a test holds them equal): a ShipError prints
`ErrorType: message`; an OSError (a disk full, a folder that cannot be written) names the path;
Ctrl-C exits 130 after the command put back what it was writing. Anything else is a bug and
keeps its traceback. Progress goes to stderr, results to stdout, so `-o json` can be piped.

Start-up is kept short: this package imports typer and nothing of ship's flows; each command
imports its commands module when it runs, so `ship --help` never loads httpx, git or kubernetes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NoReturn, Optional

import typer
import typer.core

from pipeline import __version__
from pipeline.cli import helptext
from pipeline.errors import ShipError

if TYPE_CHECKING:
    from pipeline.context import Context

# The exit codes, as docs/cli.md lists them (tests/cli/test_conventions.py holds the two equal).
EXIT_CODES = {
    0: "ok",
    1: "failed: a one-line reason on stderr (a refused "
    "request, a failed gate, an unreachable cluster)",
    2: "usage: an unknown command or option, or a value out of range",
    3: "drift: `ship diff` found a difference between git and the cluster",
    75: "frozen: the environment is frozen; try again later or --override-freeze --reason",
    130: "interrupted (Ctrl-C): what was being written is put back, nothing is half-written",
}
DRIFT, INTERRUPTED = 3, 130


class _Command(typer.core.TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(helptext.command_help(ctx, self))


class _Group(typer.core.TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(helptext.command_help(ctx, self))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # in the order they are registered, not sorted


app = typer.Typer(
    name="ship",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": helptext.WIDTH},
)


class Output(str, Enum):
    text = "text"
    json = "json"
    yaml = "yaml"


OutputOpt = typer.Option(
    Output.text, "--output", "-o", help="text for people; json or yaml for scripts."
)
DryRunOpt = typer.Option(
    False,
    "--dry-run",
    help="Print the commit that would be written and what a sync would "
    "apply; write, push and apply nothing.",
)
NoWaitOpt = typer.Option(
    False, "--no-wait", help="Fail at once if another run holds the environment's lock."
)
LockTimeoutOpt = typer.Option(
    120.0,
    "--lock-timeout",
    min=0,
    metavar="SECONDS",
    help="How long to wait for the environment's lock.",
)


@dataclass
class Globals:
    """The options given before the command (ship --kubeconfig PATH --context NAME COMMAND)."""

    kubeconfig: str | None = None
    context: str | None = None


GLOBALS = Globals()


def _tty() -> bool:
    return sys.stderr.isatty()


def progress(message: str) -> None:
    dot = "\033[2m·\033[0m" if _tty() else "·"
    sys.stderr.write(f"{dot} {message}\n")
    sys.stderr.flush()


def error_line(kind: str, message: str) -> None:
    head = f"\033[1;31m{kind}\033[0m" if _tty() else kind
    sys.stderr.write(f"{head}: {' '.join(message.split())}\n")
    sys.stderr.flush()


def fail(exc: ShipError, code: int | None = None) -> NoReturn:
    error_line(type(exc).__name__, str(exc))
    raise typer.Exit(code if code is not None else exc.exit_code)


def fail_os(exc: OSError) -> NoReturn:
    """A file or device the command needed failed: one line naming the path (a disk full, a
    folder that is a file); not a bug of ship's, so no traceback."""
    where = f": {exc.filename}" if exc.filename else ""
    error_line(type(exc).__name__, f"{exc.strerror or exc}{where}")
    raise typer.Exit(1)


def interrupted() -> NoReturn:
    error_line("Interrupted", "stopped by Ctrl-C; nothing was left half-written")
    raise typer.Exit(INTERRUPTED)


def to_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(
        json.loads(json.dumps(data, default=str)), sort_keys=False, allow_unicode=True
    )


def show(result: Any, output: Output) -> None:
    """Print a result as JSON, YAML or its text; then end with its failure or exit code, if any."""
    if output is Output.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    elif output is Output.yaml:
        sys.stdout.write(to_yaml(result.to_json()))
    else:
        text = result.text()
        if text:
            typer.echo(text)
    for note in getattr(result, "notes", lambda: [])():
        sys.stderr.write(note + "\n")
    failure = getattr(result, "failure", None)
    if failure is not None:
        fail(failure)
    code = getattr(result, "exit_code", 0)
    if code:
        raise typer.Exit(code)


def guarded(call: Callable[[], Any]) -> Any:
    """`call()`, with every failure a user can meet turned into one line and its exit code."""
    try:
        return call()
    except ShipError as exc:
        fail(exc)
    except OSError as exc:
        fail_os(exc)
    except KeyboardInterrupt:
        interrupted()


def run(
    command: Callable[[Context], Any],
    output: Output = Output.text,
    *,
    lock_wait: float | None = None,
) -> None:
    """Open a context, run one command in it, show its result. `lock_wait`: seconds to wait for
    an environment's lock (0: fail at once), for commands that take it."""

    def call() -> Any:
        from pipeline.commands.context import open_context

        with open_context(
            progress,
            kubeconfig=GLOBALS.kubeconfig,
            kube_context=GLOBALS.context,
            lock_wait=lock_wait,
        ) as ctx:
            return command(ctx)

    show(guarded(call), output)


def rehearse(
    env_names: list[str], command: Callable[..., Any], output: Output = Output.text
) -> None:
    """`--dry-run`: run `command(ctx, rehearsal=True)` on a throwaway clone of the repository,
    then show the commits it wrote there and what a sync of each of `env_names` would apply."""

    def call() -> Any:
        from pipeline.commands import dryrun
        from pipeline.commands.context import open_context

        with open_context(
            progress, kubeconfig=GLOBALS.kubeconfig, kube_context=GLOBALS.context
        ) as ctx:
            return dryrun.rehearse(ctx, env_names, lambda clone: command(clone, rehearsal=True))

    show(guarded(call), output)


def lock_wait(lock_timeout: float, *, no_wait: bool) -> float:
    return 0.0 if no_wait else lock_timeout


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ship {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print ship's version and exit."
    ),
    kubeconfig: Optional[str] = typer.Option(
        None,
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file(s), as KUBECONFIG (default: $KUBECONFIG, then ~/.kube/config).",
    ),
    context: Optional[str] = typer.Option(
        None,
        "--context",
        metavar="NAME",
        help="kube context for environments whose ship.yaml entry names none "
        "(default: the kubeconfig's current context).",
    ),
) -> None:
    """GitOps release pipeline: build, release, sync, gate, promote and roll back.

    Exit codes: 0 ok, 1 failed, 2 usage, 3 drift (ship diff), 75 frozen, 130 interrupted.
    """
    GLOBALS.kubeconfig, GLOBALS.context = kubeconfig, context


def main() -> None:
    if "_SHIP_COMPLETE" in os.environ:  # the shell asks for completions: typer's classes answer
        # the format `ship completion SHELL` scripts read
        from typer._completion_classes import completion_init

        completion_init()
    try:
        # also under `python -m pipeline`: usage lines and completion say ship
        app(prog_name="ship")
    except KeyboardInterrupt:  # before a command ran (while ship was still starting)
        sys.stderr.write("Interrupted: stopped by Ctrl-C\n")
        sys.exit(INTERRUPTED)


from pipeline.cli import deploy, govern, inspect, observe  # noqa: E402,F401 - registers the commands on `app`

# isort: split
from pipeline.cli import access  # noqa: E402,F401 - ship kubeconfig, listed after the others

for _info in app.registered_commands:  # every command prints ship's own help
    if _info.cls in (None, typer.core.TyperCommand):
        _info.cls = _Command
