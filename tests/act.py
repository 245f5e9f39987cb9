"""Runs GitHub Actions workflows with nektos/act (built by make binaries), on this host, offline.

The workflow files run as they are: act evaluates the expressions, `needs`, job outputs,
matrices, `if:` (with GitHub's transitive skip of actions/runner#2205) and the composite
action.yml of ship. Each remote action a workflow or action.yml uses is replaced with its
stand-in under tests/actions/ (`--local-repository OWNER/REPO@REF=FOLDER`, see the README there);
ship's own action (`OWNER/ship@vX`) with the folder the test gives: this repository, or a
stand-in. act's log is read as JSON: a job's result, its step summaries, its raw output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline import scaffold

ROOT = Path(__file__).resolve().parent.parent
STANDINS = ROOT / "tests/actions"
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*([\w.-]+)/([\w.-]+)@([\w.-]+)", re.MULTILINE)
TIMEOUT = 1800.0


def act_binary() -> str:
    found = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / f"bin/act-{pinned('ACT')}"
    if not found.exists():
        pytest.fail(f"nektos/act is not built ({found}): run `make binaries`", pytrace=False)
    return str(found)


def export_source(dest: Path) -> Path:
    """This repository's files as GitHub serves them at a tag (tracked and new files, nothing git
    ignores: no .venv, no build output) in `dest`: what `uses: OWNER/ship@vX` gets."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


# What a runner's environment keeps from this process: never KUBECONFIG, SHIP_REGISTRY or a
# secret, which a workflow must take from its secrets and variables.
KEEP = ("HOME", "USER", "LANG", "TMPDIR", "GOPATH", "GOCACHE", "GOMODCACHE", "SHIP_CACHE")


def pinned(name: str) -> str:
    """A version hack/versions.env pins, e.g. pinned("ACT") == "v0.2.89"."""
    found = re.search(rf"^{name}_VERSION=\$\{{{name}_VERSION:-([^}}]+)\}}", (ROOT / "hack/versions.env").read_text(), re.M)
    assert found, f"hack/versions.env pins no {name}_VERSION"
    return found.group(1)


def runner_tools() -> Path:
    """The tools a GitHub runner image has on PATH that this host has only as versioned binaries
    built by make binaries (kustomize)."""
    cache = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship"))
    tools = cache / "act-runner-tools"
    tools.mkdir(parents=True, exist_ok=True)
    link = tools / "kustomize"
    if not link.exists():
        try:
            link.symlink_to(cache / f"bin/kustomize-{pinned('KUSTOMIZE')}")
        except FileExistsError:
            pass  # another test worker made it
    return tools


def runner_env(**extra: str) -> dict[str, str]:
    """The runner's environment: the host's tools but not the test venv's ship, which the action
    installs; the stand-in for setup-python pointed at the test venv's packages (pip then installs
    ship alone, building it with the venv's setuptools)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join([str(runner_tools()), *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)])
    return {**{k: os.environ[k] for k in KEEP if k in os.environ}, "PATH": path, "CI": "true",
            "ACT_STANDIN_PYTHON": sys.executable, "ACT_STANDIN_SITE_PACKAGES": sysconfig.get_paths()["purelib"],
            "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def go_cache() -> str:
    proc = subprocess.run(["go", "env", "GOCACHE"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def remote_actions(*texts: str) -> set[tuple[str, str, str]]:
    """(owner, repo, ref) of every remote action the texts use (ship's own action included)."""
    return {m.groups() for text in texts for m in USES.finditer(text)}


def local_repositories(workflow: str, ship: Path) -> list[str]:
    """act's --local-repository arguments: ship's action from `ship`, the others from their stand-ins."""
    own = scaffold.action_ref()
    texts = [workflow, (ship / "action.yml").read_text()]
    args = []
    for owner, repo, ref in sorted(remote_actions(*texts)):
        if f"{owner}/{repo}@{ref}" == own:
            folder = ship
        elif (owner, repo) == ("actions", "checkout"):
            continue  # act checks out the repository itself
        else:
            folder = STANDINS / repo
            assert (folder / "action.yml").exists(), f"{owner}/{repo}@{ref} has no stand-in in tests/actions/{repo}"
        args += ["--local-repository", f"{owner}/{repo}@{ref}={folder}"]
    return args


@dataclass
class ActRun:
    """One `act` run, read from its JSON log."""

    returncode: int
    events: list[dict]
    stderr: str

    def results(self) -> dict[str, list[str]]:
        """Each job that ran (by id) and its results, one per matrix leg; skipped jobs are absent."""
        found: dict[str, list[str]] = {}
        for event in self.events:
            if "jobResult" in event:
                found.setdefault(event["jobID"], []).append(event["jobResult"])
        return found

    def summary(self, job: str | None = None) -> str:
        """The job summary as GitHub shows it. act reports a composite action's summary twice: for
        the step inside the action (stepID [outer, inner]) and again for the step using it."""
        return "".join(e["content"] for e in self.events
                       if e.get("command") == "summary" and len(e.get("stepID") or [0]) == 1
                       and (job is None or e.get("jobID") == job))

    def output(self, job: str | None = None) -> str:
        return "".join(e.get("msg", "") if e.get("raw_output") else f"[{e.get('jobID', '')}] {e.get('msg', '')}\n"
                       for e in self.events if job is None or e.get("jobID") == job)


@dataclass
class Act:
    """act for one repository checkout: its secrets, variables and the runner's environment."""

    work: Path  # the repository the workflows run in (act copies it into each job)
    tmp: Path
    ship: Path  # what ship's action comes from: export_source(), or a stand-in
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=runner_env)
    actor: str = "octocat"

    def run(self, workflow: str, event: str = "push", payload: dict | None = None) -> ActRun:
        path = self.work / ".github/workflows" / workflow
        runs = self.tmp / "act"
        runs.mkdir(parents=True, exist_ok=True)
        n = len(list(runs.glob("*-event.json")))
        files = {name: runs / f"{n}-{name}" for name in ("secrets", "vars", "event.json", "artifacts")}
        files["secrets"].write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in self.secrets.items()))
        files["vars"].write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in self.variables.items()))
        files["event.json"].write_text(json.dumps(payload or {}))
        files["artifacts"].mkdir()
        # act keeps each job's copy of the repository under $XDG_CACHE_HOME/act: in the test's
        # folder, so pytest cleans it up; Go's build cache stays where it was.
        env = {**self.env, "ACT_STANDIN_ARTIFACTS": str(files["artifacts"]), "XDG_CACHE_HOME": str(runs / "cache"),
               "GOCACHE": self.env.get("GOCACHE") or go_cache()}
        cmd = [act_binary(), event, "-W", str(path), "-P", "ubuntu-24.04=-self-hosted", "--action-offline-mode",
               "--json", "--actor", self.actor, "-e", str(files["event.json"]), "--secret-file", str(files["secrets"]),
               "--var-file", str(files["vars"]), "--env-file", os.devnull, "--input-file", os.devnull,
               *local_repositories(path.read_text(), self.ship)]
        proc = subprocess.run(cmd, cwd=self.work, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        events = []
        for line in proc.stdout.splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                events.append({"msg": line, "raw_output": True})
        return ActRun(proc.returncode, events, proc.stderr)
