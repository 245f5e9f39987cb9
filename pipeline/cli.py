"""The `ship` command line: parses arguments, calls the pipeline, prints what happened.

It catches only ShipError (printed as `ErrorType: message`, one line, non-zero exit); anything
else is a bug and keeps its traceback. Progress goes to stderr, results to stdout, so
`--output json` output can be piped. It holds no pipeline logic of its own.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Any, Callable, Optional

import typer
from rich.console import Console

from pipeline import __version__
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
    err.print(f"[dim]·[/dim] {message}")


def fail(exc: ShipError, code: int | None = None) -> None:
    err.print(f"[bold red]{type(exc).__name__}[/bold red]: {exc}", markup=True)
    raise typer.Exit(code if code is not None else exc.exit_code)


def run(action: Callable[[], Any], error_code: int | None = None) -> Any:
    """Run one command body; a ShipError becomes one line on stderr and a non-zero exit."""
    try:
        return action()
    except ShipError as exc:
        fail(exc, error_code)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def _root() -> None:
    """GitOps release pipeline: build, release, sync, gate, promote and roll back."""


@app.command()
def version() -> None:
    """Print ship's version."""
    typer.echo(f"ship {__version__}")


@app.command()
def build(
    app_name: Optional[str] = typer.Argument(None, metavar="[APP]", help="App from ship.yaml (default: the only one)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Build even with uncommitted changes."),
    output: Output = OutputOpt,
) -> None:
    """Build APP's image, push it and print the digest-pinned reference.

    Example: ship build hellok8s  →  127.0.0.1:15000/hellok8s:3f2a1bc@sha256:…
    """
    from pipeline import build as build_mod, config

    def body():
        cfg = config.load()
        result = build_mod.build(cfg, cfg.app(app_name), allow_dirty=allow_dirty, progress=progress)
        if output is Output.json:
            emit_json({"image": str(result.image), "tag": result.image.tag, "digest": result.image.digest,
                       "commit": result.commit, "built": result.built})
        else:
            typer.echo(str(result.image))

    run(body)


@app.command()
def verify(env_name: str = typer.Argument(..., metavar="ENV"), output: Output = OutputOpt) -> None:
    """Check every pinned tag@digest in ENV's overlay still points where it was pinned.

    Example: ship verify prod
    """
    from pipeline import config, verify as verify_mod

    def body():
        cfg = config.load()
        results = verify_mod.verify(cfg, cfg.env(env_name))
        if output is Output.json:
            emit_json({"environment": env_name, "images": [r.__dict__ for r in results],
                       "ok": all(r.ok for r in results)})
        else:
            for r in results:
                typer.echo(f"{'ok' if r.ok else 'MOVED'}  {r.image}" + ("" if r.ok else f"  ({r.problem})"))
        bad = [r for r in results if not r.ok]
        if bad:
            from pipeline.errors import RegistryError

            raise RegistryError(f"{env_name}: {bad[0].image}: {bad[0].problem}")

    run(body)


@app.command()
def release(
    env_name: str = typer.Argument(..., metavar="ENV"),
    app_name: Optional[str] = typer.Argument(None, metavar="[APP]"),
    image: Optional[str] = typer.Option(None, "--image", help="A pinned image from `ship build` (default: build HEAD)."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Only write, commit and push the overlay."),
    no_push: bool = typer.Option(False, "--no-push", help="Commit locally without pushing."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Release even with uncommitted changes."),
    output: Output = OutputOpt,
) -> None:
    """Write a pinned release of APP into ENV's overlay, commit and push it (then sync and gate).

    Example: ship release dev hellok8s --no-sync
    """
    from pipeline import commands

    def body():
        result = commands.release(env_name, app_name, image=image, sync=not no_sync, push=not no_push,
                                  allow_dirty=allow_dirty, progress=progress)
        rel = result.release
        if output is Output.json:
            emit_json({"release": rel.record(), "changed": result.changed,
                       "commit": result.commit.sha if result.commit else None})
        elif result.changed:
            typer.echo(f"released {rel.app} {rel.id} to {rel.environment}: {rel.image} (commit {result.commit.short})")
        else:
            typer.echo(f"{rel.app} {rel.id} is already released to {rel.environment}; nothing to do")

    run(body)


def main() -> None:
    app()
