"""Renders a kustomize folder into objects with the real kustomize binary.

ship never re-implements kustomize: it runs `kustomize build` (the pinned binary make installs,
or one on PATH), falling back to `kubectl kustomize`. Read-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pipeline import yamlsafe
from pipeline.errors import ConfigError, RenderError

_CACHED = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / "bin/kustomize"


def kustomize_command() -> list[str]:
    if os.environ.get("SHIP_KUSTOMIZE"):
        return [os.environ["SHIP_KUSTOMIZE"], "build"]
    found = shutil.which("kustomize") or (str(_CACHED) if _CACHED.exists() else None)
    if found:
        return [found, "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise RenderError("neither kustomize nor kubectl is installed; run `make binaries` or install kustomize")


def render(folder: Path, display: str | None = None) -> list[dict]:
    """Every object the kustomization in `folder` renders, in kustomize's order."""
    name = display or str(folder)
    if not (folder / "kustomization.yaml").is_file() and not (folder / "kustomization.yml").is_file():
        raise RenderError(f"{name}: no kustomization.yaml")
    proc = subprocess.run([*kustomize_command(), str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit {proc.returncode}"
        reason = reason.split('err="', 1)[-1].rstrip('"') if 'err="' in reason else reason
        raise RenderError(f"{name}: kustomize cannot render it: {reason.removeprefix('Error: ')}")
    try:
        return [doc for doc in yamlsafe.loads_all(proc.stdout, f"{name} (rendered)") if doc]
    except ConfigError as exc:
        raise RenderError(str(exc)) from exc
