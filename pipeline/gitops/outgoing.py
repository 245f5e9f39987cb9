"""Which commits ship may push: only those it made itself, in a line on top of the remote branch.

A working clone can hold commits ship did not make: a developer's work in progress, or, in CI, a
commit a build step slipped in. Pushing HEAD would publish them under ship's name. So ship notes
each commit it makes (a list of shas in .git/ship-own-commits, rewritten when a rebase moves
them) and, before any push, checks that every commit between the fetched remote branch and HEAD
is one of them, each the child of the one before, the first the child of the remote's tip. The
branch itself must be named: a detached HEAD (some CI checkouts) pushes to the branch in
$SHIP_BRANCH or $GITHUB_REF_NAME, never to a guessed `main`. Never pushes; only reads and
checks, and keeps its own list.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import git

from pipeline.errors import GitError

OWN_FILE = "ship-own-commits"
BRANCH_VARIABLES = ("SHIP_BRANCH", "GITHUB_REF_NAME")


def push_branch(repo: git.Repo) -> str:
    """The branch ship pushes to: the checked-out one, or for a detached HEAD the one named in
    $SHIP_BRANCH or $GITHUB_REF_NAME (a tag's name is no branch); GitError when none is named."""
    try:
        return repo.active_branch.name
    except TypeError:
        pass
    if os.environ.get("GITHUB_REF_TYPE", "branch") == "branch":
        for variable in BRANCH_VARIABLES:
            if os.environ.get(variable, "").strip():
                return os.environ[variable].strip()
    raise GitError(
        "HEAD is detached and no branch is named: check "
        "a branch out, or set SHIP_BRANCH to the branch "
        "ship should push to; nothing written"
    )


def _own_path(repo: git.Repo) -> Path:
    return Path(repo.git_dir) / OWN_FILE


def own_commits(repo: git.Repo) -> set[str]:
    path = _own_path(repo)
    return set(path.read_text().split()) if path.is_file() else set()


def _save(repo: git.Repo, shas: set[str]) -> None:
    path = _own_path(repo)
    if not shas:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("".join(f"{sha}\n" for sha in sorted(shas)))
    os.replace(tmp, path)


def intend(repo: git.Repo, message: str) -> None:
    """Before a commit: its parent and message, so a commit made just before a kill (before
    `remember` ran) is still known as ship's by the next run."""
    digest = hashlib.sha256(message.strip().encode()).hexdigest()
    (Path(repo.git_dir) / f"{OWN_FILE}.pending").write_text(f"{repo.head.commit.hexsha} {digest}\n")


def _intended(repo: git.Repo, commit: git.Commit) -> bool:
    path = Path(repo.git_dir) / f"{OWN_FILE}.pending"
    parent, _, digest = (path.read_text().strip() if path.is_file() else "").partition(" ")
    message = commit.message if isinstance(commit.message, str) else commit.message.decode()
    return (
        bool(digest)
        and [p.hexsha for p in commit.parents] == [parent]
        and hashlib.sha256(message.strip().encode()).hexdigest() == digest
    )


def remember(repo: git.Repo, *shas: str) -> None:
    """Note commits ship just made (or moved by a rebase)."""
    _save(repo, own_commits(repo) | set(shas))


def forget(repo: git.Repo, *shas: str) -> None:
    _save(repo, own_commits(repo) - set(shas))


def outgoing(repo: git.Repo, upstream: str) -> list[str]:
    """The commits a push of HEAD would send, oldest first."""
    return repo.git.rev_list("--reverse", f"{upstream}..HEAD").split()


def check(repo: git.Repo, upstream: str) -> list[str]:
    """The commits a push of HEAD to `upstream` would send, once each is ship's own and in a line
    on top of `upstream`; GitError naming the first that is not."""
    sending, own = outgoing(repo, upstream), own_commits(repo)
    parent = repo.git.rev_parse(upstream)
    for sha in sending:
        commit = repo.commit(sha)
        if sha not in own and _intended(repo, commit):
            remember(repo, sha)
        elif sha not in own:
            raise GitError(
                f"HEAD holds commit {sha[:7]} ({commit.summary!s}) that ship did not make and "
                f"{upstream} does not have; ship pushes only "
                "its own commits: push it yourself, or drop "
                "it, first; nothing pushed"
            )
        if [p.hexsha for p in commit.parents] != [parent]:
            raise GitError(
                f"ship's commit {sha[:7]} is not the child "
                f"of {parent[:7]}, the commit before it on "
                f"{upstream}; nothing pushed"
            )
        parent = sha
    return sending


def pushed(repo: git.Repo, shas: list[str]) -> None:
    forget(repo, *shas)
