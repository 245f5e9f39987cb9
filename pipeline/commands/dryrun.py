"""`--dry-run`: a command rehearsed on a throwaway clone of the repository.

The clone has no remote, so nothing is pushed; its context is a rehearsal, so a sync only
dry-runs (server-side, against the real cluster: the same answers a sync would get) and nothing
is gated. What the command committed in the clone is the commit it would write; a server-side
diff of each environment, rendered from the clone's overlay, is what a sync would apply. Never
writes to the user's repository, its remote or the cluster. (A promotion with a canary is
rehearsed as a direct one: the commit shown is the full promotion's.)
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.context import Context
from pipeline.errors import GitError
from pipeline.gitops.git import GitRepo
from pipeline.gitops.workspace import Workspace
from pipeline.rollout.sync import ObjectDiff, diff_environment


@dataclass(frozen=True)
class PlannedCommit:
    subject: str
    body: str
    files: list[str]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class DryRunResult:
    commits: list[PlannedCommit]
    applies: dict[str, list[ObjectDiff]]  # what a sync would change, by environment

    def to_json(self) -> dict:
        return {
            "dry_run": True,
            "commits": [c.to_json() for c in self.commits],
            "sync": {env: [d.to_json() for d in diffs] for env, diffs in self.applies.items()},
        }

    def text(self) -> str:
        lines = [] if self.commits else ["would commit nothing"]
        for c in self.commits:
            lines += [f"would commit: {c.subject}", *(f"  {f}" for f in c.files)]
        for env, diffs in self.applies.items():
            lines += (
                [f"a sync of {env} would apply:", *(f"  {d.subject} {d.action}" for d in diffs)]
                if diffs
                else [f"a sync of {env} would change nothing"]
            )
        return "\n".join(lines)

    def notes(self) -> list[str]:
        return ["dry run: nothing was written, pushed or applied"]


def _git(cwd: Path, *args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise GitError(
            f"dry run: git {args[0]} failed: {(exc.stderr or '').strip().splitlines()[-1:]}"
        ) from exc


def _identity(top: Path, clone: Path) -> None:
    """The clone commits as the user would (git's identity, repository or global)."""
    for key in ("user.name", "user.email"):
        value = subprocess.run(
            ["git", "config", "--get", key], cwd=top, capture_output=True, text=True
        ).stdout.strip()
        if value:
            _git(clone, "config", key, value)


def _commits(clone: Path, before: str) -> list[PlannedCommit]:
    out = []
    for rev in _git(clone, "rev-list", "--reverse", f"{before}..HEAD").split():
        subject, _, body = _git(clone, "show", "-s", "--format=%s%n%b", rev).partition("\n")
        files = _git(clone, "diff-tree", "--no-commit-id", "--name-only", "-r", rev).split()
        out.append(PlannedCommit(subject, body.strip(), files))
    return out


def rehearse(ctx: Context, env_names: list[str], act: Callable[[Context], Any]) -> DryRunResult:
    """Run `act` on a clone of the repository at HEAD (no remote, a rehearsal context sharing
    ctx's connections); the commits it wrote there, and what a sync of each env would apply."""
    top = Path(_git(ctx.config.root, "rev-parse", "--show-toplevel").strip())
    where = ctx.config.root.resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="ship-dry-run-") as tmp:
        clone = Path(tmp) / "repo"
        _git(top, "clone", "--quiet", "--shared", "--no-tags", str(top), str(clone))
        _git(clone, "remote", "remove", "origin")  # nothing can be pushed, nor fetched
        _identity(top, clone)
        root = clone / where
        workspace = Workspace(root, GitRepo(root), ctx.clock)
        rehearsal = dataclasses.replace(
            ctx, config=config.load(root), workspace=workspace, rehearsal=True
        )
        before = _git(clone, "rev-parse", "HEAD").strip()
        act(rehearsal)
        commits = _commits(clone, before)
        applies = {
            name: diff_environment(rehearsal, rehearsal.config.env(name)) for name in env_names
        }
    return DryRunResult(commits, applies)
