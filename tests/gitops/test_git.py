"""Publishing when the connection to the remote breaks: before the remote took the commit (it
is dropped, the error names git's reason), or after (the commit stands: the remote has it)."""

from __future__ import annotations

import git
import pytest

from pipeline.errors import GitError
from pipeline.gitops.git import GitRepo
from tests.conftest import bare_and_clone


@pytest.fixture
def clone(tmp_path):
    bare, work, repo = bare_and_clone(tmp_path)
    (work / "a.txt").write_text("a\n")
    repo.git.add("--all")
    repo.git.commit("-qm", "initial")
    repo.git.push("-q", "origin", "HEAD:main")
    return bare, work


def cut_push(bare, hook: str) -> None:
    """The receiving end dies in `hook`: the pushing side sees the connection drop."""
    path = bare / "hooks" / hook
    path.write_text("#!/bin/sh\nkill -9 $PPID\n")
    path.chmod(0o755)


def write(work):
    def change():
        (work / "b.txt").write_text("b\n")
        return ["b.txt"], "release(dev): b"
    return change


def test_a_push_cut_after_the_remote_took_the_commit_is_a_success(clone):
    bare, work = clone
    cut_push(bare, "post-receive")
    commit = GitRepo(work).publish(write(work))
    assert commit is not None and git.Repo(bare).git.rev_parse("main") == commit.sha


def test_a_push_cut_before_the_remote_took_it_drops_the_commit_naming_gits_reason(clone):
    bare, work = clone
    cut_push(bare, "pre-receive")
    before = git.Repo(bare).git.rev_parse("main")
    with pytest.raises(GitError, match=r"^git push to origin/main failed: (fatal|error): "):
        GitRepo(work).publish(write(work))
    assert git.Repo(bare).git.rev_parse("main") == before
    assert git.Repo(work).git.rev_parse("HEAD") == before and not (work / "b.txt").exists()


def test_a_remote_that_is_gone_is_named(clone):
    bare, work = clone
    bare.rename(bare.with_name("elsewhere.git"))
    with pytest.raises(GitError, match=r"fatal: .*does not appear to be a git repository"):
        GitRepo(work).publish(write(work))


def test_a_commit_of_nothing_and_a_commit_without_identity_are_one_line_git_errors(tmp_path, monkeypatch):
    import subprocess

    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=a", "-c", "user.email=a@a", "commit", "-q",
                    "--allow-empty", "-m", "first"], check=True)
    repo = GitRepo(tmp_path)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "a")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "a@a")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "a")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "a@a")
    with pytest.raises(GitError, match="nothing to commit: the change is already in git"):
        repo._commit(["."], "nothing")
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.useConfigOnly", "true"], check=True)
    with pytest.raises(GitError, match="git has no identity to commit with"):
        GitRepo(tmp_path).require_identity()
