"""The commands that only look (diff, status, history, verify, summary, rbac), and init.

Each returns a result that renders itself as text and JSON; a result with `failure` set is
printed first and then ends the command with that error (verify's moved tags).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pipeline import bootstrap, names, scaffold, yamlsafe
from pipeline.commands.text import Text, table_text
from pipeline.config import Slot
from pipeline.context import Context
from pipeline.errors import ShipError
from pipeline.gitops.ledger import Entry
from pipeline.kube.access import namespace_object
from pipeline.kube.rbac import admission_objects, deployer_objects, proxy_objects, secret_names
from pipeline.kube.services import proxied_services
from pipeline.report import summary as summary_report
from pipeline.report.status import (
    UNREACHABLE,
    EnvironmentStatus,
    git_status,
    live_status,
    summary_line,
)
from pipeline.rollout.sync import ObjectDiff, diff_environment, diff_slot
from pipeline.supply.verify import VerifiedPin, verify_pins
from pipeline.upgrade import Upgrade
from pipeline.upgrade import upgrade as upgrade_workflows

DRIFT = 3  # ship diff's exit code when git and the cluster differ (the CLI's EXIT_CODES)


@dataclass
class DiffResult:
    environment: str
    diffs: list[ObjectDiff]

    @property
    def exit_code(self) -> int:
        return DRIFT if self.diffs else 0

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "in_sync": not self.diffs,
            "objects": [d.to_json() for d in self.diffs],
        }

    def text(self) -> str:
        return "".join(
            d.diff if d.action != "pruned" else f"# {d.subject} would be pruned\n{d.diff}"
            for d in self.diffs
        ).rstrip("\n")

    def notes(self) -> list[str]:
        """Lines for stderr: say so when there is nothing to show."""
        return [] if self.diffs else [f"{self.environment} is in sync with git"]


def diff(ctx: Context, env_name: str, app_name: str | None = None) -> DiffResult:
    env = ctx.config.env(env_name)
    if app_name is None:
        return DiffResult(env_name, diff_environment(ctx, env))
    return DiffResult(env_name, diff_slot(ctx, Slot(env, ctx.config.app(app_name).name)))


@dataclass
class StatusReport:
    rows: list[EnvironmentStatus]

    def to_json(self) -> dict:
        return {"environments": [r.to_json() for r in self.rows]}  # a row per environment and app

    def text(self) -> str:
        rows = [
            (
                r.environment,
                r.app or "-",
                r.release or "-",
                r.digest or "-",
                r.config or "-",
                f"{r.health} {r.health_message}".strip(),
                {None: "?", True: "yes", False: "no"}[r.drift],
                r.canary or "-",
                r.last_change or "-",
            )
            for r in self.rows
        ]
        lines = [
            table_text(
                (
                    "ENV",
                    "APP",
                    "RELEASE",
                    "DIGEST",
                    "CONFIG",
                    "HEALTH",
                    "DRIFT",
                    "CANARY",
                    "LAST CHANGE",
                ),
                rows,
            )
        ]
        per_env = [r.environment for r in self.rows]
        lines += [
            summary_line(r, alone=per_env.count(r.environment) == 1) for r in self.rows if r.canary
        ]
        lines += [f"{r.freeze}: releases and promotions are held" for r in self.rows if r.freeze]
        return "\n".join(dict.fromkeys(lines))  # a freeze holds the environment: said once

    def notes(self) -> list[str]:
        """Each environment's error once, named once (the error may name an environment already)."""
        said: dict[str, str] = {}
        for r in self.rows:
            if r.error and r.environment not in said:
                error = r.error
                for name in {row.environment for row in self.rows}:
                    error = error.removeprefix(f"{name}: ")
                said[r.environment] = f"{r.environment}: {error}"
        return list(said.values())

    @property
    def exit_code(self) -> int:
        """1 when an environment's cluster could not be reached: the table is then partly
        unknown."""
        return 1 if any(r.health_message == UNREACHABLE for r in self.rows) else 0


def status(ctx: Context, env_name: str | None) -> StatusReport:
    """Every environment (or ENV): git read in turn, the clusters asked all at once."""
    envs = [ctx.config.env(env_name)] if env_name else list(ctx.config.environments.values())
    from_git = [git_status(ctx, e) for e in envs]
    with ThreadPoolExecutor(max_workers=max(1, len(envs))) as pool:
        rows = pool.map(lambda pair: live_status(ctx, *pair), zip(envs, from_git))
        return StatusReport([row for env_rows in rows for row in env_rows])


@dataclass
class History:
    environment: str
    entries: list[Entry]  # newest first

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "releases": [
                {k: v for k, v in e.to_record().items() if k != "config_data"} for e in self.entries
            ],
        }

    def text(self) -> str:
        # a CHART column once an app from a chart is here
        charts = any(e.release.chart for e in self.entries)
        rows = [
            (
                e.release.app,
                e.release.id,
                e.release.created_at,
                e.release.commit[:7],
                e.release.image.split("@sha256:")[-1][:12],
                *([e.release.chart or "-"] if charts else []),
                e.release.config,
                e.outcome.value,
                "; ".join(filter(None, (e.reason, e.override))) or "-",
            )
            for e in self.entries
        ]
        heads = (
            "APP",
            "RELEASE",
            "TIME",
            "COMMIT",
            "DIGEST",
            *(["CHART"] if charts else []),
            "CONFIG",
            "OUTCOME",
            "REASON",
        )
        return table_text(heads, rows, width=220)


def history(ctx: Context, env_name: str, app_name: str | None = None) -> History:
    """ENV's releases newest first, every app's (APP's only, when given)."""
    env = ctx.config.env(env_name)
    if app_name is not None and app_name not in ctx.workspace.ledger_apps(env):
        # an unknown app names ship.yaml's; a known one simply has no releases here
        ctx.config.app(app_name)
    ledger = (
        ctx.workspace.environment_ledger(env)
        if app_name is None
        else ctx.workspace.ledger(Slot(env, app_name))
    )
    return History(env.name, list(reversed(ledger.entries)))


@dataclass
class VerifyResult:
    environment: str
    pins: list[VerifiedPin]  # images and remote charts

    @property
    def failure(self) -> ShipError | None:
        bad = next((r for r in self.pins if not r.ok), None)
        return bad.error(self.environment) if bad else None

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "pins": [r.__dict__ for r in self.pins],
            "ok": all(r.ok for r in self.pins),
        }

    def text(self) -> str:
        return "\n".join(r.text() for r in self.pins)


def verify(ctx: Context, env_name: str) -> VerifyResult:
    return VerifyResult(env_name, verify_pins(ctx, ctx.config.env(env_name)))


def summary(ctx: Context, title: str) -> Text:
    names.check_text(title, "--title")
    return Text(summary_report.markdown(ctx.config, ctx.workspace, title))


def rbac(
    ctx: Context, env_name: str, service_account: str, subject_namespace: str | None = None
) -> Text:
    """The deployer's ServiceAccount, Role, RoleBinding, the admission policies holding it, and a
    Role where the canary analysis reads a Service of another namespace (Prometheus) through the
    proxy."""
    env = ctx.config.env(env_name)
    apps = ctx.config.apps.values()
    objects = deployer_objects(
        env.namespace,
        service_account,
        subject_namespace,
        environment=env.name,
        secrets=secret_names((a.name, bool(a.secrets)) for a in apps),
    )
    policies = admission_objects(
        env.namespace, service_account, subject_namespace, accounts=[a.name for a in apps]
    )
    proxied = proxied_services(env.canary.urls() if env.canary else [], env.namespace)
    elsewhere = proxy_objects(proxied, env.namespace, service_account, subject_namespace)
    return Text(
        yamlsafe.dumps_all(
            [namespace_object(env.namespace, env.pod_security), *objects, *policies, *elsewhere]
        )
    )


@dataclass
class InitResult:
    app: str
    written: list[str]
    note: str | None = None  # what init could not do (no Dockerfile to pick)

    def to_json(self) -> dict:
        return {"app": self.app, "written": self.written, "note": self.note}

    def text(self) -> str:
        return "\n".join(
            [
                *(f"wrote {name}" for name in self.written),
                *([f"note: {self.note}"] if self.note else []),
                "next: commit and push these files; README: "
                "Quickstart says what to set up in GitHub",
            ]
        )


@dataclass
class UpgradeResult:
    action: str
    upgrade: Upgrade

    def to_json(self) -> dict:
        return {
            "action": self.action,
            "written": self.upgrade.written,
            "differs": self.upgrade.differs,
        }

    def text(self) -> str:
        lines = [f"upgraded {name} to {self.action}" for name in self.upgrade.written] or [
            f"already on {self.action}"
        ]
        return "\n".join(
            lines
            + [
                f"{name} differs from what {self.action} writes beyond the version: merge by hand "
                "(`ship init` in an empty repository writes it to compare)"
                for name in self.upgrade.differs
            ]
        )


def upgrade(root: Path) -> UpgradeResult:
    """Move the repository's workflows to this ship's action (`ship init --upgrade`)."""
    return UpgradeResult(scaffold.action_ref(), upgrade_workflows(root))


def init(
    root: Path, app_name: str, options: scaffold.InitOptions = scaffold.InitOptions()
) -> InitResult:
    """Scaffold ship into the repository at `root` (needs no ship.yaml, so no context)."""
    folder = options.folder(app_name)
    written = scaffold.init(root, app_name, options)
    return InitResult(app_name, written, bootstrap.no_dockerfile_note(root / folder, folder))
