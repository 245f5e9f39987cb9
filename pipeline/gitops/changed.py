"""`ship build --changed`: which apps changed since their last release, so CI builds only those.

An app's last release is its release record in the first environment (the one that promotes
from none): `environments/ENV/APP/release.yaml` (a repository in the one-app layout is moved to
this one before any command runs: gitops/layout.py). Its `commit` is the app's last change
when it was released. The app changed when it was never released, or when its last change now
is neither that commit nor an ancestor of it (an ancestor: the release is newer than this
checkout). The decision (`is_changed`) is pure; reading records and asking git are thin.
Never writes anything, never builds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

from pipeline import yamlsafe
from pipeline.config import App, Environment, ShipConfig
from pipeline.errors import ConfigError
from pipeline.gitops.git import GitRepo

RECORD = "release.yaml"


def is_changed(current: str, released: str | None, is_ancestor: Callable[[str, str], bool]) -> bool:
    """Whether an app whose path last changed in `current` needs a build, given the commit of its
    last release (None: never released). `is_ancestor(a, b)`: a is b or comes before it."""
    if released is None:
        return True
    return current != released and not is_ancestor(current, released)


def first_environment(cfg: ShipConfig) -> Environment:
    """Where releases start: the first environment in ship.yaml that promotes from none."""
    for env in cfg.environments.values():
        if env.promotes_from is None:
            return env
    raise ConfigError(f"{cfg.source}: no environment without promotes_from to release into first")


def released_commit(root: Path, env: Environment, app: str) -> str | None:
    """The `commit` of APP's release record in ENV."""
    path = root / env.folder / app / RECORD
    if not path.is_file():
        return None
    record = yamlsafe.load_file(path, str(path.relative_to(root)), root)
    if isinstance(record, dict) and record.get("app") == app and record.get("commit"):
        return str(record["commit"])
    return None


def git_is_ancestor(repo: GitRepo) -> Callable[[str, str], bool]:
    """`is_ancestor` for `is_changed`, asking git; a commit this clone lacks is no ancestor."""

    def is_ancestor(a: str, b: str) -> bool:
        try:
            repo.repo.git.merge_base("--is-ancestor", a, b)
            return True
        except gitpython.GitCommandError:
            return False

    return is_ancestor


def changed_apps(cfg: ShipConfig, repo: GitRepo, apps: Iterable[App]) -> list[App]:
    """Those of `apps` that changed since their last release in the first environment."""
    env, is_ancestor = first_environment(cfg), git_is_ancestor(repo)
    return [
        app
        for app in apps
        if is_changed(
            repo.last_change(app.sources, cfg.ignore).sha,
            released_commit(cfg.root, env, app.name),
            is_ancestor,
        )
    ]


@dataclass(frozen=True)
class Matrix:
    """`ship build --list`: the apps as a GitHub Actions matrix, `{"app": [...]}`, one line."""

    apps: list[str]

    def to_json(self) -> dict:
        return {"app": self.apps}

    def text(self) -> str:
        return json.dumps(self.to_json())
