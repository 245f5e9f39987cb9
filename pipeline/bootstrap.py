"""What `ship init` works out from the repository it runs in: the Dockerfile an app without one
gets (by what its folder holds), and the registry images go to by default (GitHub's container
registry of the repository's owner). Pure but for reading the folder and the git remote; never
writes anything.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError

_GITHUB = re.compile(r"github\.com[:/](?P<owner>[A-Za-z0-9-]+)/")


@dataclass(frozen=True)
class Dockerfile:
    """The Dockerfile picked for an app, and the build commands it relies on (ship.yaml
    `build:`)."""

    kind: str  # go, node, python
    found: str  # the file it was picked by
    build: tuple[str, ...] = ()


def pick_dockerfile(folder: Path, app: str) -> Dockerfile | None:
    """The Dockerfile for the app in `folder`, by what it finds there; None when it has one already
    or nothing tells what the app is written in."""
    if (folder / "Dockerfile").exists():
        return None
    if (folder / "go.mod").exists():
        return Dockerfile(
            "go", "go.mod", (f'CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/{app} .',)
        )
    if (folder / "package.json").exists():
        return Dockerfile("node", "package.json")
    for name in ("pyproject.toml", "requirements.txt"):
        if (folder / name).exists():
            return Dockerfile("python", name)
    return None


def no_dockerfile_note(folder: Path, path: str) -> str | None:
    """What init says when it wrote no Dockerfile and the app has none."""
    if (folder / "Dockerfile").exists() or pick_dockerfile(folder, "x") is not None:
        return None
    return (
        f"no Dockerfile written: {path} has none and no go.mod, "
        "package.json, pyproject.toml or requirements.txt "
        f"to pick one by; write {path}/Dockerfile before the first build"
    )


def github_owner(root: Path) -> str | None:
    """The GitHub owner of the repository: from $GITHUB_REPOSITORY (in Actions), else from the
    `origin` remote's URL when it is on github.com."""
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if "/" in repository:
        return repository.split("/")[0].lower()
    proc = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True
    )
    match = _GITHUB.search(proc.stdout) if proc.returncode == 0 else None
    return match.group("owner").lower() if match else None


def default_registry(root: Path) -> str:
    """ghcr.io/OWNER for a repository on GitHub; otherwise the user must say (--registry)."""
    owner = github_owner(root)
    if owner is None:
        raise ConfigError(
            "--registry is required: this repository's "
            "origin is not on GitHub (and $GITHUB_REPOSITORY "
            "is unset), so there is no ghcr.io/OWNER to default to; nothing written"
        )
    return f"ghcr.io/{owner}"
