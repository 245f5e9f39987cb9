"""Reproductions: ship pushes only the commits it made, to the branch it was told, on top of the
remote's tip (issue 27, item 7). Real git: a bare repository stands in for GitHub."""

from __future__ import annotations

import git
import pytest

from pipeline.errors import GitError
from pipeline.gitops.git import GitRepo
from tests.conftest import bare_and_clone


@pytest.fixture
def clone(tmp_path, monkeypatch):
    for variable in ("SHIP_BRANCH", "GITHUB_REF_NAME", "GITHUB_REF_TYPE"):
        monkeypatch.delenv(variable, raising=False)
    bare, work, repo = bare_and_clone(tmp_path)
    (work / "a.txt").write_text("a\n")
    repo.git.add("--all")
    repo.git.commit("-qm", "initial")
    repo.git.push("-q", "origin", "HEAD:main")
    return bare, work, repo


def ship_write(work, name: str = "ship.txt"):
    def write():
        (work / name).write_text(f"{name}\n")
        return [name], f"release(dev): {name}\n\nShip-Action: release\n"
    return write


def remote_subjects(bare) -> list[str]:
    return git.Repo(bare).git.log("--format=%s", "main").splitlines()


def test_an_unrelated_local_commit_is_never_pushed_with_ships(clone):
    bare, work, repo = clone
    (work / "wip.txt").write_text("not ready\n")
    repo.git.add("wip.txt")
    repo.git.commit("-qm", "work in progress")
    with pytest.raises(GitError, match=r"HEAD holds commit [0-9a-f]{7} \(work in progress\) that ship did not make"):
        GitRepo(work).publish(ship_write(work))
    assert remote_subjects(bare) == ["initial"] and not (work / "ship.txt").exists()


def test_a_detached_head_is_refused_unless_a_branch_is_named(clone, monkeypatch):
    bare, work, repo = clone
    repo.git.checkout("-q", "-b", "feature")
    (work / "feature.txt").write_text("unreviewed\n")
    repo.git.add("--all")
    repo.git.commit("-qm", "unreviewed change on another branch")
    repo.git.checkout("-q", "--detach")
    with pytest.raises(GitError, match="HEAD is detached and no branch is named: .* SHIP_BRANCH"):
        GitRepo(work).publish(ship_write(work))
    assert remote_subjects(bare) == ["initial"]
    monkeypatch.setenv("GITHUB_REF_NAME", "main")  # named, but HEAD holds a commit main lacks
    with pytest.raises(GitError, match="unreviewed change on another branch"):
        GitRepo(work).publish(ship_write(work))
    assert remote_subjects(bare) == ["initial"]
    repo.git.checkout("-q", "--detach", "origin/main")
    assert GitRepo(work).publish(ship_write(work)) is not None
    assert remote_subjects(bare) == ["release(dev): ship.txt", "initial"]


def test_a_tag_named_in_github_ref_name_is_no_branch(clone, monkeypatch):
    _, work, repo = clone
    repo.git.checkout("-q", "--detach")
    monkeypatch.setenv("GITHUB_REF_NAME", "v1.0.0")
    monkeypatch.setenv("GITHUB_REF_TYPE", "tag")
    with pytest.raises(GitError, match="HEAD is detached and no branch is named"):
        GitRepo(work).publish(ship_write(work))


def test_other_staged_changes_are_not_folded_into_ships_commit(clone):
    bare, work, repo = clone
    (work / "staged.txt").write_text("someone else's\n")
    repo.git.add("staged.txt")
    with pytest.raises(GitError, match="staged.txt is staged, and ship commits only the files it wrote"):
        GitRepo(work).publish(ship_write(work))
    assert remote_subjects(bare) == ["initial"] and repo.head.commit.message.strip() == "initial"


def test_ships_own_commits_are_pushed_in_a_line_on_the_remote_tip(clone):
    bare, work, repo = clone
    GitRepo(work).publish(ship_write(work, "one.txt"), push=False)  # a run killed before its push
    assert GitRepo(work).publish(ship_write(work, "two.txt")) is not None
    assert remote_subjects(bare) == ["release(dev): two.txt", "release(dev): one.txt", "initial"]
    assert not (work / ".git/ship-own-commits").exists()  # pushed: nothing of ship's is pending


def test_a_commit_ship_made_just_before_a_kill_is_still_its_own(clone):
    """Killed between `git commit` and noting the commit: the intent written before it counts."""
    bare, work, repo = clone
    from pipeline.gitops import outgoing

    (work / "one.txt").write_text("one\n")
    repo.git.add("one.txt")
    message = "release(dev): one.txt\n\nShip-Action: release\n"
    outgoing.intend(repo, message)
    repo.git.commit("-qm", message)  # …and the process died here
    assert GitRepo(work).publish(ship_write(work, "two.txt")) is not None
    assert remote_subjects(bare) == ["release(dev): two.txt", "release(dev): one.txt", "initial"]
