"""The workspace's promise that nothing is left half-written: a run killed (SIGKILL) while it
wrote an overlay is undone by the next one, and commits it made but never pushed are pushed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import git

from pipeline.gitops.git import GitRepo
from pipeline.gitops.workspace import Workspace
from tests.conftest import bare_and_clone
from tests.fakes import fake_project

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from pipeline import config
from pipeline.gitops.git import GitRepo
from pipeline.gitops.overlay import OverlayFiles
from pipeline.gitops.workspace import Workspace
cfg = config.load(Path(sys.argv[1]), environ={})
ws = Workspace(cfg.root, GitRepo(cfg.root))
ws.write(cfg.env("dev"), OverlayFiles({"release.yaml": "id: r-half-written\\n", "configs/new.yaml": "kind: ConfigMap\\n"}))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_overlay_a_killed_run_was_writing_is_put_back_by_the_next_run(tmp_path):
    fake_project(tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    repo = GitRepo(tmp_path)
    assert repo.dirty_paths()  # what the killed run left behind
    from pipeline.commands.context import open_context

    lines: list[str] = []
    with open_context(lines.append, tmp_path) as ctx:
        assert ctx.workspace.git.dirty_paths() == []
    assert lines == [f"environments/dev: put back as git has it; process {_pid_of_last_journal(lines)} died while "
                     "writing it"]
    assert not (tmp_path / "environments/dev/hellok8s/configs").exists()
    assert (tmp_path / "environments/dev/.gitkeep").is_file()


def _pid_of_last_journal(lines: list[str]) -> str:
    return lines[0].split("process ")[1].split(" ")[0] if lines else "?"


def test_an_overlay_a_live_run_is_writing_is_left_alone(tmp_path):
    from pipeline import config
    from pipeline.gitops.overlay import OverlayFiles

    fake_project(tmp_path)
    cfg = config.load(tmp_path, environ={})
    ws = Workspace(cfg.root, GitRepo(cfg.root))
    ws.write(cfg.env("dev"), OverlayFiles({"release.yaml": "id: r1\n"}))  # this process: alive
    assert Workspace(cfg.root, GitRepo(cfg.root)).recover() == []
    assert (tmp_path / "environments/dev/release.yaml").is_file()


def test_commits_a_killed_run_never_pushed_are_pushed_by_the_next_publish(tmp_path):
    bare, work, repo = bare_and_clone(tmp_path)
    (work / "a.txt").write_text("a\n")
    repo.git.add("--all")
    repo.git.commit("-qm", "initial")
    repo.git.push("-q", "origin", "HEAD:main")
    (work / "b.txt").write_text("b\n")
    GitRepo(work).publish(lambda: (["b.txt"], "release(dev): committed, then killed before its push"), push=False)
    assert GitRepo(work).publish(lambda: None) is None  # nothing new to write: the same release again
    assert git.Repo(bare).git.log("-1", "--format=%s", "main") == "release(dev): committed, then killed before its push"
    assert os.path.exists(work / "b.txt")


def test_a_journal_cut_short_by_a_kill_is_removed_not_a_crash(tmp_path):
    """The journal itself can be what the kill interrupted (an empty file is what the fault lab
    found); it is written whole by a rename now, and one that is not readable is dropped."""
    fake_project(tmp_path)
    folder = tmp_path / ".git/ship-writing"
    folder.mkdir()
    (folder / "dev.json").write_text("")
    lines: list[str] = []
    assert Workspace(tmp_path, GitRepo(tmp_path)).recover(lines.append) == []
    assert not (folder / "dev.json").exists() and lines[0].endswith("not a journal ship can read; removed")
