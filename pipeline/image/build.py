"""`ship build`: turn the checked-out commit into a pushed, digest-pinned image.

Runs the app's build steps (e.g. `go build`), builds the image with the Docker SDK (any
Docker-API engine: Docker, or podman's service), tags it with the commit's full SHA (a short one
can be ground: 2^28 tries), pushes it, and pins it by the digest the push reported, checked
against the registry's manifest bytes. The same commit built twice gives the same tag; when that
tag is already in the registry it is reused only when its config (digest-verified) says it was
built from this very commit, so a pinned reference never moves.

With a signing key (--key, or $SHIP_COSIGN_KEY) only what this run built and pushed is signed:
anyone who can push to the registry could have put a found tag there, so ship never signs one.
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
    signed: bool = False  # signed with cosign by this run (a signing key was given, and this run built it)
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


# The only variables an app's build steps see: a toolchain's, never a secret, a token or a key.
# Build steps are the app's own code, and whoever can change the app can change them.
STEP_VARIABLES = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM", "SOURCE_DATE_EPOCH",
                  "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
STEP_PREFIXES = ("GO", "CGO_")  # GOPATH, GOCACHE, GOMODCACHE, GOPROXY, GOFLAGS, CGO_ENABLED …


def step_environment(environ: dict[str, str], tag: str) -> dict[str, str]:
    """The allow-listed environment of a build step: toolchain variables and SHIP_TAG only."""
    kept = {k: v for k, v in environ.items() if k in STEP_VARIABLES or k.startswith(STEP_PREFIXES)}
    return {**kept, "SHIP_TAG": tag}


def redact(text: str, environ: dict[str, str]) -> str:
    """`text` with the value of every variable a build step was not given (and its base64) blanked:
    a step's output may still quote one, e.g. from a file it read."""
    import base64

    for name, value in environ.items():
        if len(value) >= 6 and not (name in STEP_VARIABLES or name.startswith(STEP_PREFIXES)):
            for form in (value, base64.b64encode(value.encode()).decode().rstrip("=")):
                text = text.replace(form, "***")
    return text


def run_build_steps(app: App, root: Path, tag: str, progress: Progress) -> None:
    context = root / app.path
    environ = dict(os.environ)
    for step in app.build:
        progress(f"build step: {step}")
        # shell=True: a step is a line of shell in ship.yaml; it runs without ship's secrets.
        proc = subprocess.run(step, shell=True, cwd=context, capture_output=True, text=True,
                              env=step_environment(environ, tag), stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = redact(_tail(proc.stdout + proc.stderr), environ)
            raise BuildError(f"{app.name}: build step failed (exit {proc.returncode}): {step}: {tail}")


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


def image_tag(sha: str, dirty_digest: str = "") -> str:
    """The tag of a build of commit `sha`: the full sha (immutable: ship never pushes over a tag
    of a clean build), or `<sha>-dirty-<12 hex of the changes>` for uncommitted changes."""
    return f"{sha}-dirty-{dirty_digest}" if dirty_digest else sha


def _built_from(registry: Any, ref: ImageRef) -> str:
    return str(registry.labels(ref.path, ref.digest).get(REVISION_LABEL, ""))


def _reuse(ctx: Context, existing: ImageRef, sha: str, key: str | None) -> BuildResult:
    """The found tag, when its config says it was built from `sha`; never signed by this run."""
    revision = _built_from(ctx.registry(), existing)
    if revision != sha:
        raise BuildError(f"{existing.repository}:{existing.tag} is already in the registry but its "
                         f"{REVISION_LABEL} is {revision or 'missing'}, not {sha}: not reusing or signing an image "
                         "this run did not build; delete the tag from the registry to build it again")
    ctx.progress(f"{existing.repository}:{existing.tag} is already in the registry (built from {sha[:7]}); not rebuilding")
    note = ("not signed: only an image this run built is signed; this one was found in the registry "
            "(ship verify ENV checks its signature)")
    return BuildResult(existing, sha, built=False, warning=note if signing_key(key) else "")


def _pin_pushed(ctx: Context, repository: str, tag: str, reported: str | None, sha: str) -> ImageRef:
    """The digest the push reported, once the registry serves it under the tag and its config says `sha`."""
    if not reported:
        raise BuildError(f"pushed {repository}:{tag} but the build engine reported no digest; nothing is signed or pinned")
    pinned = ctx.registry().resolve(repository, tag)
    if pinned is None:
        raise BuildError(f"pushed {repository}:{tag} but the registry does not have it")
    if reported != pinned.digest:
        raise BuildError(f"digest mismatch for {repository}:{tag}: engine pushed {reported}, registry serves {pinned.digest}")
    revision = _built_from(ctx.registry(), pinned)
    if revision != sha:
        raise BuildError(f"{repository}@{reported}: its {REVISION_LABEL} is {revision or 'missing'}, not {sha}")
    return pinned


def build_app(ctx: Context, app: App, *, allow_dirty: bool = False, key: str | None = None) -> BuildResult:
    """APP's image for its last source commit: found in the registry (built from that very commit),
    or built, pushed and pinned, then signed when there is a signing key."""
    cfg, progress = ctx.config, ctx.progress
    dirty = ctx.workspace.git.require_clean(allow_dirty)
    head = ctx.workspace.git.last_change(str(app.path))
    # A pinned tag never moves: a build of uncommitted changes gets a tag of its own.
    tag = image_tag(head.sha, ctx.workspace.git.changes_digest(str(app.path)) if dirty else "")
    repository = cfg.repository(app)
    existing = ctx.registry().resolve(repository, tag)
    if existing and not dirty:
        return _reuse(ctx, existing, head.sha, key)
    run_build_steps(app, cfg.root, tag, progress)
    engine: Any = ctx.engine()
    progress(f"building {repository}:{tag}")
    build_image(engine, app, cfg.root, f"{repository}:{tag}", progress, revision=head.sha)
    progress(f"pushing {repository}:{tag}")
    reported = push_image(engine, repository, tag, progress, ctx.credentials.lookup(cfg.registry_host))
    return sign(ctx, BuildResult(_pin_pushed(ctx, repository, tag, reported, head.sha), head.sha, built=True), key)


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
