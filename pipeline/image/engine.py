"""The build engine's side of `ship build`: an app's build steps, then an image built and pushed.

Runs the app's build steps (e.g. `go build`) with only a toolchain's variables, builds the image
with the Docker SDK (any Docker-API engine: Docker, or podman's service) and pushes it with the
registry credential ship found, returning the digest the engine reports (a hint: the flow in
supply/build.py checks it against the registry). Takes no Context; never signs, never writes to git.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline import names
from pipeline.config import App
from pipeline.errors import BuildError
from pipeline.image.credentials import Lookup
from pipeline.progress import Progress

LOG_TAIL = 15


def _tail(text: str, lines: int = LOG_TAIL) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


# The only variables an app's build steps see: a toolchain's, never a secret, a token or a key.
# Build steps are the app's own code, and whoever can change the app can change them.
STEP_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
    "SOURCE_DATE_EPOCH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
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
        proc = subprocess.run(
            step,
            shell=True,
            cwd=context,
            capture_output=True,
            text=True,
            env=step_environment(environ, tag),
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            tail = redact(_tail(proc.stdout + proc.stderr), environ)
            raise BuildError(
                f"{app.name}: build step failed (exit {proc.returncode}): {step}: {tail}"
            )


def docker_client():
    """A Docker SDK client for DOCKER_HOST (or the engine's default socket)."""
    import docker

    try:
        return docker.from_env(timeout=600)
    except docker.errors.DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "the default Docker socket")
        raise BuildError(f"build engine at {host} unreachable: {exc}") from exc


def build_image(
    engine, app: App, root: Path, reference: str, progress: Progress, revision: str = ""
) -> None:
    import docker

    context = root / app.path
    if not (context / app.dockerfile).is_file():
        raise BuildError(f"{app.name}: {app.path / app.dockerfile}: Dockerfile not found")
    log: list[str] = []
    try:
        for chunk in engine.api.build(
            path=str(context),
            dockerfile=app.dockerfile,
            tag=reference,
            rm=True,
            forcerm=True,
            decode=True,
            labels={"org.opencontainers.image.source": app.name, names.REVISION_LABEL: revision},
        ):
            if "error" in chunk:
                raise BuildError(
                    f"{app.name}: image build failed: "
                    f"{chunk['error'].strip()} | {_tail(''.join(log), 5)}"
                )
            text = chunk.get("stream", "")
            if text.strip():
                log.append(text)
                if text.startswith("STEP") or text.startswith("Step"):
                    progress(text.strip())
    except docker.errors.APIError as exc:
        raise BuildError(f"{app.name}: image build failed: {exc.explanation or exc}") from exc
    except docker.errors.DockerException as exc:
        raise BuildError(f"{app.name}: build engine failed: {exc}") from exc


def push_image(
    engine, repository: str, tag: str, progress: Progress, login: Lookup | None = None
) -> str | None:
    """Push with the registry credential ship found (the engine's own login when none) and return
    the digest the engine reports (a hint, checked against the registry)."""
    import docker

    reported = None
    auth = {"auth_config": login.credential.auth_config()} if login and login.credential else {}
    try:
        for chunk in engine.api.push(repository, tag=tag, stream=True, decode=True, **auth):
            if "error" in chunk:
                how = f" ({login.describe()}; {login.hint()})" if login else ""
                raise BuildError(
                    f"push of {repository}:{tag} refused: {chunk['error'].strip()}{how}"
                )
            status = chunk.get("status", "")
            if "digest:" in status:
                reported = status.split("digest:")[1].split()[0]
            elif status and "Pushing" not in status:
                progress(status)
    except docker.errors.APIError as exc:
        raise BuildError(f"push of {repository}:{tag} refused: {exc.explanation or exc}") from exc
    return reported


def image_tag(sha: str, dirty_digest: str = "") -> str:
    """The tag of a build of commit `sha`: the full sha (immutable: ship never pushes over a tag
    of a clean build), or `<sha>-dirty-<12 hex of the changes>` for uncommitted changes."""
    return f"{sha}-dirty-{dirty_digest}" if dirty_digest else sha
