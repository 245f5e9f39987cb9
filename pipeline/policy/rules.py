"""`ship policy ENV`: every rule a change into ENV meets, whether it holds now, and why. Pure.

The rules come from ship.yaml's `policy:` section and from git (a freeze by hand); the moment
is the caller's. Approvals are named but not enforced here: they are the required reviewers of
the GitHub environment the workflow's job runs in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from pipeline.config import windows
from pipeline.config.model import Environment
from pipeline.names import FREEZE_FILE
from pipeline.policy.freeze import (
    Freeze,
    ManualFreeze,
    holding,
    manual_source,
    parse_moment,
    utc_text,
)


@dataclass(frozen=True)
class Rule:
    rule: str  # what it governs
    now: str  # what it means at this moment
    why: str  # where it comes from

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyView:
    environment: str
    at: dt.datetime
    freezes: list[Freeze]  # what holds the environment now; empty when open
    rules: list[Rule]

    @property
    def headline(self) -> str:
        if self.freezes:
            return (
                f"{self.freezes[0].line()}: releases and "
                "promotions are refused (--override-freeze --reason "
                "TEXT goes through, recorded); rollbacks and aborts go through"
            )
        return (
            f"{self.environment} is open at {utc_text(self.at)}: "
            "releases and promotions go through the checks below"
        )


def _manual(
    env: Environment, manual: ManualFreeze | None, commit: str | None, now: dt.datetime
) -> Rule:
    where = f"{env.folder / FREEZE_FILE}"
    if manual is None:
        return Rule(
            "freeze by hand", "none", f"no {where} (ship freeze {env.name} --reason TEXT sets one)"
        )
    source = f"{where}, {manual_source(manual, commit)}"
    if not manual.holds(now):
        return Rule(
            "freeze by hand",
            f"expired at {manual.until}",
            f"{source}; ship unfreeze {env.name} removes it",
        )
    until = (
        f"until {utc_text(parse_moment(manual.until))}"
        if manual.until
        else f"until ship unfreeze {env.name}"
    )
    return Rule("freeze by hand", f"FROZEN {until}: {manual.reason}", source)


def _window(env: Environment, index: int, window: windows.FreezeWindow, now: dt.datetime) -> Rule:
    current = windows.occurrence(window, now)
    if current.holds(now):
        state = f"FROZEN since {utc_text(current.since)} until {utc_text(current.until)}"
    else:
        upcoming = windows.next_start(window, now)
        state = (
            f"open; next from {utc_text(upcoming)}"
            if upcoming
            else f"over (ended {utc_text(current.until)})"
        )
    return Rule(
        f"window {window.name!r}",
        state,
        f"ship.yaml environments.{env.name}.policy.freeze[{index}]: "
        f"{window.spec} {window.timezone}",
    )


def _canary(env: Environment) -> Rule:
    canary = env.canary
    assert canary is not None  # only called for an environment with a canary policy
    longest = max(s.bake for s in canary.steps)
    extend = (
        f"; still undecided after a step's bake, it goes on up to {canary.max_bake:g}s, then fails"
        if canary.max_bake
        else "; still undecided at the end of a step's bake, it fails"
    )
    return Rule(
        "canary judged on",
        "; ".join(canary.inputs()) + extend + " (silence never passes)",
        f"ship.yaml environments.{env.name}.canary (traffic, "
        f"http, prometheus; longest bake {longest:g}s)",
    )


def view(
    env: Environment, manual: ManualFreeze | None, commit: str | None, now: dt.datetime
) -> PolicyView:
    """What applies to ENV at `now` and why."""
    policy, key = env.policy, env.policy.public_key
    rules = [_manual(env, manual, commit, now)]
    rules += [_window(env, i, w, now) for i, w in enumerate(policy.freeze)]
    if not policy.freeze:
        rules.append(
            Rule(
                "freeze windows",
                "none",
                f"ship.yaml environments.{env.name}.policy.freeze is empty",
            )
        )
    if policy.require_signature:
        signatures = (
            f"required: every pinned image signed with {key}, checked before anything is written"
        )
    else:
        signatures = "not required" + (f" (ship verify checks them with {key})" if key else "")
    rules += [
        Rule(
            "signatures",
            signatures,
            f"policy.require_signature: {str(policy.require_signature).lower()}"
            + ("" if policy.require_signature else " (the default)"),
        ),
        Rule(
            "older images",
            "allowed"
            if policy.allow_older
            else "an image built before the current release's commit is "
            "refused unless ship release --allow-older (recorded in the commit)",
            f"policy.allow_older: {str(policy.allow_older).lower()}"
            + ("" if policy.allow_older else " (the default)"),
        ),
        Rule(
            "approvals",
            f"left to GitHub: the required reviewers of GitHub environment {env.name!r}",
            f"the workflow's {env.name} job runs in that environment",
        ),
        Rule(
            "rollback, abort",
            "always allowed",
            "taking a change back is never frozen, and its release was checked when it came in",
        ),
    ]
    if env.canary is not None:
        rules.insert(-1, _canary(env))
    return PolicyView(env.name, now, holding(env.name, policy.freeze, manual, commit, now), rules)
