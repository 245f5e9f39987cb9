"""DORA metrics from a real repository whose history has known answers (tests/report/story.py),
and the replay rules on hand-made events."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from pipeline.commands import observe
from pipeline.report import metrics as dora
from pipeline.report.deployments import replay
from pipeline.report.events import Event, complete_rollbacks, parse_log
from tests.report.story import NOW

pytestmark = pytest.mark.slow  # the story repository takes a while to tell; `make unit` skips it

H, M = 3600.0, 60.0


def by_env(report) -> dict[str, dict]:
    return {e["environment"]: e for e in report.to_json()["environments"]}


def test_the_four_keys_per_environment_over_30_days(story):
    envs = by_env(observe.metrics(story.ctx, None, "30d"))
    dev, uat, prod = envs["dev"]["apps"]["hellok8s"], envs["uat"]["apps"]["hellok8s"], envs["prod"]["apps"]["hellok8s"]
    # dev: A B D E F ran healthy; C was rejected by its gate, E rolled back by hand a day later.
    assert (dev["deployments"], dev["decided"], dev["failed"], dev["change_failure_rate"]) == (5, 6, 2, 0.3333)
    assert dev["per_week"] == round(5 / 30 * 7, 2)
    assert dev["lead_time"] == {"median": 1 * H, "p90": 1 * H, "count": 5}  # 30m, 1h, 1h, 1h, 1h
    assert dev["time_to_restore"] == {"median": 5 * M, "p90": 24 * H, "count": 2}  # C: 5m; E: 1d
    assert dev["failing_since"] is None
    # uat: A B D F, lead times 2h 1h 2h 2h, nothing failed.
    assert (uat["deployments"], uat["change_failure_rate"]) == (4, 0.0)
    assert uat["lead_time"] == {"median": 2 * H, "p90": 2 * H, "count": 4}
    assert uat["time_to_restore"]["count"] == 0
    # prod: A (3h) and B's canary (2h) ran healthy; D's canary was aborted 2h after it went out;
    # F's canary is held, so it is not decided yet.
    assert (prod["deployments"], prod["decided"], prod["failed"]) == (2, 3, 1)
    assert prod["lead_time"] == {"median": 2 * H, "p90": 3 * H, "count": 2}
    assert prod["time_to_restore"] == {"median": 2 * H, "p90": 2 * H, "count": 1}


def test_a_shorter_window_counts_only_what_was_decided_in_it(story):
    envs = by_env(observe.metrics(story.ctx, None, "7d"))  # Nov 14 12:00 → Nov 21 12:00: only F
    dev = envs["dev"]["apps"]["hellok8s"]
    assert (dev["deployments"], dev["decided"], dev["failed"], dev["time_to_restore"]["count"]) == (1, 1, 0, 0)
    assert envs["prod"]["apps"]["hellok8s"]["decided"] == 0
    assert observe.metrics(story.ctx, "uat", "2026-11-09T10:30:00").to_json()["environments"][0]["deployments"] == 2


def test_metrics_text_and_json_through_the_cli(story, monkeypatch):
    from pipeline.cli import app

    monkeypatch.chdir(story.root)
    monkeypatch.setattr("pipeline.commands.context.Clock", lambda: story.clock)
    out = CliRunner().invoke(app, ["metrics", "dev"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == "DORA metrics from git, 2026-10-22 12:00 → 2026-11-21 12:00 UTC (30 days)"
    assert lines[1].split() == ["ENV", "APP", "DEPLOYS", "FREQUENCY", "LEAD", "TIME", "LEAD", "P90", "CHANGE", "FAILURE",
                                "RESTORE", "RESTORE", "P90"]
    assert lines[2].split() == ["dev", "hellok8s", "5", "1.2/week", "1h", "1h", "33%", "(2", "of", "6)", "5m", "1d"]
    data = json.loads(CliRunner().invoke(app, ["metrics", "--since", "30d", "--output", "json"]).stdout)
    assert [e["environment"] for e in data["environments"]] == ["dev", "uat", "prod"]
    assert data["since"] == "2026-10-22T12:00:00Z" and data["until"] == "2026-11-21T12:00:00Z"
    bad = CliRunner().invoke(app, ["metrics", "--since", "a while"])
    assert bad.exit_code == 1 and bad.stderr.startswith("ConfigError: --since 'a while': expected a span")


def test_summary_carries_the_headline_numbers(story):
    from pipeline.commands import inspect

    text = inspect.summary(story.ctx, "ship").text()
    assert ("- dev: 5 deployments (1.2/week), lead time 1h (p90 1h), 33% (2 of 6) failed, restored in 5m (median)"
            in text.splitlines())
    assert "- uat: 4 deployments (0.9/week), lead time 2h (p90 2h), 0% (0 of 4) failed" in text.splitlines()


def event(action: str, release: str, minute: int, **kw) -> Event:
    return Event(f"{minute:040d}", NOW + dt.timedelta(minutes=minute), action, "prod", "shop", release,
                 f"{action}(prod): shop {release}", **kw)


def test_replay_rules_for_a_failure_with_nothing_to_roll_back_to():
    r1 = "r20261121-110000-aaaaaaa"
    history = replay([event("release", r1, 0), event("record", r1, 2, outcome="rejected")])
    (d,), (rec,) = history.deployments, history.recoveries
    assert (d.result, d.lead_time, rec.restored) == ("rejected", None, None)
    win = dora.Window(NOW, NOW + dt.timedelta(hours=1))
    assert dora.figures(history, win).failing_since == NOW
    r2 = "r20261121-115000-bbbbbbb"
    history = replay([event("release", r1, 0), event("record", r1, 2, outcome="rejected"),
                      event("release", r2, 30), event("record", r2, 31, outcome="healthy")])
    assert history.recoveries[0].duration == 31 * M and history.deployments[1].lead_time == 41 * M


def test_a_rollback_that_failed_its_own_gate_does_not_restore():
    a, b = "r20261121-100000-aaaaaaa", "r20261121-110000-bbbbbbb"
    history = replay([event("release", a, 0), event("record", a, 1, outcome="healthy"), event("release", b, 10),
                      event("rollback", a, 15, replaced=b, outcome="rollback failed", replaced_outcome="rejected")])
    assert history.deployments[1].failure == "rejected" and history.recoveries[0].restored is None


def test_rollback_commits_from_before_the_outcome_trailers_are_read_from_the_ledger_then():
    log = ("1" * 40 + "\x1f1763722800\x1frollback(prod): r2 → r1: bad\n\nShip-Action: rollback\nShip-Release: r1\n"
           "Ship-App: shop\nShip-Environment: prod\nShip-Replaced: r2\n\x1e")
    (e,) = parse_log(log)
    assert (e.action, e.release, e.replaced, e.outcome) == ("rollback", "r1", "r2", "")

    class Ledger:
        def find(self, rid):
            outcome = {"r1": "rolled back to", "r2": "rolled back"}[rid]
            return type("E", (), {"outcome": type("O", (), {"value": outcome})()})()

    (done,) = complete_rollbacks([e], lambda sha, env, app: Ledger())
    assert (done.outcome, done.replaced_outcome) == ("rolled back to", "rolled back")


def test_percentiles_are_nearest_rank_and_durations_read_well():
    assert dora.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9 and dora.median([3, 1, 2]) == 2
    assert dora.percentile([], 50) is None
    assert [dora.duration_text(s) for s in (None, 45, 300, 330, 3600, 3660, 86400, 93600)] == \
        ["-", "45s", "5m", "5m 30s", "1h", "1h 1m", "1d", "1d 2h"]
