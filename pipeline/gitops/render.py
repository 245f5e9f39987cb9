"""Renders a kustomize folder into objects with the real kustomize binary.

ship never re-implements kustomize: it runs `kustomize build` (the pinned binary make installs,
or one on PATH), falling back to `kubectl kustomize`. Read-only. When a helm is found ($SHIP_HELM,
PATH, or the pinned one make installs), kustomize may inflate `helmCharts` with it (chart.py).

Rendering is a pure function of the repository's files, and kustomize grows worse than
linearly (20 s for 3,000 objects here), so results are cached, like Argo CD's repo-server
caches manifests by revision: keyed by the git tree of HEAD, the folder, the kustomize command
and the kustomize and helm binaries it runs, used only when the working tree is clean (no edits,
no untracked files), kept in `.git/ship/render-cache/`. SHIP_RENDER_CACHE=off turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from pipeline import yamlsafe
from pipeline.errors import ConfigError, RenderError

_BIN = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / "bin"
_CACHED = _BIN / "kustomize"


def helm_command() -> str | None:
    """The helm kustomize inflates charts with, or None (a chart base then cannot render)."""
    return os.environ.get("SHIP_HELM") or shutil.which("helm") or (str(_BIN / "helm") if (_BIN / "helm").exists() else None)


def kustomize_command() -> list[str]:
    helm = helm_command()
    # The flags only matter to a kustomization with helmCharts; without them kustomize refuses one.
    charts = ["--enable-helm", "--helm-command", helm] if helm else []
    if os.environ.get("SHIP_KUSTOMIZE"):
        return [os.environ["SHIP_KUSTOMIZE"], "build", *charts]
    found = shutil.which("kustomize") or (str(_CACHED) if _CACHED.exists() else None)
    if found:
        return [found, "build", *charts]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", *charts]
    raise RenderError("neither kustomize nor kubectl is installed; run `make binaries` or install kustomize")


def render(folder: Path, display: str | None = None) -> list[dict]:
    """Every object the kustomization in `folder` renders, in kustomize's order."""
    name = display or str(folder)
    if not (folder / "kustomization.yaml").is_file() and not (folder / "kustomization.yml").is_file():
        raise RenderError(f"{name}: no kustomization.yaml")
    command = kustomize_command()
    cache = _cache_file(folder, command)
    if cache is not None and cache.is_file():
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass  # a damaged entry is rendered again
    proc = subprocess.run([*command, str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"{name}: kustomize cannot render it: {failure_reason(proc.stderr, proc.returncode)}")
    try:
        objects = [doc for doc in yamlsafe.loads_all_generated(proc.stdout, f"{name} (rendered)") if doc]
    except ConfigError as exc:
        raise RenderError(str(exc)) from exc
    if cache is not None:
        _store(cache, objects)
    return objects


def failure_reason(stderr: str, code: int) -> str:
    """The one line that says why kustomize failed; for a chart, helm's own error (a template
    error, a kubeVersion refused), which kustomize buries before its `unable to run` line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    # the second: an error of the chart's kustomization itself
    helm = (re.search(r"recursed accumulation of path '[^']*': Error: (.+)$", stderr, re.MULTILINE)
            or re.search(r"^Error: Error: (.+)$", stderr, re.MULTILINE))
    if helm and "unable to run" in stderr:
        return f"helm: {helm.group(1)}"
    reason = lines[-1] if lines else f"exit {code}"
    reason = reason.split('err="', 1)[-1].rstrip('"') if 'err="' in reason else reason
    return reason.removeprefix("Error: ")


CACHE_ENTRIES = 32  # per clone; the oldest go first


def _git(folder: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _cache_file(folder: Path, command: list[str]) -> Path | None:
    """Where the rendering of `folder` at the current clean HEAD is cached, or None (no cache)."""
    if os.environ.get("SHIP_RENDER_CACHE", "on").lower() in ("off", "0", "no", "false"):
        return None
    facts = _git(folder, "rev-parse", "--show-toplevel", "--absolute-git-dir", "HEAD^{tree}")
    status = _git(folder, "status", "--porcelain", "--untracked-files=normal")
    if facts is None or status is None or status:
        return None  # not in git, or edited: render what is on disk
    top, git_dir, tree = facts.splitlines()
    binary = shutil.which(command[0]) or command[0]
    # kustomize's binary and helm's (another helm renders a chart otherwise): each by path and stamp
    stamps = [_stamp(b) for b in (binary, helm_command())]
    key = hashlib.sha256(json.dumps([tree, os.path.relpath(folder.resolve(), top), command, binary, stamps])
                         .encode()).hexdigest()[:32]
    return Path(git_dir) / "ship/render-cache" / f"{key}.json"


def _stamp(binary: str | None) -> list:
    """A binary's path, size and modification time: a rebuilt or upgraded one renders afresh."""
    if binary is None:
        return []
    try:
        st = os.stat(binary)
    except OSError:
        return [binary]
    return [binary, st.st_size, st.st_mtime_ns]


def _store(cache: Path, objects: list[dict]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(objects))
        tmp.replace(cache)
        entries = sorted(cache.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs time
