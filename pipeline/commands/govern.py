"""The governance commands: freeze and unfreeze an environment by hand, and explain its policy.

`ship freeze ENV` and `ship unfreeze ENV` are commits (environments/ENV/freeze.yaml, with
`Ship-Freeze-*` trailers), so who stopped the line, when and why is in git. `ship policy ENV`
changes nothing: it prints every rule a change into ENV meets, whether it holds now, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import names
from pipeline.commands.text import table_text
from pipeline.context import Context
from pipeline.errors import ConfigError
from pipeline.gitops.git import Commit
from pipeline.names import FREEZE_FILE
from pipeline.policy import guard, rules
from pipeline.policy.freeze import ManualFreeze, parse_until, utc_text


@dataclass(kw_only=True)
class FreezeResult:
    environment: str
    frozen: bool  # after the command
    freeze: ManualFreeze | None  # the freeze set, or the one lifted
    commit: Commit | None  # None when nothing had to change
    still: list[str]  # freezes that still hold after an unfreeze (windows)

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "frozen": self.frozen,
            "commit": self.commit.sha if self.commit else None,
            "freeze": self.freeze.__dict__ if self.freeze else None,
            "still_frozen_by": self.still,
        }

    def text(self) -> str:
        env, f = self.environment, self.freeze
        if self.frozen and f is not None:
            until = f" until {f.until}" if f.until else f" until `ship unfreeze {env}`"
            done = (
                f"froze {env}{until}: {f.reason}"
                if self.commit
                else f"{env} is already frozen{until}: {f.reason}"
            )
            return done + (f" (commit {self.commit.short})" if self.commit else "")
        if f is None:
            return f"{env} was not frozen by hand; nothing to do"
        return f"unfroze {env} (commit {self.commit.short if self.commit else '-'})"

    def notes(self) -> list[str]:
        return [f"{self.environment} stays frozen by {s}" for s in self.still]


def freeze(ctx: Context, env_name: str, reason: str, until: str | None = None) -> FreezeResult:
    """Freeze ENV by hand until `until` (a time, or a span such as 4h) or until ship unfreeze."""
    names.check_text(reason, "--reason")
    env = ctx.config.env(env_name)
    if not reason.strip():
        raise ConfigError("ship freeze needs --reason TEXT: why the line stops is recorded in git")
    try:
        ends = utc_text(parse_until(until, ctx.clock.now())) if until else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    state = ManualFreeze(reason.strip(), guard.actor(ctx), ctx.clock.iso(), ends)
    current, _ = guard.manual_freeze(ctx, env)
    if current is not None and (current.reason, current.until) == (state.reason, state.until):
        return FreezeResult(
            environment=env.name, frozen=True, freeze=current, commit=None, still=[]
        )
    title = f"freeze({env.name}): {state.reason}" + (f" (until {ends})" if ends else "")
    message = names.commit_message(
        title,
        "freeze",
        {
            "Environment": env.name,
            names.FREEZE_REASON: state.reason,
            names.FREEZE_UNTIL: ends,
            "By": state.by,
        },
    )
    commit = ctx.workspace.publish_state(env, {FREEZE_FILE: state.dumps()}, message)
    ctx.progress(
        f"{env.name} is frozen: ship release and ship "
        "promote into it refuse (exit 75) until it is lifted"
    )
    return FreezeResult(environment=env.name, frozen=True, freeze=state, commit=commit, still=[])


def unfreeze(ctx: Context, env_name: str, reason: str = "") -> FreezeResult:
    """Lift ENV's freeze by hand (a commit); windows in ship.yaml still hold when they do."""
    names.check_text(reason, "--reason")
    env = ctx.config.env(env_name)
    current, _ = guard.manual_freeze(ctx, env)
    commit = None
    if current is not None:
        title = f"unfreeze({env.name})" + (f": {reason}" if reason else "")
        commit = ctx.workspace.publish_state(
            env,
            {FREEZE_FILE: None},
            names.commit_message(
                title,
                "unfreeze",
                {
                    "Environment": env.name,
                    names.FREEZE_REASON: reason or None,
                    "By": guard.actor(ctx),
                },
            ),
        )
    still = [f.source for f in guard.freezes(ctx, env)]
    return FreezeResult(
        environment=env.name, frozen=False, freeze=current, commit=commit, still=still
    )


@dataclass
class PolicyReport:
    view: rules.PolicyView

    def to_json(self) -> dict:
        v = self.view
        return {
            "environment": v.environment,
            "at": utc_text(v.at),
            "frozen": bool(v.freezes),
            "frozen_by": [
                {
                    "source": f.source,
                    "reason": f.reason,
                    "until": utc_text(f.until) if f.until else None,
                }
                for f in v.freezes
            ],
            "rules": [r.to_json() for r in v.rules],
        }

    def text(self) -> str:
        rows = [(r.rule, r.now, r.why) for r in self.view.rules]
        return self.view.headline + "\n" + table_text(("RULE", "NOW", "WHY"), rows, width=220)


def policy(ctx: Context, env_name: str) -> PolicyReport:
    env = ctx.config.env(env_name)
    state, commit = guard.manual_freeze(ctx, env)
    return PolicyReport(rules.view(env, state, commit, ctx.clock.now()))
