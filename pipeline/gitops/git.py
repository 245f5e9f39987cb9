"""The git side of ship: is the tree clean, which commit is this, and publish a commit.

Publishing commits one change and pushes it; when the remote moved on it fetches, rebases and
retries a bounded number of times. When a rebase conflicts, ship's own commit is dropped and
the change is written again on top of the new remote state, so concurrent releases both land
with a linear history. It never force-pushes and never rewrites a commit it did not make, and it
pushes only commits it made (outgoing.py): never a commit of someone else's that HEAD holds, never
to a branch it guessed, never with other staged changes folded into its own commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git

from pipeline.errors import GitError
from pipeline.gitops import outgoing

PUSH_ATTEMPTS = 5


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    time: dt.datetime  # committer time, UTC
    subject: str


class GitRepo:
    """A working clone, with `origin` as its remote."""

    def __init__(self, root: Path, remote: str = "origin"):
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise GitError(f"{root}: not a git repository") from exc
        self.root = Path(self.repo.working_tree_dir or root)
        self.remote = remote

    def head(self) -> Commit:
        try:
            c = self.repo.head.commit
        except ValueError as exc:
            raise GitError(f"{self.root}: the repository has no commits yet") from exc
        return Commit(
            c.hexsha, c.hexsha[:7], c.committed_datetime.astimezone(dt.UTC), str(c.summary)
        )

    def last_change(self, path: str | tuple[str, ...], ignore: tuple[str, ...] = ()) -> Commit:
        """The newest commit that changed `path` (or any of several: App.sources), but for files
        matching an `ignore` glob: an app's source commit, which ship's own overlay commits never
        move, so building again after a release gives the same tag."""
        given = (path,) if isinstance(path, str) else path
        sha = self.repo.git.rev_list(
            "-1", "HEAD", "--", *given, *(f":(exclude,glob){glob}" for glob in ignore)
        )
        if not sha:
            raise GitError(f"{', '.join(given)}: not in any commit; commit it first")
        c = self.repo.commit(sha)
        return Commit(
            c.hexsha, c.hexsha[:7], c.committed_datetime.astimezone(dt.UTC), str(c.summary)
        )

    def resolve(self, rev: str) -> Commit | None:
        """The commit `rev` (a sha, short sha or ref) names in this repository, or None."""
        try:
            c = self.repo.commit(rev)
        except (ValueError, git.BadName, git.GitCommandError):
            return None
        return Commit(
            c.hexsha, c.hexsha[:7], c.committed_datetime.astimezone(dt.UTC), str(c.summary)
        )

    def is_older(self, sha: str, than: str) -> bool:
        """Whether commit `sha` comes before `than`: its ancestor, or, when neither descends from
        the other, committed earlier."""
        if sha == than or self._is_ancestor(than, sha):
            return False
        if self._is_ancestor(sha, than):
            return True
        older, newer = self.resolve(sha), self.resolve(than)
        return bool(older and newer and older.time < newer.time)

    def _is_ancestor(self, a: str, b: str) -> bool:
        try:
            self.repo.git.merge_base("--is-ancestor", a, b)
            return True
        except git.GitCommandError:
            return False

    def dirty_paths(self, under: str | None = None) -> list[str]:
        """Changed or untracked files (optionally only under a folder), as git status shows them."""
        args = ["--porcelain", "--untracked-files=all"]
        if under:
            args += ["--", under]
        out = self.repo.git.status(*args)
        return [line[3:] for line in out.splitlines() if line.strip()]

    def changes_digest(self, under: str) -> str:
        """12 hex digits naming the uncommitted state of `under` (its diff and untracked files)."""
        digest = hashlib.sha256(self.repo.git.diff("HEAD", "--", under).encode())
        for path in sorted(self.repo.untracked_files):
            if path.startswith(under.rstrip("/") + "/"):
                digest.update(path.encode() + (self.root / path).read_bytes())
        return digest.hexdigest()[:12]

    def require_clean(self, *, allow_dirty: bool = False) -> list[str]:
        """The uncommitted paths; GitError when there are any and dirt is not allowed."""
        dirty = self.dirty_paths()
        if dirty and not allow_dirty:
            more = "…" if len(dirty) > 3 else ""
            raise GitError(
                "working tree has uncommitted changes "
                f"({', '.join(dirty[:3])}{more}); a release must "
                "be traceable to a commit: commit them, or pass --allow-dirty"
            )
        return dirty

    def branch(self) -> str:
        """The branch to show (a page, a log line); publishing asks outgoing.push_branch."""
        try:
            return self.repo.active_branch.name
        except TypeError:  # detached HEAD, as in some CI checkouts
            return (
                os.environ.get("SHIP_BRANCH")
                or os.environ.get("GITHUB_REF_NAME")
                or "HEAD (detached)"
            )

    def author(self) -> str:
        try:
            reader = self.repo.config_reader()
            return f"{reader.get_value('user', 'name')} <{reader.get_value('user', 'email')}>"
        except Exception:
            return os.environ.get("GITHUB_ACTOR", os.environ.get("USER", "unknown"))

    def require_identity(self) -> None:
        """git can sign a commit with a name and email: checked before anything is written
        (once)."""
        if getattr(self, "_identity_checked", False):
            return
        try:
            self.repo.git.var("GIT_COMMITTER_IDENT")
            self._identity_checked = True
        except git.GitCommandError as exc:
            raise GitError(
                "git has no identity to commit with: set it with git config user.name NAME and "
                f"git config user.email EMAIL ({_last_line(exc.stderr)})"
            ) from exc

    def _has_remote(self) -> bool:
        return self.remote in [r.name for r in self.repo.remotes]

    def publish(
        self, write: Callable[[], tuple[list[str], str] | None], *, push: bool = True
    ) -> Commit | None:
        """Call `write()` to change files, commit what it returns, push; retry on a moved remote.

        `write` returns (paths to add or remove, commit message), or None when there is nothing
        to do. It may be called again after a conflicting rebase, on the new remote state.
        """
        self.require_identity()
        branch = outgoing.push_branch(self.repo) if push and self._has_remote() else self.branch()
        if push and self._has_remote():
            self._sync_with_remote(branch)
        for _attempt in range(PUSH_ATTEMPTS):
            result = write()
            if result is None:
                if push and self._has_remote():
                    self._push_pending(branch)
                return None
            paths, message = result
            self._commit(paths, message)
            if not push or not self._has_remote():
                return self.head()
            try:
                self._push(branch)
                return self.head()
            except git.GitCommandError as exc:
                if (
                    "rejected" not in exc.stderr
                    and "fetch first" not in exc.stderr
                    and "non-fast-forward" not in exc.stderr
                ):
                    if self._remote_has_head(branch):
                        # the connection dropped after the remote took the commit
                        return self.head()
                    self._drop_own_commit()
                    raise GitError(
                        f"git push to {self.remote}/{branch} failed: {_last_line(exc.stderr)}"
                    ) from exc
            # The remote moved on: replay our commit on top of it, or redo the change there.
            if not self._rebase_onto_remote(branch):
                self._drop_own_commit()
                self._sync_with_remote(branch)
                continue
            try:
                self._push(branch)
                return self.head()
            except git.GitCommandError:
                self._drop_own_commit()
                self._sync_with_remote(branch)
        raise GitError(
            f"git push to {self.remote}/{branch}: the remote "
            f"kept moving; gave up after {PUSH_ATTEMPTS} attempts"
        )

    def _push(self, branch: str) -> None:
        """Push HEAD, once every commit it would send is ship's own, in a line on the remote's
        tip."""
        sending = outgoing.check(self.repo, f"{self.remote}/{branch}")
        self.repo.git.push(self.remote, f"HEAD:refs/heads/{branch}")
        outgoing.pushed(self.repo, sending)

    def _remote_has_head(self, branch: str) -> bool:
        """After a failed push: did the remote take HEAD all the same? (False when it cannot be
        asked.)"""
        try:
            self.repo.git.fetch(self.remote, branch)
            self.repo.git.merge_base("--is-ancestor", "HEAD", f"{self.remote}/{branch}")
            outgoing.forget(self.repo, self.repo.head.commit.hexsha)
            return True
        except git.GitCommandError:
            return False

    def _push_pending(self, branch: str) -> None:
        """Nothing new to commit, but commits of a run killed before its push are still local:
        push them now, so what git says is what the remote says."""
        if self.repo.git.rev_list("--count", f"{self.remote}/{branch}..HEAD") == "0":
            return
        try:
            self._push(branch)
        except git.GitCommandError as exc:
            raise GitError(
                f"git push of local commits to {self.remote}/{branch} "
                f"failed: {_last_line(exc.stderr)}"
            ) from exc

    def discard(self, path: str) -> None:
        """Put `path` back as HEAD has it: staged, changed and untracked files alike."""
        try:
            self.repo.git.reset("-q", "--", path)
            if self.repo.git.ls_tree("HEAD", "--", path):
                self.repo.git.checkout("HEAD", "--", path)
            self.repo.git.clean("-fdq", "--", path)
        except git.GitCommandError as exc:
            raise GitError(
                f"{path}: could not put it back as git has it: {_last_line(exc.stderr)}"
            ) from exc

    def _commit(self, paths: list[str], message: str) -> None:
        try:
            # A file written and deleted again before any commit (a canary warmed up, then aborted)
            # is neither on disk nor in git: `git add` refuses such a pathspec, so it is left out.
            tracked = self.repo.git.ls_files("--", *paths).splitlines() if paths else []
            top = Path(str(self.repo.working_tree_dir))
            paths = [
                p
                for p in paths
                if (top / p).exists()
                or any(t == p or t.startswith(p.rstrip("/") + "/") for t in tracked)
            ]
            if paths:
                self.repo.git.add("--all", "--", *paths)
            staged = self.repo.git.diff("--cached", "--name-only").splitlines()
            if not staged:
                raise GitError("nothing to commit: the change is already in git")
            others = [
                f
                for f in staged
                if not any(f == p or f.startswith(p.rstrip("/") + "/") for p in paths)
            ]
            if others:
                self.repo.git.reset("-q", "--", *paths)
                raise GitError(
                    f"{others[0]} is staged, and ship commits only the files it wrote: unstage it "
                    "(git restore --staged) first; nothing committed"
                )
            outgoing.intend(self.repo, message)
            self.repo.git.commit("-m", message, "--no-verify")
            outgoing.remember(self.repo, self.repo.head.commit.hexsha)
        except git.GitCommandError as exc:
            if "nothing to commit" in str(exc.stdout) or "nothing added to commit" in str(
                exc.stdout
            ):
                raise GitError("nothing to commit: the change is already in git") from exc
            raise GitError(f"git commit failed: {_last_line(exc.stderr)}") from exc

    def _sync_with_remote(self, branch: str) -> None:
        try:
            self.repo.git.fetch(self.remote, branch)
        except git.GitCommandError as exc:
            raise GitError(
                f"git fetch {self.remote} {branch} failed: {_last_line(exc.stderr)}"
            ) from exc
        upstream = f"{self.remote}/{branch}"
        try:
            self.repo.git.merge("--ff-only", "--autostash", upstream) if _behind(
                self.repo, upstream
            ) else None
        except git.GitCommandError as exc:
            raise GitError(
                f"local {branch} has diverged from {upstream}; "
                f"pull or rebase it first ({_last_line(exc.stderr)})"
            ) from exc
        # HEAD is the remote's tip, or only ship's own commits on it
        outgoing.check(self.repo, upstream)

    def _rebase_onto_remote(self, branch: str) -> bool:
        try:
            self.repo.git.fetch(self.remote, branch)
            before = outgoing.outgoing(self.repo, f"{self.remote}/{branch}")
            self.repo.git.rebase("--autostash", f"{self.remote}/{branch}")
            outgoing.forget(self.repo, *before)  # the rebase moved them: the same commits, new shas
            outgoing.remember(self.repo, *outgoing.outgoing(self.repo, f"{self.remote}/{branch}"))
            return True
        except git.GitCommandError:
            try:
                self.repo.git.rebase("--abort")
            except git.GitCommandError:
                pass
            return False

    def _drop_own_commit(self) -> None:
        # --keep leaves a user's unrelated uncommitted edits (with --allow-dirty) in place.
        outgoing.forget(self.repo, self.repo.head.commit.hexsha)
        self.repo.git.reset("--keep", "HEAD~1")


def _behind(repo: git.Repo, upstream: str) -> bool:
    return bool(repo.git.rev_list("--count", f"HEAD..{upstream}") != "0")


def _last_line(text: str) -> str:
    """The line of git's stderr that says what went wrong: its first fatal or error line, else its
    last."""
    text = (text or "").strip()
    if text.startswith("stderr: '"):  # GitPython quotes the captured stderr
        text = text[len("stderr: '") :].rstrip("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith(("fatal:", "error:"))]
    if said:
        return said[0]
    return lines[-1] if lines else "unknown error"
