"""Where one ship command's time goes: start-up, git, render, dry-run, apply, gate, record.

The command runs in-process with a few of ship's functions wrapped by timers that count their
own time only (a function's time minus that of timed functions it called), so the phases add
up to the whole; start-up (interpreter and imports, which an in-process run does not pay) is
timed apart as a fresh `python -c "import ..."`. Bench-only: nothing of ship is changed for it.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pipeline.gitops.git import GitRepo
from pipeline.gitops.workspace import Workspace
from pipeline.kube import apply
from pipeline.kube.lock import EnvironmentLock
from pipeline.rollout import gating

PHASES: dict[str, list[tuple[Any, str]]] = {
    "git fetch and rebase": [(GitRepo, "_sync_with_remote"), (GitRepo, "_rebase_onto_remote")],
    "git commit": [(GitRepo, "_commit")],
    "git push (and the rest of publishing)": [(GitRepo, "publish")],
    "render (kustomize)": [(Workspace, "render")],
    "list live objects": [(apply, "live_state"), (apply, "_owned_objects")],
    "dry-run": [(apply, "_dry_run_all")],
    "apply": [(apply, "_perform")],
    "lock": [(EnvironmentLock, "__enter__"), (EnvironmentLock, "__exit__")],
    "gate": [(gating, "gate_apps"), (gating, "gate_and_record")],
    "record (ledger commit)": [(Workspace, "record_outcomes")],
}


def startup_seconds(runs: int = 5) -> float:
    """A fresh interpreter importing what a deploying command imports (the median of `runs`)."""
    code = "import pipeline.cli, pipeline.commands.deploy, pipeline.commands.context"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def breakdown(run: Callable[[], Any]) -> dict[str, float]:
    """Seconds per phase of `run()`, "other" for ship's own time outside them, and "total"."""
    own: dict[str, float] = defaultdict(float)
    stack: list[float] = []  # time spent in timed callees, per active timed call
    originals = []

    def timed(phase: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                inner = stack.pop()
                own[phase] += elapsed - inner
                if stack:
                    stack[-1] += elapsed

        return wrapper

    for phase, targets in PHASES.items():
        for owner, name in targets:
            fn = getattr(owner, name)
            wrapped = timed(phase, fn)
            # also where it was imported by name (from module import name)
            holders = [owner] + [
                m
                for m in list(sys.modules.values())
                if m is not None
                and getattr(m, "__name__", "").startswith("pipeline")
                and getattr(m, name, None) is fn
                and m is not owner
            ]
            for holder in holders:
                originals.append((holder, name, fn))
                setattr(holder, name, wrapped)
    started = time.perf_counter()
    try:
        run()
    finally:
        total = time.perf_counter() - started
        for holder, name, fn in reversed(originals):
            setattr(holder, name, fn)
    out = {phase: round(own.get(phase, 0.0), 3) for phase in PHASES}
    out["other (ship's own work)"] = round(total - sum(own.values()), 3)
    out["total in-process"] = round(total, 3)
    return out
