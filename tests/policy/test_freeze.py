"""The freeze by hand (freeze.yaml), --until, and what holds an environment at a moment. Pure."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.config.model import CanaryPolicy, Environment, Policy, TrafficInput
from pipeline.config.windows import make_window
from pipeline.errors import ConfigError
from pipeline.policy import rules
from pipeline.policy.freeze import ManualFreeze, holding, parse_until

NOW = dt.datetime(2026, 11, 27, 15, 30, tzinfo=dt.UTC)  # a Friday, 16:30 in Berlin
WEEKEND = make_window("weekend", "Fri 16:00", "Mon 08:00", "Europe/Berlin")


def test_until_takes_a_span_or_a_time():
    assert parse_until("4h", NOW) == NOW + dt.timedelta(hours=4)
    assert parse_until("90m", NOW) == NOW + dt.timedelta(minutes=90)
    assert parse_until("2d", NOW) == NOW + dt.timedelta(days=2)
    assert parse_until("2026-12-01T08:00+01:00", NOW) == dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)
    assert parse_until("2026-12-01 08:00", NOW) == dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)  # no offset: UTC
    with pytest.raises(ValueError, match="is not in the future"):
        parse_until("2026-11-01T00:00Z", NOW)
    with pytest.raises(ValueError, match="is not a time"):
        parse_until("next tuesday", NOW)


def test_a_freeze_by_hand_round_trips_and_lifts_at_its_end():
    state = ManualFreeze("payment incident", "Ann <ann@example.com>", "2026-11-27T15:00:00Z", "2026-11-27T19:00:00Z")
    again = ManualFreeze.parse(state.dumps(), "environments/prod/freeze.yaml")
    assert again == state and state.dumps().startswith("# Written by `ship freeze`")
    assert again.holds(NOW) and not again.holds(dt.datetime(2026, 11, 27, 19, 0, tzinfo=dt.UTC))
    assert ManualFreeze.parse(None, "f") is None
    with pytest.raises(ConfigError, match="freeze.yaml: expected a mapping with a reason"):
        ManualFreeze.parse("just: text\n", "environments/prod/freeze.yaml")


def test_holding_names_the_freeze_commit_first_then_windows():
    manual = ManualFreeze("payment incident", "Ann", "2026-11-27T15:00:00Z")
    held = holding("prod", (WEEKEND,), manual, "3f2a1bc", NOW)
    assert [h.line() for h in held] == [
        "prod is frozen by freeze commit 3f2a1bc (Ann, 2026-11-27T15:00:00Z): payment incident until `ship unfreeze`",
        "prod is frozen by window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin) until 2026-11-30T07:00:00Z",
    ]
    assert holding("prod", (WEEKEND,), None, None, NOW - dt.timedelta(hours=1)) == []


def test_policy_view_says_what_holds_now_and_why():
    env = Environment("prod", "p", policy=Policy(require_signature=True, public_key="keys/cosign.pub", freeze=(WEEKEND,)))
    view = rules.view(env, None, None, NOW)
    assert view.headline.startswith("prod is frozen by window 'weekend'") and "rollbacks and aborts go through" in view.headline
    by_rule = {r.rule: r for r in view.rules}
    assert by_rule["window 'weekend'"].now == "FROZEN since 2026-11-27T15:00:00Z until 2026-11-30T07:00:00Z"
    assert by_rule["window 'weekend'"].why == "ship.yaml environments.prod.policy.freeze[0]: Fri 16:00 – Mon 08:00 Europe/Berlin"
    assert by_rule["freeze by hand"].now == "none"
    assert by_rule["signatures"].now.startswith("required: every pinned image signed with keys/cosign.pub")
    assert by_rule["older images"].now.endswith("refused unless ship release --allow-older (recorded in the commit)")
    assert "GitHub environment 'prod'" in by_rule["approvals"].now
    assert by_rule["rollback, abort"].now == "always allowed"
    monday = rules.view(env, None, None, dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC))
    assert monday.headline.startswith("prod is open at 2026-11-30T09:00:00Z")
    assert {r.rule: r.now for r in monday.rules}["window 'weekend'"] == "open; next from 2026-12-04T15:00:00Z"


def test_policy_view_of_an_expired_freeze_by_hand():
    env = Environment("dev", "d")
    expired = ManualFreeze("deploy party", "Bo", "2026-11-27T10:00:00Z", "2026-11-27T12:00:00Z")
    view = rules.view(env, expired, "abc1234", NOW)
    assert not view.freezes
    manual = view.rules[0]
    assert manual.now == "expired at 2026-11-27T12:00:00Z" and "ship unfreeze dev removes it" in manual.why
    assert {r.rule: r.now for r in view.rules}["signatures"] == "not required"


def test_policy_view_says_what_a_canary_is_judged_on():
    traffic = TrafficInput("traefik", "http://prometheus:9090")
    env = Environment("prod", "p", canary=CanaryPolicy(traffic=traffic, max_bake=300.0))
    rule = {r.rule: r for r in rules.view(env, None, None, NOW).rules}["canary judged on"]
    assert rule.now == ("users' traffic through the gateway (traefik metrics in Prometheus); still undecided after a "
                        "step's bake, it goes on up to 300s, then fails (silence never passes)")
    assert rule.why == "ship.yaml environments.prod.canary (traffic, http, prometheus; longest bake 30s)"
    bare = {r.rule: r for r in rules.view(Environment("prod", "p", canary=CanaryPolicy()), None, None, NOW).rules}
    assert bare["canary judged on"].now.startswith("rollout and pod health only: no analysis; still undecided at the end")
    assert "canary judged on" not in {r.rule for r in rules.view(Environment("dev", "d"), None, None, NOW).rules}
