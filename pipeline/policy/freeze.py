"""What holds an environment frozen at a moment: its windows, and a freeze by hand. Pure.

`ship freeze ENV` commits `environments/ENV/freeze.yaml` (reason, who, when, an optional end)
and `ship unfreeze ENV` deletes it, so the freeze, like everything else, is in git with an
author and a commit to name. It is no kustomize resource: kustomize never reads it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pipeline import yamlsafe
from pipeline.config import windows
from pipeline.errors import ConfigError

HEADER = (
    "# Written by `ship freeze`: this environment refuses "
    "releases and promotions. `ship unfreeze` lifts it.\n"
)
_AFTER = re.compile(r"^(\d+)\s*(m|h|d)$")


def utc_text(moment: dt.datetime) -> str:
    """A moment as ship writes it: 2026-11-27T15:00:00Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(text: str) -> dt.datetime:
    """A moment from 2026-11-27T15:00:00Z, 2026-11-27T16:00+01:00 or 2026-11-27 15:00 (UTC)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time such as 2026-12-01T08:00+01:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def parse_until(text: str, now: dt.datetime) -> dt.datetime:
    """`--until`: a time (2026-12-01T08:00+01:00; no offset is UTC) or a span from now (90m, 4h,
    2d)."""
    after = _AFTER.match(text.strip())
    if after:
        unit = {"m": 60, "h": 3600, "d": 86400}[after.group(2)]
        until = now + dt.timedelta(seconds=int(after.group(1)) * unit)
    else:
        until = parse_moment(text)
    if until <= now:
        raise ValueError(f"--until {text}: {utc_text(until)} is not in the future")
    return until


@dataclass(frozen=True)
class ManualFreeze:
    """A freeze by hand, as freeze.yaml records it."""

    reason: str
    by: str
    at: str  # when it was set (UTC, ship's format)
    until: str | None = None  # when it lifts by itself; None: at `ship unfreeze`

    def holds(self, now: dt.datetime) -> bool:
        return self.until is None or now < parse_moment(self.until)

    def dumps(self) -> str:
        data = {"reason": self.reason, "by": self.by, "at": self.at}
        return HEADER + yamlsafe.dumps({**data, **({"until": self.until} if self.until else {})})

    @classmethod
    def parse(cls, text: str | None, source: str) -> ManualFreeze | None:
        if not text:
            return None
        data = yamlsafe.loads(text, source)
        if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
            raise ConfigError(
                f"{source}: expected a mapping with a reason (written by ship freeze)"
            )
        try:
            until = data.get("until")
            if until is not None:
                parse_moment(str(until))
        except ValueError as exc:
            raise ConfigError(f"{source}: until: {exc}") from None
        return cls(
            data["reason"],
            str(data.get("by", "")),
            str(data.get("at", "")),
            None if until is None else str(until),
        )


@dataclass(frozen=True)
class Freeze:
    """One reason an environment is frozen now: a window of ship.yaml, or a freeze by hand."""

    environment: str
    # `window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin)` or `freeze commit 3f2a1bc`
    source: str
    reason: str  # the window's name, or the reason given to ship freeze
    until: dt.datetime | None  # None: until someone runs ship unfreeze

    def line(self) -> str:
        """`prod is frozen by window 'weekend' (…) until 2026-11-30T07:00:00Z`, one line."""
        until = f" until {utc_text(self.until)}" if self.until else " until `ship unfreeze`"
        why = f": {self.reason}" if self.source.startswith("freeze") else ""
        return f"{self.environment} is frozen by {self.source}{why}{until}"


def manual_source(freeze: ManualFreeze, commit: str | None) -> str:
    """How a refusal names a freeze by hand: its commit, and who set it when."""
    return f"freeze commit {commit or '(not committed)'} ({freeze.by}, {freeze.at})"


def holding(
    environment: str,
    frozen_windows: tuple[windows.FreezeWindow, ...],
    manual: ManualFreeze | None,
    commit: str | None,
    now: dt.datetime,
) -> list[Freeze]:
    """Every freeze holding `environment` at `now`: the freeze by hand first, then windows, the
    longest-lasting first."""
    held: list[Freeze] = []
    if manual is not None and manual.holds(now):
        until = parse_moment(manual.until) if manual.until else None
        held.append(Freeze(environment, manual_source(manual, commit), manual.reason, until))
    held += [
        Freeze(environment, o.window.describe(), o.window.name, o.until)
        for o in windows.active(frozen_windows, now)
    ]
    return held
