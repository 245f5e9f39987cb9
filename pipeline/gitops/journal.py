"""The journal of overlays being written: until a change is committed, a file in
.git/ship-writing names the overlay and the writing process (host, pid). A run killed in between
(SIGKILL, a lost CI runner) leaves its half-written overlay; the next run (`recover`) puts it back
as git has it before reading anything. A run still at work, or stopped by an error or Ctrl-C
(`published` puts its overlay back at once), is left alone. Never talks to a cluster.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from pipeline import process
from pipeline.config import Environment
from pipeline.gitops.git import Commit, GitRepo
from pipeline.progress import Progress, quiet


class Journal:
    """The journal of one clone's overlays being written (.git/ship-writing/ENV.json)."""

    def __init__(self, git: GitRepo):
        self.git = git
        self.folder = Path(git.repo.git_dir) / "ship-writing"

    def path(self, env: Environment) -> Path:
        return self.folder / f"{env.name}.json"

    def begin(self, env: Environment) -> None:
        """Before an overlay changes: say who is writing it, for `recover` should this run die."""
        path = self.path(env)
        path.parent.mkdir(exist_ok=True)
        # Written whole or not at all (a kill can land mid-write too): a temporary file, renamed.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps(
                {"overlay": str(env.folder), "host": socket.gethostname(), "pid": os.getpid()}
            )
        )
        os.replace(tmp, path)

    def done(self, env: Environment) -> None:
        self.path(env).unlink(missing_ok=True)

    def published(
        self, env: Environment, write: Callable[[], tuple[list[str], str] | None], *, push: bool
    ) -> Commit | None:
        """`git.publish(write)`; whatever stops it (an error, Ctrl-C) puts ENV's overlay back at
        once."""
        try:
            commit = self.git.publish(write, push=push)
        except BaseException:
            if self.path(env).exists() and self.git.dirty_paths(str(env.folder)):
                self.git.discard(str(env.folder))
            self.done(env)
            raise
        self.done(env)
        return commit

    def recover(self, progress: Progress = quiet) -> list[str]:
        """Put back, as git has them, the overlays a ship run was writing when it died; the
        overlays."""
        restored = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                entry = json.loads(path.read_text())
                overlay, pid = str(entry["overlay"]), int(entry["pid"])
            except (ValueError, KeyError, TypeError):
                # not a journal ship wrote whole: nothing to go by
                progress(f"{path}: not a journal ship can read; removed")
                path.unlink()
                continue
            if not process.dead_here(entry["host"], pid):
                continue  # a run still at work (it holds the environment's lock)
            if self.git.dirty_paths(overlay):
                self.git.discard(overlay)
                progress(f"{overlay}: put back as git has it; process {pid} died while writing it")
                restored.append(overlay)
            path.unlink()
        return restored
