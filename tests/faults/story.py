"""A fault trial's world: a throw-away copy of this repository with a bare git remote and
namespaces of its own, ship run as a user runs it (a subprocess, killable at any progress
line), and the checks every trial ends with.

The checks, after the command that must converge: `ship diff ENV` exits 0 for every
environment; no commit the remote had is lost (the remote's old head is an ancestor of its new
one) and the clone has nothing unpushed or uncommitted; no Lease of ship's is left; no
versioned ConfigMap in the cluster beyond those git keeps (at most keep_configs) and those a
live ReplicaSet still uses; and the cluster runs what git says (the stable Deployment's release,
the canary present exactly when git has one).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import git
import yaml

from tests.conftest import ROOT, bare_and_clone, unique_namespaces

SHIP = [sys.executable, "-m", "pipeline"]
ENVS = ("dev", "uat", "prod")


@dataclass
class Run:
    """One ship command as it ran: exit code (None when killed), its stderr lines, the line it was killed at."""

    args: tuple[str, ...]
    code: int | None
    lines: list[str]
    stdout: str
    killed_at: str | None
    seconds: float

    def brief(self) -> str:
        if self.killed_at is not None:
            return f"killed at «{self.killed_at[:70]}»"
        last = self.lines[-1] if self.code and self.lines else ""
        return f"exit {self.code}" + (f": {last[:110]}" if last else "")


@dataclass
class Story:
    """A repository and its environments for a series of trials; `env` is the process environment ship runs with."""

    work: Path
    bare: Path
    namespaces: dict[str, str]
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    counter: int = 0

    @classmethod
    def create(cls, base: Path, env: dict[str, str], project: Path, canary: str | None = None) -> Story:
        """A clone of `project`'s commit (the one the lab's image was built from) with a bare
        remote, namespaces of its own and, when given, prod's canary policy."""
        base.mkdir(parents=True, exist_ok=True)
        bare, work, repo = bare_and_clone(base)
        repo.git.fetch(str(project), "main")
        repo.git.reset("--hard", "FETCH_HEAD")
        for name in ENVS:
            (work / "environments" / name).mkdir(parents=True)
            (work / "environments" / name / ".gitkeep").write_text("")
        suffix = uuid.uuid4().hex[:6]
        unique_namespaces(work / "ship.yaml", suffix)
        text = (work / "ship.yaml").read_text()
        text = text.replace("gates: {timeout: 90s, bake: 5s}", "gates: {timeout: 60s}")
        text = text.replace("gates: {timeout: 120s, bake: 10s}", "gates: {timeout: 60s}")
        if canary is not None:
            text = text[:text.index("    canary:\n")] + "    canary:\n" + "".join(f"      {line}\n" for line in canary.splitlines())
        (work / "ship.yaml").write_text(text)
        repo.git.add("--all")
        repo.git.commit("-m", "initial")
        repo.git.push("origin", "HEAD:main")
        repo.git.branch("--set-upstream-to=origin/main", "main")
        namespaces = {name: f"hellok8s-{name}-{suffix}" for name in ENVS}
        return cls(work, bare, namespaces, {**env, "SHIP_SECRET_HELLOK8S_DB_PASSWORD": "pw"})

    # ── running ship ─────────────────────────────────────────────────────────────────────────

    def ship(self, *args: str, kill_at: str | Callable[[str], bool] | None = None,
             on_line: Callable[[str], None] | None = None, timeout: float = 300.0, env: dict[str, str] | None = None) -> Run:
        """Run `ship ARGS`; SIGKILL it as soon as a stderr line matches `kill_at` (a regex, or a
        predicate); `on_line` sees every stderr line as it comes (to inject a fault at a step)."""
        if isinstance(kill_at, str):
            pattern = kill_at
            kill_at = lambda line: re.search(pattern, line) is not None
        start = time.monotonic()
        proc = subprocess.Popen([*SHIP, *args], cwd=self.work, env={**os.environ, **self.env, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        lines: list[str] = []
        killed = None
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                line = line.rstrip("\n")
                lines.append(line)
                if kill_at is not None and killed is None and kill_at(line):
                    os.kill(proc.pid, signal.SIGKILL)
                    killed = line
                if on_line is not None:
                    on_line(line)
            stdout = proc.stdout.read() if proc.stdout else ""
            proc.wait()
        finally:
            timer.cancel()
        run = Run(tuple(args), None if killed else proc.returncode, lines, stdout, killed, time.monotonic() - start)
        self.runs.append(run)
        return run

    def must(self, *args: str) -> Run:
        run = self.ship(*args)
        if run.code != 0:
            raise AssertionError(f"ship {' '.join(args)} failed: " + "\n".join(run.lines[-15:]))
        return run

    def new_config(self, env_name: str = "dev") -> None:
        """A config change for ENV's next release, committed and pushed as a developer would."""
        self.counter += 1
        path = self.work / "apps/hellok8s/config" / f"{env_name}.env"
        text = re.sub(r"MESSAGE=.*", f"MESSAGE=Hello from {env_name}, change {self.counter}", path.read_text())
        path.write_text(text)
        repo = git.Repo(self.work)
        repo.git.pull("--ff-only", "-q")
        repo.git.commit("-qam", f"{env_name}: change {self.counter}")
        repo.git.push("-q", "origin", "HEAD:main")

    def touch_source(self) -> None:
        """A change to the app's source: its next build is a new image."""
        self.counter += 1
        path = self.work / "apps/hellok8s/main.go"
        path.write_text(path.read_text() + f"\n// faults: change {self.counter}\n")
        repo = git.Repo(self.work)
        repo.git.commit("-qam", f"hellok8s: change {self.counter}")
        repo.git.push("-q", "origin", "HEAD:main")

    def previous_release(self, env_name: str) -> str:
        """The newest release of ENV's ledger, before the current one, that a rollback may return to."""
        history = json.loads(self.must("history", env_name, "--output", "json").stdout)["releases"]
        current = yaml.safe_load((self.work / "environments" / env_name / "release.yaml").read_text())["id"]
        return next(r["id"] for r in history if r["id"] != current and r["outcome"] in ("healthy", "rolled back to"))

    def remote_head(self) -> str:
        return git.Repo(self.bare).git.rev_parse("main")

    # ── the checks ───────────────────────────────────────────────────────────────────────────

    def kubectl(self, *args: str) -> dict:
        out = subprocess.run(["kubectl", *args, "-o", "json"], capture_output=True, text=True,
                             env={**os.environ, "KUBECONFIG": self.env["KUBECONFIG_DIRECT"]})
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout else {}

    def check(self, before: str, envs: tuple[str, ...] = ENVS) -> list[str]:
        """Every invariant a converged environment keeps; the ones broken, as lines."""
        problems: list[str] = []
        repo, remote = git.Repo(self.work), git.Repo(self.bare)
        head = remote.git.rev_parse("main")
        if remote.git.merge_base("--is-ancestor", before, head, with_exceptions=False) is None:
            problems.append(f"remote lost commits: {before[:7]} is not an ancestor of {head[:7]}")
        if repo.git.status("--porcelain"):
            problems.append(f"working tree not clean: {repo.git.status('--porcelain')[:200]}")
        repo.git.fetch("-q", "origin")
        if repo.git.rev_list("--count", "origin/main..HEAD") != "0":
            problems.append("the clone has commits the remote does not")
        for name in envs:
            problems += self._check_env(name)
        return problems

    def _check_env(self, name: str) -> list[str]:
        ns, problems = self.namespaces[name], []
        folder = self.work / "environments" / name
        if not (folder / "release.yaml").is_file():
            return []
        diff = self.ship("diff", name)
        if diff.code != 0:
            problems.append(f"{name}: ship diff exit {diff.code}: " + " | ".join(
                line for line in diff.stdout.splitlines() if line.startswith(("---", "+++")))[:300])
        leases = [i["metadata"]["name"] for i in self.kubectl("-n", ns, "get", "lease").get("items", [])]
        if leases:
            problems.append(f"{name}: stale lock(s) {leases}")
        rel = yaml.safe_load((folder / "release.yaml").read_text())
        dep = self.kubectl("-n", ns, "get", "deployment", "hellok8s")
        running = dep.get("metadata", {}).get("annotations", {}).get("ship.dev/release")
        if running != rel.get("id"):
            problems.append(f"{name}: git says {rel.get('id')}, the cluster runs {running}")
        canary_git = (folder / "canary.yaml").is_file()
        canary_live = bool(self.kubectl("-n", ns, "get", "deployment", "hellok8s-canary"))
        if canary_git != canary_live:
            problems.append(f"{name}: canary in git {canary_git}, in the cluster {canary_live}")
        problems += self._check_configs(name, folder, ns)
        return problems

    def _check_configs(self, name: str, folder: Path, ns: str) -> list[str]:
        in_git = {p.stem for p in (folder / "configs").glob("*.yaml")} if (folder / "configs").is_dir() else set()
        keep = 5 + (1 if (folder / "canary.yaml").is_file() else 0)
        problems = [f"{name}: git keeps {len(in_git)} ConfigMaps, more than keep_configs"] if len(in_git) > keep else []
        used = set()
        for rs in self.kubectl("-n", ns, "get", "replicaset").get("items", []):
            if rs["spec"].get("replicas", 0) or rs["status"].get("replicas", 0):
                for vol in rs["spec"]["template"]["spec"].get("volumes", []) or []:
                    used.add((vol.get("configMap") or {}).get("name"))
                for c in rs["spec"]["template"]["spec"].get("containers", []):
                    for src in c.get("envFrom", []) or []:
                        used.add((src.get("configMapRef") or {}).get("name"))
        live = {c["metadata"]["name"] for c in self.kubectl("-n", ns, "get", "configmap").get("items", [])
                if c["metadata"]["name"].startswith("hellok8s-config-")}
        orphans = sorted(live - in_git - used)
        if orphans:
            problems.append(f"{name}: orphan ConfigMaps {orphans}")
        return problems

    def repair(self) -> None:
        """After a trial that did not converge: the clone as the remote has it, every environment
        synced, so the next trial starts from a known state (the failure is already recorded)."""
        repo = git.Repo(self.work)
        repo.git.fetch("-q", "origin")
        repo.git.reset("-q", "--hard", "origin/main")
        repo.git.clean("-fdq")
        for name in ENVS:
            if (self.work / "environments" / name / "release.yaml").is_file():
                self.ship("sync", name)

    def cleanup(self) -> None:
        for ns in self.namespaces.values():
            subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false"], capture_output=True,
                           env={**os.environ, "KUBECONFIG": self.env["KUBECONFIG_DIRECT"]})


def project_root() -> Path:
    return ROOT
