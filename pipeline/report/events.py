"""ship's history as events: every commit ship made about an environment, read from git's log.

    git log ─► Event(time, action, environment, app, release, outcome, …), oldest first

Each commit ship makes says what it did in its `Ship-*` trailers (names.commit_message):
release, promote, canary, record (an outcome), abort, rollback. A rollback commit says what
became of both releases (`Ship-Outcome`, `Ship-Replaced-Outcome`); for one made before it
said so, the environment's ledger at that commit does. Reads git; never writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import git

from pipeline import names
from pipeline.config import ShipConfig, Slot
from pipeline.errors import ConfigError, GitError
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome

ACTIONS = ("release", "promote", "canary", "record", "abort", "rollback")
_FIELD, _RECORD = "\x1f", "\x1e"
LOG_FORMAT = "%H%x1f%ct%x1f%B%x1e"


@dataclass(frozen=True)
class Event:
    """One commit ship made: what it did to which release of which app in which environment."""

    sha: str
    time: dt.datetime  # committer time, UTC
    action: str  # one of ACTIONS
    environment: str
    app: str
    release: str
    title: str  # the commit's subject
    outcome: str = ""  # record and rollback: what became of `release`
    replaced: str = ""  # rollback: the release it replaced
    replaced_outcome: str = ""  # rollback: what became of the replaced release
    source: str = ""  # the release's source commit, when the commit names it
    image: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "sha": self.sha,
            "time": iso(self.time),
            "action": self.action,
            "environment": self.environment,
            "app": self.app,
            "release": self.release,
            "title": self.title,
            "outcome": self.outcome,
            "replaced": self.replaced,
        }


def iso(time: dt.datetime) -> str:
    return time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_log(text: str) -> list[Event]:
    """Events from `git log --format=LOG_FORMAT` output; commits without ship's trailers are
    skipped."""
    events = []
    for chunk in text.split(_RECORD):
        chunk = chunk.strip("\n")
        if not chunk:
            continue
        sha, stamp, body = chunk.split(_FIELD, 2)
        fields = names.trailers(body)
        action = fields.get("Action", "")
        # a commit about several apps (a unit) names them `APP@ID, …` in its Apps trailer
        refs = [r.strip().partition("@") for r in fields.get("Apps", "").split(",") if "@" in r]
        if fields.get("Release"):
            refs = [(fields.get("App", ""), "@", fields["Release"])]
        if action not in ACTIONS or not fields.get("Environment") or not refs:
            continue
        outcome = fields.get("Outcome", "")
        if action == "abort":
            outcome = Outcome.REJECTED.value
        for app, _, release in refs:
            events.append(
                Event(
                    sha=sha,
                    time=dt.datetime.fromtimestamp(int(stamp), dt.UTC),
                    action=action,
                    environment=fields["Environment"],
                    app=app,
                    release=release,
                    title=body.split("\n", 1)[0].strip(),
                    outcome=outcome,
                    replaced=fields.get("Replaced", ""),
                    replaced_outcome=fields.get("Replaced-Outcome", ""),
                    source=fields.get("Commit", ""),
                    image=fields.get("Image", ""),
                )
            )
    return events


# (commit, environment, app) -> the app's ledger there then
LedgerAt = Callable[[str, str, str], "Ledger | None"]


def complete_rollbacks(events: list[Event], ledger_at: LedgerAt) -> list[Event]:
    """Rollback events with both outcomes filled in, from the ledger at their commit when the
    commit predates the trailers that say them."""
    out = []
    for e in events:
        if e.action == "rollback" and not (e.outcome and (e.replaced_outcome or not e.replaced)):
            ledger = ledger_at(e.sha, e.environment, e.app)
            target = ledger.find(e.release) if ledger else None
            old = ledger.find(e.replaced) if ledger and e.replaced else None
            e = replace(
                e,
                outcome=e.outcome
                or (target.outcome.value if target else Outcome.ROLLED_BACK_TO.value),
                replaced_outcome=e.replaced_outcome or (old.outcome.value if old else ""),
            )
        out.append(e)
    return out


def read_events(repo: git.Repo, cfg: ShipConfig) -> list[Event]:
    """Every event in the history of HEAD, oldest first (parents before children)."""
    try:
        text = repo.git.log(
            "--date-order", "--reverse", f"--format={LOG_FORMAT}", "--grep=^Ship-Action: "
        )
    except git.GitCommandError as exc:
        if "does not have any commits" in (exc.stderr or ""):
            return []
        raise GitError(f"git log failed: {exc.stderr.strip() if exc.stderr else exc}") from exc
    top = Path(repo.working_tree_dir or cfg.root)
    prefix = (
        cfg.root.resolve().relative_to(top.resolve())
        if cfg.root.resolve() != top.resolve()
        else Path()
    )

    def ledger_at(sha: str, env_name: str, app: str) -> Ledger | None:
        env = cfg.environments.get(env_name)
        if env is None:
            return None
        # the one-app layout had it at the top
        for folder in ([Slot(env, app).overlay] if app else []) + [env.folder]:
            path = (prefix / folder / LEDGER_FILE).as_posix()
            try:
                return Ledger.parse(repo.git.show(f"{sha}:{path}"), f"{sha[:7]}:{path}")
            except (git.GitCommandError, ConfigError):
                continue
        return None

    return complete_rollbacks(parse_log(text), ledger_at)
