"""`ship build`: turn the checked-out commit into a pushed, digest-pinned image.

Runs the app's build steps (e.g. `go build`), builds the image with the Docker SDK (any
Docker-API engine: Docker, or podman's service), tags it with the commit's short SHA, pushes
it, and pins it by the digest computed from the registry's manifest bytes. The same commit
built twice gives the same tag; when that tag is already in the registry nothing is rebuilt,
so a pinned reference never moves. With a signing key (--key, or $SHIP_COSIGN_KEY) the pinned
digest is signed with cosign, the signature stored beside it in the registry (signing.py).
Never writes to git.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline import names
from pipeline.config import App
from pipeline.context import Context
from pipeline.errors import BuildError
from pipeline.image.credentials import Lookup
from pipeline.image.registry import ImageRef
from pipeline.image.signing import signing_key
from pipeline.progress import Progress

LOG_TAIL = 15
REVISION_LABEL = "org.opencontainers.image.revision"  # the source commit, for `ship release --image`


@dataclass(frozen=True)
class BuildResult:
    image: ImageRef
    commit: str
    built: bool  # False when the tag was already in the registry
    signed: bool = False  # signed with cosign (a signing key was given)
    warning: str = ""  # why it was not signed, when an environment requires signatures

    def to_json(self) -> dict:
        return {"image": str(self.image), "tag": self.image.tag, "digest": self.image.digest, "commit": self.commit,
                "built": self.built, "signed": self.signed}

    def text(self) -> str:
        return str(self.image)

    def notes(self) -> list[str]:
        return [self.warning] if self.warning else []


def _tail(text: str, lines: int = LOG_TAIL) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def run_build_steps(app: App, root: Path, tag: str, progress: Progress) -> None:
    context = root / app.path
    for step in app.build:
        progress(f"build step: {step}")
        proc = subprocess.run(step, shell=True, cwd=context, capture_output=True, text=True,
                              env={**os.environ, "SHIP_TAG": tag})
        if proc.returncode != 0:
            raise BuildError(
                f"{app.name}: build step failed (exit {proc.returncode}): {step}: {_tail(proc.stdout + proc.stderr)}"
            )


def docker_client():
    """A Docker SDK client for DOCKER_HOST (or the engine's default socket)."""
    import docker

    try:
        return docker.from_env(timeout=600)
    except docker.errors.DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "the default Docker socket")
        raise BuildError(f"build engine at {host} unreachable: {exc}") from exc


def build_image(engine, app: App, root: Path, reference: str, progress: Progress, revision: str = "") -> None:
    import docker

    context = root / app.path
    if not (context / app.dockerfile).is_file():
        raise BuildError(f"{app.name}: {app.path / app.dockerfile}: Dockerfile not found")
    log: list[str] = []
    try:
        for chunk in engine.api.build(path=str(context), dockerfile=app.dockerfile, tag=reference, rm=True,
                                      forcerm=True, decode=True,
                                      labels={"org.opencontainers.image.source": app.name, REVISION_LABEL: revision}):
            if "error" in chunk:
                raise BuildError(f"{app.name}: image build failed: {chunk['error'].strip()} | {_tail(''.join(log), 5)}")
            text = chunk.get("stream", "")
            if text.strip():
                log.append(text)
                if text.startswith("STEP") or text.startswith("Step"):
                    progress(text.strip())
    except docker.errors.APIError as exc:
        raise BuildError(f"{app.name}: image build failed: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:
        raise BuildError(f"{app.name}: build engine failed: {exc}") from exc


def push_image(engine, repository: str, tag: str, progress: Progress, login: Lookup | None = None) -> str | None:
    """Push with the registry credential ship found (the engine's own login when none) and return
    the digest the engine reports (a hint, checked against the registry)."""
    import docker

    reported = None
    auth = {"auth_config": login.credential.auth_config()} if login and login.credential else {}
    try:
        for chunk in engine.api.push(repository, tag=tag, stream=True, decode=True, **auth):
            if "error" in chunk:
                how = f" ({login.describe()}; {login.hint()})" if login else ""
                raise BuildError(f"push of {repository}:{tag} refused: {chunk['error'].strip()}{how}")
            status = chunk.get("status", "")
            if "digest:" in status:
                reported = status.split("digest:")[1].split()[0]
            elif status and "Pushing" not in status:
                progress(status)
    except docker.errors.APIError as exc:
        raise BuildError(f"push of {repository}:{tag} refused: {exc.explanation or exc}") from exc
    return reported


def sign(ctx: Context, result: BuildResult, key: str | None) -> BuildResult:
    """The build signed with `key` (a path) or $SHIP_COSIGN_KEY; unsigned, with a warning when an
    environment requires signatures, when there is neither."""
    found = signing_key(key)
    if found is None:
        strict = [e.name for e in ctx.config.environments.values() if e.policy.require_signature]
        warning = (f"not signed: no signing key (--key or ${names.SIGNING_KEY_VARIABLE}); {', '.join(strict)} "
                   "refuse unsigned images") if strict else ""
        return replace(result, warning=warning)
    ctx.progress(f"signing {result.image} with cosign")
    ctx.signer().sign(result.image, found)
    return replace(result, signed=True)


def build_app(ctx: Context, app: App, *, allow_dirty: bool = False, key: str | None = None) -> BuildResult:
    """APP's image for its last source commit: found in the registry, or built, pushed and pinned;
    then signed when there is a signing key (again, for a found one: cosign keeps one signature
    per key)."""
    cfg, progress = ctx.config, ctx.progress
    dirty = ctx.workspace.git.require_clean(allow_dirty)
    head = ctx.workspace.git.last_change(str(app.path))
    # A pinned tag never moves: a build of uncommitted changes gets a tag of its own.
    tag = head.short if not dirty else f"{head.short}-dirty-{ctx.workspace.git.changes_digest(str(app.path))}"
    repository = cfg.repository(app)
    registry = ctx.registry()
    existing = registry.resolve(repository, tag)
    if existing and not dirty:
        progress(f"{repository}:{tag} is already in the registry; not rebuilding")
        return sign(ctx, BuildResult(existing, head.sha, built=False), key)
    run_build_steps(app, cfg.root, tag, progress)
    engine: Any = ctx.engine()
    progress(f"building {repository}:{tag}")
    build_image(engine, app, cfg.root, f"{repository}:{tag}", progress, revision=head.sha)
    progress(f"pushing {repository}:{tag}")
    reported = push_image(engine, repository, tag, progress, ctx.credentials.lookup(cfg.registry_host))
    pinned = registry.resolve(repository, tag)
    if pinned is None:
        raise BuildError(f"pushed {repository}:{tag} but the registry does not have it")
    if reported and reported != pinned.digest:
        raise BuildError(f"digest mismatch for {repository}:{tag}: engine pushed {reported}, registry serves {pinned.digest}")
    return sign(ctx, BuildResult(pinned, head.sha, built=True), key)


@dataclass(frozen=True)
class Builds:
    """`ship build` of several apps (or `--changed`): a line `APP IMAGE` each."""

    builds: dict[str, BuildResult]  # by app, in ship.yaml's order

    def to_json(self) -> dict:
        return {"images": {app: str(b.image) for app, b in self.builds.items()}}

    def text(self) -> str:
        return "\n".join(f"{app} {b.image}" for app, b in self.builds.items())

    def notes(self) -> list[str]:
        return [f"{app}: {b.warning}" for app, b in self.builds.items() if b.warning]
