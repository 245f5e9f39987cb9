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
from rich.markup import escape

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
    err.print(f"[dim]·[/dim] {escape(message)}")


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
    from pipeline import config
    from pipeline.image import build as build_mod

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
    from pipeline import config
    from pipeline.image import verify as verify_mod

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
    allow_rejected: bool = typer.Option(False, "--allow-rejected", help="Release a release that was rejected before."),
    output: Output = OutputOpt,
) -> None:
    """Write a pinned release of APP into ENV's overlay, commit and push it (then sync and gate).

    Example: ship release dev hellok8s --no-sync
    """
    from pipeline import commands

    def body():
        result = commands.release(env_name, app_name, image=image, sync=not no_sync, push=not no_push,
                                  allow_dirty=allow_dirty, allow_rejected=allow_rejected, progress=progress)
        rel = result.release
        changes = result.sync.changes if result.sync else []
        if output is Output.json:
            emit_json({"release": rel.record(), "changed": result.changed,
                       "commit": result.commit.sha if result.commit else None,
                       "changes": [c.to_json() for c in changes],
                       "gate": result.gate.to_json() if result.gate else None})
            return
        if result.changed:
            typer.echo(f"released {rel.app} {rel.id} to {rel.environment}: {rel.image} (commit {result.commit.short})")
        else:
            typer.echo(f"{rel.app} {rel.id} is already released to {rel.environment}; nothing to do")
        for change in changes:
            typer.echo(str(change))
        if result.gate:
            typer.echo(str(result.gate))

    run(body)


def _sync_options(prune: bool, adopt: bool, force_conflicts: bool):
    from pipeline.kube.apply import SyncOptions

    return SyncOptions(prune=prune, adopt=adopt, force_conflicts=force_conflicts)


def _lock_options(no_wait: bool, lock_timeout: float):
    from pipeline.kube.lock import LockOptions

    return LockOptions(wait=0 if no_wait else lock_timeout)


def print_changes(result, output: Output, extra: dict | None = None) -> None:
    gate = getattr(result, "gate", None)
    if output is Output.json:
        emit_json({**(extra or {}), "changes": [c.to_json() for c in result.changes], "requests": result.requests,
                   "gate": gate.to_json() if gate else None})
    else:
        for change in result.changes:
            typer.echo(str(change))
        if gate:
            typer.echo(str(gate))


PruneOpt = typer.Option(True, "--prune/--no-prune", help="Delete ship's objects that git no longer renders.")
AdoptOpt = typer.Option(False, "--adopt", help="Take over same-named objects ship does not manage yet.")
ForceOpt = typer.Option(False, "--force-conflicts", help="Take fields other field managers own.")
NoWaitOpt = typer.Option(False, "--no-wait", help="Fail at once if another run holds the environment's lock.")
LockTimeoutOpt = typer.Option(120.0, "--lock-timeout", help="Seconds to wait for the environment's lock.")


@app.command()
def sync(
    env_name: str = typer.Argument(..., metavar="ENV"),
    prune: bool = PruneOpt,
    adopt: bool = AdoptOpt,
    force_conflicts: bool = ForceOpt,
    no_wait: bool = NoWaitOpt,
    lock_timeout: float = LockTimeoutOpt,
    no_gate: bool = typer.Option(False, "--no-gate", help="Apply and prune only; do not wait on the rollout."),
    output: Output = OutputOpt,
) -> None:
    """Make ENV's namespace match git: server-side apply in stages, then prune, then gate.

    Example: ship sync dev  →  deployment.apps/hellok8s configured
    """
    from pipeline import commands

    def body():
        result = commands.sync(env_name, _sync_options(prune, adopt, force_conflicts),
                               _lock_options(no_wait, lock_timeout), progress=progress, gate=not no_gate)
        print_changes(result, output, {"environment": env_name})

    run(body)


@app.command()
def diff(env_name: str = typer.Argument(..., metavar="ENV"), output: Output = OutputOpt) -> None:
    """Show what `ship sync ENV` would change (exit 0 in sync, 1 drift, 2 error).

    Example: ship diff prod
    """
    from pipeline import config
    from pipeline.rollout import sync as sync_mod

    def body():
        cfg = config.load()
        return sync_mod.diff(cfg, cfg.env(env_name))

    diffs = run(body, error_code=2)
    if output is Output.json:
        emit_json({"environment": env_name, "in_sync": not diffs,
                   "objects": [{"subject": d.subject, "action": d.action, "diff": d.diff} for d in diffs]})
    else:
        for d in diffs:
            typer.echo(d.diff if d.action != "pruned" else f"# {d.subject} would be pruned\n{d.diff}", nl=False)
        if not diffs:
            err.print(f"{env_name} is in sync with git")
    raise typer.Exit(1 if diffs else 0)


@app.command()
def status(env_name: Optional[str] = typer.Argument(None, metavar="[ENV]"), output: Output = OutputOpt) -> None:
    """What runs where: release, image, config, health, drift and canary per environment.

    Example: ship status
    """
    from pipeline import config
    from pipeline.report import status as status_mod

    def body():
        cfg = config.load()
        envs = [cfg.env(env_name)] if env_name else list(cfg.environments.values())
        return [status_mod.environment_status(cfg, e) for e in envs]

    rows = run(body)
    if output is Output.json:
        emit_json({"environments": [r.to_json() for r in rows]})
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("ENV", "RELEASE", "DIGEST", "CONFIG", "HEALTH", "DRIFT", "CANARY", "LAST CHANGE"):
        table.add_column(col)
    for r in rows:
        drift = "?" if r.drift is None else ("yes" if r.drift else "no")
        table.add_row(r.environment, r.release or "-", r.digest or "-", r.config or "-",
                      f"{r.health} {r.health_message}".strip(), drift, r.canary or "-", r.last_change or "-")
    Console(width=200).print(table)
    for r in rows:
        if r.canary:
            typer.echo(status_mod.summary_line(r))
    for r in rows:
        if r.error:
            err.print(f"{r.environment}: {r.error}")


@app.command()
def promote(
    from_env: str = typer.Argument(..., metavar="FROM"),
    to_env: str = typer.Argument(..., metavar="TO"),
    canary: Optional[int] = typer.Option(None, "--canary", metavar="PERCENT",
                                         help="Run a one-step canary at this share of traffic first."),
    no_canary: bool = typer.Option(False, "--no-canary", help="Skip TO's configured canary; promote directly."),
    hold: bool = typer.Option(False, "--hold", help="Stop after the canary's analysis for a person to decide."),
    resume: bool = typer.Option(False, "--resume", help="Continue a held or interrupted canary in TO."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Only write, commit and push TO's overlay (no canary)."),
    output: Output = OutputOpt,
) -> None:
    """Promote the release that is healthy in FROM to TO (same image digest, TO's own config).

    Example: ship promote dev uat; ship promote uat prod --canary 10
    """
    from pipeline import commands
    from pipeline.rollout.promotion import CanaryResult

    def body():
        result = commands.promote(from_env, to_env, sync=not no_sync, canary=canary, no_canary=no_canary, hold=hold,
                                  resume=resume, progress=progress)
        rel = result.release
        if isinstance(result, CanaryResult):
            if output is Output.json:
                emit_json({"release": rel.record(), "outcome": result.outcome, "steps": result.steps,
                           "commits": [c.sha for c in result.commits],
                           "gate": result.gate.to_json() if result.gate else None})
                return
            for c in result.commits:
                typer.echo(f"commit {c.short} {c.subject}")
            if result.outcome == "held":
                typer.echo(f"{rel.app} {rel.id} is held as a canary in {to_env} after its analysis passed; "
                           f"ship promote {from_env} {to_env} --resume, or ship abort {to_env}")
            else:
                typer.echo(f"promoted {rel.app} {rel.id} to {to_env} after its canary passed: {rel.image}")
            return
        changes = result.sync.changes if result.sync else []
        if output is Output.json:
            emit_json({"release": rel.record(), "outcome": "promoted", "changed": result.changed,
                       "commit": result.commit.sha if result.commit else None,
                       "changes": [c.to_json() for c in changes],
                       "gate": result.gate.to_json() if result.gate else None})
            return
        if result.changed:
            typer.echo(f"promoted {rel.app} {rel.id} from {from_env} to {to_env}: {rel.image}")
        else:
            typer.echo(f"{rel.app} {rel.id} is already in {to_env}; nothing to promote")
        for change in changes:
            typer.echo(str(change))
        if result.gate:
            typer.echo(str(result.gate))

    run(body)


@app.command()
def abort(
    env_name: str = typer.Argument(..., metavar="ENV"),
    reason: str = typer.Option("aborted by hand", "--reason", help="Why; recorded in git and the ledger."),
    output: Output = OutputOpt,
) -> None:
    """Abort ENV's canary: weight to 0, canary removed, stable untouched, the release rejected.

    Example: ship abort prod --reason "latency looks off"
    """
    from pipeline import commands

    def body():
        result = commands.abort(env_name, reason, progress=progress)
        if output is Output.json:
            emit_json({"environment": env_name, "release": result.release, "reason": result.reason,
                       "commit": result.commit.sha if result.commit else None})
        elif result.release:
            typer.echo(f"aborted the canary of {result.release} in {env_name}: {reason}")
        else:
            typer.echo(f"removed a leftover canary from {env_name}")

    run(body)


@app.command()
def rollback(
    env_name: str = typer.Argument(..., metavar="ENV"),
    to: Optional[str] = typer.Option(None, "--to", help="Release id to return to (default: the previous healthy one)."),
    reason: str = typer.Option("manual rollback", "--reason", help="Why; recorded in git and the ledger."),
    output: Output = OutputOpt,
) -> None:
    """Put ENV back on an earlier release (re-applied, gated, recorded in git).

    Example: ship rollback prod --reason "checkout errors"
    """
    from pipeline import commands

    def body():
        result = commands.rollback(env_name, to, reason, progress=progress)
        if output is Output.json:
            emit_json({"environment": env_name, "release": result.target.id,
                       "replaced": result.replaced.id if result.replaced else None,
                       "gate": result.gate.to_json() if result.gate else None})
        else:
            was = f"{result.replaced.id} → " if result.replaced else ""
            typer.echo(f"rolled back {env_name}: {was}{result.target.id}")
            if result.gate:
                typer.echo(str(result.gate))

    run(body)


@app.command()
def history(env_name: str = typer.Argument(..., metavar="ENV"), output: Output = OutputOpt) -> None:
    """ENV's ledger: every release, its image, config, outcome and reason, newest first.

    Example: ship history prod
    """
    from pipeline import config
    from pipeline.rollout import release as release_mod

    def body():
        cfg = config.load()
        return release_mod.read_ledger(cfg.root, cfg.env(env_name))

    ledger = run(body)
    entries = list(reversed(ledger.entries))
    if output is Output.json:
        emit_json({"environment": env_name, "releases": [
            {k: v for k, v in e.to_record().items() if k != "config_data"} for e in entries]})
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("RELEASE", "TIME", "COMMIT", "DIGEST", "CONFIG", "OUTCOME", "REASON"):
        table.add_column(col)
    for e in entries:
        r = e.release
        table.add_row(r.id, r.created_at, r.commit[:7], r.image.split("@sha256:")[-1][:12], r.config,
                      e.outcome, e.reason or "-")
    Console(width=220).print(table)


@app.command()
def rbac(
    env_name: str = typer.Argument(..., metavar="ENV"),
    service_account: str = typer.Option("ship-deployer", "--service-account", help="The deployer's ServiceAccount."),
) -> None:
    """Print the least-privilege ServiceAccount, Role and RoleBinding for deploying to ENV.

    Example: ship rbac prod | kubectl apply -f -
    """
    from pipeline import config
    from pipeline.kube import rbac as rbac_mod
    from pipeline.gitops import yamlsafe

    def body():
        cfg = config.load()
        env = cfg.env(env_name)
        typer.echo(yamlsafe.dumps_all(rbac_mod.deployer_objects(env.namespace, service_account)), nl=False)

    run(body)


@app.command()
def summary(title: str = typer.Option("ship", "--title", help="The summary's heading.")) -> None:
    """Markdown for a GitHub job summary: what runs where, last outcomes, a Mermaid diagram.

    Example: ship summary >> "$GITHUB_STEP_SUMMARY"
    """
    from pipeline import config
    from pipeline.report import summary as summary_mod

    typer.echo(run(lambda: summary_mod.markdown(config.load(), title)), nl=False)


@app.command()
def init(
    app_name: str = typer.Argument(..., metavar="APP", help="Your app's name (a DNS label)."),
    path: Optional[str] = typer.Option(None, "--path", help="The app's folder (default: apps/APP)."),
    port: int = typer.Option(8080, "--port", help="The port your app listens on (for a new base)."),
    registry: str = typer.Option("127.0.0.1:15000", "--registry", help="Where images are pushed."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Scaffold ship into this repository: ship.yaml, overlays, a kustomize base, RBAC, workflows.

    Example: ship init shop --port 8080
    """
    from pathlib import Path

    from pipeline import scaffold

    def body():
        written = scaffold.init(Path.cwd(), app_name, path or f"apps/{app_name}", port, registry, force)
        for name in written:
            typer.echo(f"wrote {name}")
        typer.echo(f"next: commit these files, then `ship release dev {app_name}` (README: Quickstart)")

    run(body)


def main() -> None:
    app()
