"""The commands that show how releases go: metrics, dashboard, serve and preview.

Each reads git (and, for a live dashboard, the cluster) and returns a result that renders itself
as text and JSON. None of them writes to git or changes a cluster.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pipeline.commands.inspect import table_text
from pipeline.context import Context
from pipeline.report import metrics as dora
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
    rows: list[tuple[str, str, dora.Figures]]  # (environment, app, figures); first per environment app "": all its apps

    def to_json(self) -> dict:
        envs: dict[str, dict] = {}
        for env, app, fig in self.rows:
            entry = envs.setdefault(env, {"environment": env, "apps": {}})
            if app:
                entry["apps"][app] = fig.to_json()
            else:
                entry.update(fig.to_json())
        return {"since": iso(self.window.start), "until": iso(self.window.end), "days": round(self.window.days, 2),
                "environments": list(envs.values())}

    def text(self) -> str:
        rows = []
        apps = Counter(env for env, app, _ in self.rows if app)
        for env, app, f in self.rows:
            if not app and apps[env] == 1:
                continue  # one app: its row says it all
            lead, restore = list(f.lead_times), list(f.restore_times)
            rows.append((env, app or "(all)", str(f.deployments), dora.frequency_text(f),
                         dora.duration_text(dora.median(lead)), dora.duration_text(dora.percentile(lead, 90)),
                         dora.rate_text(f), dora.duration_text(dora.median(restore)),
                         dora.duration_text(dora.percentile(restore, 90))))
        head = (f"DORA metrics from git, {self.window.start:%Y-%m-%d %H:%M} → {self.window.end:%Y-%m-%d %H:%M} UTC "
                f"({self.window.days:.0f} days)")
        table = table_text(("ENV", "APP", "DEPLOYS", "FREQUENCY", "LEAD TIME", "LEAD P90", "CHANGE FAILURE",
                            "RESTORE", "RESTORE P90"), rows)
        return f"{head}\n{table}"

    def notes(self) -> list[str]:
        return [f"{env}/{app}: failing since {iso(f.failing_since)}, not restored yet"
                for env, app, f in self.rows if f.failing_since and app]


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
        return [] if self.preview.changed else ["no change to any environment or app"]


def preview(ctx: Context, base: str, title: str) -> PreviewResult:
    return PreviewResult(gather_preview(ctx.config, base, ctx.progress), title)
