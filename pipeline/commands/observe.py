"""The commands that show how releases go: metrics, dashboard, serve and preview.

Each reads git (and, for a live dashboard, the cluster) and returns a result that renders itself
as text and JSON. None of them writes to git or changes a cluster.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import names, paths
from pipeline.commands.text import table_text
from pipeline.context import Context
from pipeline.report import metrics as dora
from pipeline.report.dashboard import model as board_model
from pipeline.report.dashboard import site
from pipeline.report.deployments import History, replay
from pipeline.report.events import iso, read_events
from pipeline.report.preview import markdown as preview_markdown
from pipeline.report.preview.gather import gather as gather_preview
from pipeline.report.preview.model import Preview


def history_of(ctx: Context) -> History:
    return replay(read_events(ctx.workspace.git.repo, ctx.config))


@dataclass
class MetricsReport:
    window: dora.Window
    # (environment, app, figures); first per environment app "": all its apps
    rows: list[tuple[str, str, dora.Figures]]

    def to_json(self) -> dict:
        envs: dict[str, dict] = {}
        for env, app, fig in self.rows:
            entry = envs.setdefault(env, {"environment": env, "apps": {}})
            if app:
                entry["apps"][app] = fig.to_json()
            else:
                entry.update(fig.to_json())
        return {
            "since": iso(self.window.start),
            "until": iso(self.window.end),
            "days": round(self.window.days, 2),
            "environments": list(envs.values()),
        }

    def text(self) -> str:
        rows = []
        apps = Counter(env for env, app, _ in self.rows if app)
        for env, app, f in self.rows:
            if not app and apps[env] == 1:
                continue  # one app: its row says it all
            lead, restore = list(f.lead_times), list(f.restore_times)
            rows.append(
                (
                    env,
                    app or "(all)",
                    str(f.deployments),
                    dora.frequency_text(f),
                    dora.duration_text(dora.median(lead)),
                    dora.duration_text(dora.percentile(lead, 90)),
                    dora.rate_text(f),
                    dora.duration_text(dora.median(restore)),
                    dora.duration_text(dora.percentile(restore, 90)),
                )
            )
        head = (
            f"DORA metrics from git, {self.window.start:%Y-%m-%d %H:%M} "
            f"→ {self.window.end:%Y-%m-%d %H:%M} UTC "
            f"({self.window.days:.0f} days)"
        )
        table = table_text(
            (
                "ENV",
                "APP",
                "DEPLOYS",
                "FREQUENCY",
                "LEAD TIME",
                "LEAD P90",
                "CHANGE FAILURE",
                "RESTORE",
                "RESTORE P90",
            ),
            rows,
        )
        return f"{head}\n{table}"

    def notes(self) -> list[str]:
        return [
            f"{env}/{app}: failing since {iso(f.failing_since)}, not restored yet"
            for env, app, f in self.rows
            if f.failing_since and app
        ]


def metrics(ctx: Context, env_name: str | None, since: str) -> MetricsReport:
    envs = [ctx.config.env(env_name)] if env_name else list(ctx.config.environments.values())
    win = dora.window(since, ctx.clock.now())
    history = history_of(ctx)
    rows: list[tuple[str, str, dora.Figures]] = []
    for env in envs:
        apps = sorted({d.app for d in history.deployments if d.environment == env.name})
        rows.append((env.name, "", dora.figures(history, win, env.name)))
        rows += [(env.name, app, dora.figures(history, win, env.name, app)) for app in apps]
    return MetricsReport(win, rows)


@dataclass
class PreviewResult:
    preview: Preview
    title: str

    def to_json(self) -> dict:
        return self.preview.to_json()

    def text(self) -> str:
        return preview_markdown.markdown(self.preview, self.title)

    def notes(self) -> list[str]:
        broken = [
            f"{e.overlay} does not render: {e.error}" for e in self.preview.environments if e.error
        ]
        return broken or ([] if self.preview.changed else ["no change to any environment or app"])

    @property
    def exit_code(self) -> int:
        """1 when an overlay of the change does not render, so a pull request's check fails."""
        return 1 if any(e.error for e in self.preview.environments) else 0


def preview(ctx: Context, base: str, title: str) -> PreviewResult:
    names.check_text(title, "--title")
    return PreviewResult(gather_preview(ctx.config, base, ctx.progress), title)


def _commit_url(ctx: Context, given: str | None) -> str:
    if given is not None:
        return given
    repo = ctx.workspace.git.repo
    remote = next((r for r in repo.remotes if r.name == "origin"), None)
    return board_model.commit_url(remote.url if remote else "", dict(os.environ))


@dataclass
class DashboardResult:
    out: Path
    board: board_model.Board
    files: list[Path] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "index": str(self.out / "index.html"),
            "files": [str(f) for f in self.files],
            "live": self.board.live,
            "cluster": self.board.cluster_note,
        }

    def text(self) -> str:
        b = self.board
        canaries = f"{len(b.canaries)} canar{'y' if len(b.canaries) == 1 else 'ies'} in progress"
        return (
            f"wrote {self.out / 'index.html'}: {len(b.rows)} "
            f"environments, {canaries}, {len(b.timeline)} events; "
            f"health: {b.cluster_note}"
        )

    def notes(self) -> list[str]:
        return [f"open {(self.out / 'index.html').resolve().as_uri()}"]


def dashboard(
    ctx: Context,
    out: Path,
    *,
    live: bool,
    since: str,
    commit_url: str | None = None,
    force: bool = False,
) -> DashboardResult:
    paths.output_folder(out, site.site_files(), force=force)  # before gathering anything
    board = board_model.gather(ctx, live=live, since=since, commit_url=_commit_url(ctx, commit_url))
    return DashboardResult(out, board, site.write(out, board, force=force))


@dataclass
class ServeResult:
    url: str

    def to_json(self) -> dict:
        return {"url": self.url, "stopped": True}

    def text(self) -> str:
        return f"stopped serving {self.url}" if self.url else ""


def serve(
    ctx: Context,
    port: int,
    interval: float,
    *,
    live: bool,
    since: str,
    commit_url: str | None = None,
) -> ServeResult:
    """Serve the dashboard on 127.0.0.1:PORT, built again from git (and the cluster) as it
    changes."""
    url = _commit_url(ctx, commit_url)
    page = site.Live(
        lambda: board_model.gather(ctx, live=live, since=since, commit_url=url),
        ctx.config.root,
        interval,
        ctx.progress,
    )
    served: list[str] = []

    def ready(address: str) -> None:
        served.append(address)
        ctx.progress(
            f"serving {address} (refreshed from git{' and the cluster' if live else ''} every "
            f"{interval:.0f}s or when HEAD moves; Ctrl-C stops)"
        )

    site.serve(page, port, ready)
    return ServeResult(served[0] if served else "")
