"""Renders a kustomize folder into objects with the real kustomize binary.

ship never re-implements kustomize: it runs `kustomize build` (the pinned binary make installs,
or one on PATH), falling back to `kubectl kustomize`. Read-only. When a helm is found ($SHIP_HELM,
PATH, or the pinned one make installs), kustomize may inflate `helmCharts` with it (chart.py).

Rendering is a pure function of the files kustomize reads and of the binaries it runs, and
kustomize grows worse than linearly (20 s for 3,000 objects here), so results are cached, like
Argo CD's repo-server caches manifests, keyed by the content of those files, the kustomize
command and the kustomize and helm binaries (render_cache.py): in the clone's
`.git/ship/render-cache/` and in the process's memory. SHIP_RENDER_CACHE=off turns it off.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from pipeline import yamlsafe
from pipeline.errors import ConfigError, RenderError
from pipeline.gitops import render_cache

_BIN = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / "bin"
_CACHED = _BIN / "kustomize"


def helm_command() -> str | None:
    """The helm kustomize inflates charts with, or None (a chart base then cannot render)."""
    return (
        os.environ.get("SHIP_HELM")
        or shutil.which("helm")
        or (str(_BIN / "helm") if (_BIN / "helm").exists() else None)
    )


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
    raise RenderError(
        "neither kustomize nor kubectl is installed; run `make binaries` or install kustomize"
    )


def render(folder: Path, display: str | None = None) -> list[dict]:
    """Every object the kustomization in `folder` renders, in kustomize's order."""
    name = display or str(folder)
    if (
        not (folder / "kustomization.yaml").is_file()
        and not (folder / "kustomization.yml").is_file()
    ):
        raise RenderError(f"{name}: no kustomization.yaml")
    command = kustomize_command()
    key = render_cache.key(folder, command, _stamps(command)) if render_cache.enabled() else None
    cached = render_cache.lookup(folder, key) if key else None
    if cached is not None:
        return cached
    proc = subprocess.run([*command, str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(
            f"{name}: kustomize cannot render it: {failure_reason(proc.stderr, proc.returncode)}"
        )
    try:
        objects = [
            doc for doc in yamlsafe.loads_all_generated(proc.stdout, f"{name} (rendered)") if doc
        ]
    except ConfigError as exc:
        raise RenderError(str(exc)) from exc
    if key:
        render_cache.store(folder, key, objects)
    return objects


def failure_reason(stderr: str, code: int) -> str:
    """The one line that says why kustomize failed; for a chart, helm's own error (a template
    error, a kubeVersion refused), which kustomize buries before its `unable to run` line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    # the second: an error of the chart's kustomization itself
    helm = re.search(
        r"recursed accumulation of path '[^']*': Error: (.+)$", stderr, re.MULTILINE
    ) or re.search(r"^Error: Error: (.+)$", stderr, re.MULTILINE)
    if helm and "unable to run" in stderr:
        return f"helm: {helm.group(1)}"
    reason = lines[-1] if lines else f"exit {code}"
    reason = reason.split('err="', 1)[-1].rstrip('"') if 'err="' in reason else reason
    return reason.removeprefix("Error: ")


def _stamps(command: list[str]) -> list:
    """kustomize's binary and helm's (another helm renders a chart otherwise), each by path and
    stamp."""
    binary = shutil.which(command[0]) or command[0]
    return [_stamp(b) for b in (binary, helm_command())]


def _stamp(binary: str | None) -> list:
    """A binary's path, size and modification time: a rebuilt or upgraded one renders afresh."""
    if binary is None:
        return []
    try:
        st = os.stat(binary)
    except OSError:
        return [binary]
    return [binary, st.st_size, st.st_mtime_ns]
