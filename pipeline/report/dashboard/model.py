"""What the dashboard shows, gathered from git (and, when asked, the cluster) into plain data.

    rows       environments × apps: release, image digest, config, health, canary, last change
    canaries   each canary in progress: release, step, the weights git set (and the live ones)
    timeline   ship's commits, newest first: releases, promotions, canary steps, outcomes,
               rollbacks and aborts, each with its commit
    figures    the four keys per environment over the window, and per bucket for the charts

Health comes from the ledger ("as git records it") unless the cluster is asked (`live`); a
cluster that cannot be reached is said so, and git's view stays. Reads only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipeline import names
from pipeline.config import Environment, Slot
from pipeline.context import Context
from pipeline.errors import ShipError
from pipeline.gitops.ledger import Outcome
from pipeline.report import metrics as dora
from pipeline.report.deployments import replay
from pipeline.report.events import Event, iso, read_events
from pipeline.report.status import environment_status, slot_status
from pipeline.state.traffic import live_weights

MAX_TIMELINE = 1000  # rows on the page; every event is still in data.json


@dataclass(frozen=True)
class Row:
    environment: str
    namespace: str
    app: str
    release: str
    image: str
    digest: str  # short
    config: str
    outcome: str  # the ledger's outcome of the running release
    health: str  # live health (Healthy, Degraded, …), or "" when the cluster was not asked
    health_message: str = ""
    drift: bool | None = None
    canary: str = ""
    changed: Event | None = None  # the newest commit about this environment


@dataclass(frozen=True, kw_only=True)
class Canary:
    environment: str
    app: str
    release: str
    source: str
    step: int  # 1-based
    steps: tuple[int, ...]  # weights of every step
    weight: int
    held: bool
    started: str
    weights: dict[str, int]  # backend -> percent: live when asked, else what git set
    live: bool


@dataclass(kw_only=True)
class Board:
    title: str
    generated: dt.datetime
    head: str  # the commit the page was built from
    branch: str
    window: dora.Window
    live: bool  # the cluster was asked
    cluster_note: str  # what became of asking (or why health is git's)
    rows: list[Row] = field(default_factory=list)
    canaries: list[Canary] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)  # newest first
    figures: dict[str, dora.Figures] = field(default_factory=dict)
    series: list[dora.Series] = field(default_factory=list)
    buckets: list[dora.Window] = field(default_factory=list)
    commit_url: str = ""  # e.g. https://github.com/ORG/REPO/commit/{sha}; "" for no links

    def link(self, sha: str) -> str:
        return self.commit_url.replace("{sha}", sha) if self.commit_url else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "generated": iso(self.generated),
            "head": self.head,
            "branch": self.branch,
            "since": iso(self.window.start),
            "until": iso(self.window.end),
            "live": self.live,
            "cluster": self.cluster_note,
            "environments": [
                {
                    **{k: v for k, v in r.__dict__.items() if k != "changed"},
                    "changed": r.changed.to_json() if r.changed else None,
                }
                for r in self.rows
            ],
            "canaries": [c.__dict__ for c in self.canaries],
            "metrics": {env: f.to_json() for env, f in self.figures.items()},
            "series": self.chart_data(),
            "timeline": [e.to_json() for e in self.timeline],
        }

    def chart_data(self) -> dict[str, Any]:
        """What dashboard.js draws: bucket labels and per environment the four keys per bucket."""
        daily = len(self.buckets) < 2 or (
            self.buckets[1].start - self.buckets[0].start
        ) <= dt.timedelta(days=1)
        labels = [f"{b.start:%b %d}" if daily else f"week of {b.start:%b %d}" for b in self.buckets]
        return {
            "labels": labels,
            "environments": [
                {
                    "environment": s.environment,
                    "deployments": s.deployments,
                    "lead_time": s.lead_time,
                    "change_failure_rate": s.change_failure_rate,
                    "time_to_restore": s.time_to_restore,
                }
                for s in self.series
            ],
        }


def gather(
    ctx: Context, *, live: bool, since: str, title: str = "ship", commit_url: str = ""
) -> Board:
    cfg, git = ctx.config, ctx.workspace.git
    events = read_events(git.repo, cfg)
    history = replay(events)
    win = dora.window(since, ctx.clock.now())
    head = git.head() if git.repo.head.is_valid() else None
    board = Board(
        title=title,
        generated=ctx.clock.now(),
        head=head.sha if head else "",
        branch=git.branch(),
        window=win,
        live=live,
        cluster_note=""
        if live
        else "health as git records it (the cluster was not asked; --live asks it)",
        timeline=list(reversed(events)),
        commit_url=commit_url,
        buckets=dora.buckets(win),
    )
    unreachable = []
    for env in cfg.environments.values():
        # None: nothing released in ENV yet
        here: list[Slot | None] = [*ctx.workspace.slots(env)] or [None]
        for slot in here:
            app = slot.app if slot else None
            last = next(
                (
                    e
                    for e in board.timeline
                    if e.environment == env.name and getattr(e, "app", app) in (app, None, "")
                ),
                None,
            )
            row, canary, error = _environment(ctx, env, slot, last, live=live)
            board.rows.append(row)
            board.canaries += [canary] if canary else []
            unreachable += (
                [f"{env.name}: {error}"]
                if error and f"{env.name}: {error}" not in unreachable
                else []
            )
        board.figures[env.name] = dora.figures(history, win, env.name)
        board.series.append(dora.series(history, win, env.name))
    if live:
        board.cluster_note = (
            "health from the cluster"
            if not unreachable
            else "cluster unreachable, so health is as git records it ("
            + "; ".join(unreachable)
            + ")"
        )
    return board


def _environment(
    ctx: Context, env: Environment, slot: Slot | None, last: Event | None, *, live: bool
) -> tuple[Row, Canary | None, str]:
    """The row of SLOT in ENV (of ENV alone, None, while nothing is released there), and its
    canary."""
    rel = ctx.workspace.current_release(slot) if slot else None
    state = ctx.workspace.canary_state(slot) if slot else None
    entry = ctx.workspace.ledger(slot).find(rel.id) if slot and rel else None
    digest = rel.image.split("@sha256:")[-1][:12] if rel and "@sha256:" in rel.image else ""
    outcome = "" if rel is None else Outcome.PENDING.value  # released, not yet judged
    if entry:
        outcome = entry.outcome.value
    base: dict[str, Any] = dict(
        environment=env.name,
        namespace=env.namespace,
        app=rel.app if rel else "",
        release=rel.id if rel else "",
        image=rel.image if rel else "",
        digest=digest,
        config=rel.config if rel else "",
        outcome=outcome,
        canary=state.describe() if state else "",
        changed=last,
    )
    health, message, drift, error, weights = "", "", None, "", {}
    if live:
        status = slot_status(ctx, slot) if slot else environment_status(ctx, env)[0]
        error = status.error or ""
        if not (error and status.health == "Unknown"):
            health, message, drift = status.health, status.health_message, status.drift
            base["canary"] = status.canary or base["canary"]
            if state is not None:
                weights = _live_weights(ctx, env)
    row = Row(**base, health=health, health_message=message, drift=drift)
    if state is None:
        return row, None, error
    stable = rel.app if rel else state.release.app
    canary = Canary(
        environment=env.name,
        app=state.release.app,
        release=state.release.id,
        source=state.source,
        step=state.step + 1,
        steps=tuple(s.weight for s in state.steps),
        weight=state.weight,
        held=state.status.value == "held",
        started=state.started_at,
        weights=weights or {stable: 100 - state.weight, names.canary_name(stable): state.weight},
        live=bool(weights),
    )
    return row, canary, error


def _live_weights(ctx: Context, env: Environment) -> dict[str, int]:
    try:
        return live_weights(ctx.cluster(env), env)
    except ShipError:
        return {}


def commit_url(remote: str, environ: dict[str, str]) -> str:
    """Where a commit can be seen: GitHub Actions' own repository, else origin on GitHub or
    GitLab; "" when neither (the page then shows commit ids without links)."""
    if environ.get("GITHUB_SERVER_URL") and environ.get("GITHUB_REPOSITORY"):
        return f"{environ['GITHUB_SERVER_URL']}/{environ['GITHUB_REPOSITORY']}/commit/{{sha}}"
    url = remote.strip().removesuffix(".git")
    for host, path in (("github.com", "/commit/{sha}"), ("gitlab.com", "/-/commit/{sha}")):
        for prefix in (f"git@{host}:", f"https://{host}/", f"ssh://git@{host}/"):
            if url.startswith(prefix):
                return f"https://{host}/{url[len(prefix) :]}{path}"
    return ""
