"""The lab `make faults` and the `faults` tests run trials in: the local parts of a cluster of
its own (never the default one), toxiproxy in front of its kube-apiserver, the other fault
makers (parts.py), a pinned hellok8s image, and a trial's result as one row of the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT
from tests.faults import parts
from tests.faults.story import Run, Story

HACK = ROOT / "hack"
# A canary of two short steps, so every step, the hold, the finish and the abort are reached fast.
CANARY = "router: gateway\nhost: hellok8s.example.com\ninterval: 1s\nsteps:\n  - {weight: 10, bake: 3s}\n  - {weight: 50, bake: 3s}"


def settings(cluster: str = "ship-faults", port: int = 18643, registry: int = 15800) -> dict[str, str]:
    """The lab's own cluster, ports and state folder: FAULTS_* variables, else these defaults."""
    cluster = os.environ.get("FAULTS_CLUSTER", cluster)
    return {"SHIP_CLUSTER": cluster, "SHIP_KUBE_PORT": os.environ.get("FAULTS_KUBE_PORT", str(port)),
            "SHIP_REGISTRY_PORT": os.environ.get("FAULTS_REGISTRY_PORT", str(registry)),
            "SHIP_STATE": os.environ.get("FAULTS_STATE", str(Path.home() / f".cache/ship/run-{cluster}")),
            "SHIP_KUBE_APF": "1",
            # One real node per machine, and it is the default cluster's: the lab needs KWOK nodes only.
            "SHIP_REAL_NODE": "0"}


@dataclass
class Result:
    group: str
    name: str
    fault: str
    first: str  # how ship's run under the fault ended
    then: str  # how the next command ended ("" when none was needed)
    problems: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)  # what the run showed of the fault (retries, errors)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"group": self.group, "trial": self.name, "fault": self.fault, "first": self.first, "then": self.then,
                "outcome": "converged" if self.ok else "FAILED", "problems": self.problems,
                "seconds": round(self.seconds, 1), "notes": self.notes}


class Lab:
    """Starts the parts (hack/cluster-up.sh with the lab's settings, toxiproxy) and holds them."""

    def __init__(self, base: Path | None = None, **defaults):
        self.settings = settings(**defaults)
        if self.settings["SHIP_CLUSTER"] == "ship" or self.settings["SHIP_KUBE_PORT"] == "16443":
            raise SystemExit("faults: refusing to inject faults into the default cluster (set FAULTS_CLUSTER)")
        self.base = base or Path(tempfile.mkdtemp(prefix="ship-faults-"))
        self.proxy: parts.Toxiproxy | None = None
        self.image = ""  # the pinned hellok8s image every story releases, built from `project`
        self.project: Path | None = None  # the commit every story starts from

    def _hold(self) -> None:
        """One lab user at a time: a second run on the same cluster would restart its parts under
        the first one's trials. Held (flock) until this process ends."""
        import fcntl

        state = Path(self.settings["SHIP_STATE"])
        state.mkdir(parents=True, exist_ok=True)
        self._lock = open(state / "lab.lock", "a+")  # noqa: SIM115 (held for the process's life)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            raise RuntimeError(f"the fault lab {self.settings['SHIP_CLUSTER']} is in use by pid "
                               f"{self._lock.read().strip() or '?'}; wait for it, or set FAULTS_CLUSTER") from None
        self._lock.truncate(0)
        self._lock.write(str(os.getpid()))
        self._lock.flush()

    def running(self) -> bool:
        """The lab's cluster is up already (make faults, or an earlier session)."""
        config = Path.home() / ".kwok/clusters" / self.settings["SHIP_CLUSTER"] / "kubeconfig.yaml"
        return config.is_file() and subprocess.run(["kubectl", "--kubeconfig", str(config), "get", "--raw", "/readyz"],
                                                   capture_output=True).returncode == 0

    def up(self, components: tuple[str, ...] = ("registry", "engine", "kubernetes")) -> Lab:
        """Start the lab's parts; with only kubernetes, the registry and engine of the environment
        (SHIP_REGISTRY, DOCKER_HOST: the test session's) are used."""
        self._hold()
        env = {**os.environ, **self.settings}
        out = subprocess.run([str(HACK / "cluster-up.sh"), *components], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"hack/cluster-up.sh failed: {out.stderr[-2000:]}")
        exports = {k: os.environ.get(k, "") for k in ("SHIP_REGISTRY", "DOCKER_HOST")}
        exports.update(line[len("export "):].split("=", 1) for line in out.stdout.splitlines() if line.startswith("export "))
        self.admin = exports["KUBECONFIG"]
        self.exports = exports
        version = _pinned("TOXIPROXY_VERSION")
        self.proxy = parts.Toxiproxy(int(self.settings["SHIP_KUBE_PORT"]), version).start()
        self.proxied = parts.kubeconfig_copy(self.admin, f"https://127.0.0.1:{self.proxy.listen_port}", folder=self.base)
        self.apiserver = parts.ApiServer(self.settings["SHIP_CLUSTER"], self.admin)
        self.registry = parts.RegistryProcess(Path(self.settings["SHIP_STATE"]), HACK, self.settings)
        self.webhook = parts.FailingWebhook(self.admin)
        self.throttle = parts.Throttle(self.admin)
        return self

    def env(self) -> dict[str, str]:
        """What ship runs with: the proxied kubeconfig, the lab's registry and engine."""
        return {"KUBECONFIG": self.proxied, "KUBECONFIG_DIRECT": self.admin, "SHIP_REGISTRY": self.exports["SHIP_REGISTRY"],
                "DOCKER_HOST": self.exports["DOCKER_HOST"]}

    def story(self, name: str, canary: str | None = CANARY) -> Story:
        if self.project is None:
            self.project, self.image = self._project()
        return Story.create(self.base / name, self.env(), self.project, canary)

    def _project(self) -> tuple[Path, str]:
        """This project's ship.yaml and apps/ in one commit, and hellok8s built from it."""
        import git

        from tests.conftest import copy_project

        work = self.base / "project"
        repo = git.Repo.init(work, initial_branch="main")
        with repo.config_writer() as cw:
            cw.set_value("user", "name", "ship-faults")
            cw.set_value("user", "email", "ship-faults@example.com")
        copy_project(work)
        repo.git.add("--all")
        repo.git.commit("-m", "the project", "--author", "t <t@example.com>")
        out = subprocess.run([sys.executable, "-m", "pipeline", "build", "--output", "json"], cwd=work,
                             capture_output=True, text=True, env={**os.environ, **self.env()})
        if out.returncode != 0:
            raise RuntimeError(f"ship build failed: {out.stderr[-1000:]}")
        return work, json.loads(out.stdout)["image"]

    def down(self, stop_parts: bool = False) -> None:
        """Stop toxiproxy; with `stop_parts`, the lab's cluster and parts too (hack/cluster-down.sh)."""
        if self.proxy is not None:
            self.proxy.stop()
        if getattr(self, "proxied", None):
            Path(self.proxied).unlink(missing_ok=True)
        if stop_parts:
            subprocess.run([str(HACK / "cluster-down.sh")], env={**os.environ, **self.settings}, capture_output=True)


def _pinned(name: str) -> str:
    out = subprocess.run(["bash", "-c", f"source {HACK}/versions.env && echo ${name}"], capture_output=True, text=True)
    return out.stdout.strip()


def after(seconds: float, action: Callable[[], object]) -> threading.Thread:
    """Run `action` `seconds` from now, in a thread (a fault lifted while ship keeps working)."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def once(pattern: str, action: Callable[[], object]) -> Callable[[str], None]:
    """An on_line hook: `action` in a thread at the first stderr line containing `pattern`."""
    fired: list[threading.Thread] = []

    def hook(line: str) -> None:
        if not fired and pattern in line:
            fired.append(after(0, action))

    hook.fired = fired  # type: ignore[attr-defined]
    return hook


def retries(run: Run) -> list[str]:
    """The retry lines a run printed, summarised: how many, and of what."""
    lines = [line for line in run.lines if "retrying in" in line]
    if not lines:
        return []
    kinds = sorted({line.split(": ", 1)[1].split(" from ")[0].split("; ")[0] for line in lines if ": " in line})
    return [f"{len(lines)} retries ({', '.join(kinds)[:120]})"]
