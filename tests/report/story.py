"""A real test repository with three weeks of release history at known times.

The flows run for real (tests/fakes.py: an in-memory cluster, a temporary git repository); every
commit, ship's and the test's own, is dated by a story clock, so the DORA metrics have known
answers (tests/report/test_metrics.py works them out by hand):

    Nov  2  09:00 source A   10:00 dev ✓   11:00 uat ✓   12:00 prod ✓ (first: no canary)
    Nov  4  09:00 source B   09:30 dev ✓   10:00 uat ✓   11:00 prod canary 10% → 50% → ✓
    Nov  6  09:00 source C   10:00 dev: never ready; rolled back by ship at 10:05 (rejected)
    Nov  9  09:00 source D   10:00 dev ✓   11:00 uat ✓   12:00 prod canary held; 14:00 aborted
    Nov 12  09:00 source E   10:00 dev ✓;  Nov 13 10:00 dev rolled back by hand to D
    Nov 16  09:00 source F   10:00 dev ✓   11:00 uat ✓   12:00 prod canary 10% held (in progress)
    now: Nov 21 12:00
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.clock import Clock
from pipeline.commands import deploy
from pipeline.errors import GateFailed
from pipeline.gitops.git import GitRepo
from tests.fakes import GOOD, NEVER_READY, fake_context, fake_project

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


class StoryClock(Clock):
    """Wall time as the story says; intervals (gates, bakes) as the real clock measures them."""

    def __init__(self) -> None:
        self.current = NOW
        self.tick = 0.0  # seconds each commit moves the story on

    def now(self) -> dt.datetime:
        return self.current


@dataclass
class Story:
    root: Path
    ctx: object
    cluster: object
    clock: StoryClock
    sources: dict[str, str] = field(default_factory=dict)  # letter -> source commit sha (its images' revision)
    releases: dict[str, str] = field(default_factory=dict)  # letter -> release id

    def at(self, month_day: str, hhmm: str, tick: float = 0.0) -> None:
        month, day = (int(x) for x in month_day.split("-"))
        hour, minute = (int(x) for x in hhmm.split(":"))
        self.clock.current, self.clock.tick = dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC), tick

    def source(self, letter: str, message: str) -> None:
        """A commit changing dev's config (a new source commit, so a new release)."""
        (self.root / "apps/hellok8s/config/dev.env").write_text(f"MESSAGE={message}\nDB_URL=postgres://db\n")
        repo = self.ctx.workspace.git.repo
        with repo.git.custom_environment(**_dates(self.clock.current)):
            repo.git.commit("-qam", message)
        self.sources[letter] = repo.head.commit.hexsha


def _dates(when: dt.datetime) -> dict[str, str]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def _dated_commits(monkeypatch: pytest.MonkeyPatch, clock: StoryClock) -> None:
    original = GitRepo._commit

    def commit(self: GitRepo, paths: list[str], message: str) -> None:
        with self.repo.git.custom_environment(**_dates(clock.current)):
            original(self, paths, message)
        clock.current += dt.timedelta(seconds=clock.tick)

    monkeypatch.setattr(GitRepo, "_commit", commit)


STEPS = [  # (month-day, time, seconds each commit moves the clock on, what happens)
    ("11-02", "09:00", 0, ("source", "A", "first edition")),
    ("11-02", "10:00", 0, ("release", "A", GOOD)),
    ("11-02", "11:00", 0, ("promote", "dev", "uat")),
    ("11-02", "12:00", 0, ("promote", "uat", "prod")),
    ("11-04", "09:00", 0, ("source", "B", "second edition")),
    ("11-04", "09:30", 0, ("release", "B", GOOD)),
    ("11-04", "10:00", 0, ("promote", "dev", "uat")),
    ("11-04", "11:00", 0, ("promote", "uat", "prod")),
    ("11-06", "09:00", 0, ("source", "C", "a broken build")),
    ("11-06", "10:00", 300, ("release", "C", NEVER_READY)),  # the rollback commit comes 5 minutes later
    ("11-09", "09:00", 0, ("source", "D", "fourth edition")),
    ("11-09", "10:00", 0, ("release", "D", GOOD)),
    ("11-09", "11:00", 0, ("promote", "dev", "uat")),
    ("11-09", "12:00", 0, ("hold", "uat", "prod")),
    ("11-09", "14:00", 0, ("abort", "prod", "not today")),
    ("11-12", "09:00", 0, ("source", "E", "fifth edition")),
    ("11-12", "10:00", 0, ("release", "E", GOOD)),
    ("11-13", "10:00", 0, ("rollback", "dev", "bad copy")),
    ("11-16", "09:00", 0, ("source", "F", "sixth edition")),
    ("11-16", "10:00", 0, ("release", "F", GOOD)),
    ("11-16", "11:00", 0, ("promote", "dev", "uat")),
    ("11-16", "12:00", 0, ("hold", "uat", "prod")),
]


def tell(root: Path, monkeypatch: pytest.MonkeyPatch) -> Story:
    """Build the story's repository at `root`; returns it with the context it was told with."""
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(root)
    ctx, cluster, registry = fake_context(root, [])
    clock = StoryClock()
    ctx.clock = ctx.workspace.clock = clock
    _dated_commits(monkeypatch, clock)
    story = Story(root, ctx, cluster, clock)
    for day, time, tick, (what, a, b) in STEPS:
        story.at(day, time, tick)
        if what == "release":
            registry.revision = story.sources[a]  # the image was built from that source commit
        if what == "source":
            story.source(a, b)
        elif what == "release" and b == NEVER_READY:
            with pytest.raises(GateFailed):
                deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(b,)))
        elif what == "release":
            story.releases[a] = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(b,))).release.id
        elif what == "promote":
            deploy.promote(ctx, a, b)
        elif what == "hold":
            deploy.promote(ctx, a, b, None, deploy.PromoteOptions(canary_weight=10, hold=True))
        elif what == "abort":
            deploy.abort(ctx, a, b)
        elif what == "rollback":
            deploy.rollback(ctx, a, None, None, b)
    story.clock.current, story.clock.tick = NOW, 0.0
    return story
