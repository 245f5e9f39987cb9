"""What the bench's cases share: the run's id, the namespaces to delete, running ship and git."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIP = [sys.executable, "-m", "pipeline"]
RUN = uuid.uuid4().hex[:5]
namespaces: list[str] = []  # deleted when the bench ends


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(cmd[:6])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return elapsed


def git(work: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@ship.dev", *args],
        cwd=work,
        check=True,
        capture_output=True,
    )


def publish(
    work: Path, ship_yaml: str, envs: dict[str, str], message: str
) -> tuple[Path, dict[str, str]]:
    """A bench project's first commit, pushed to its bare remote and tracked: `ship_yaml` and an
    empty folder per environment. `envs` (environment -> namespace) are deleted when the bench
    ends."""
    for name in envs:
        (work / "environments" / name).mkdir(parents=True)
        (work / "environments" / name / ".gitkeep").write_text("")
    (work / "ship.yaml").write_text(ship_yaml)
    git(work, "add", "-A")
    git(work, "commit", "-qm", message)
    git(work, "push", "-q", "origin", "HEAD:main")
    git(work, "branch", "-q", "--set-upstream-to=origin/main", "main")
    namespaces.extend(envs.values())
    return work, envs


def ship_json(work: Path, *args: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run(
        [*SHIP, *args, "--output", "json"], cwd=work, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: ship {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, json.loads(proc.stdout)
