"""`ship build`: turn the checked-out commit into a pushed, digest-pinned image.

Runs the app's build steps and builds and pushes the image through the build engine
(image/engine.py), tags it with the commit's full SHA (a short one can be ground: 2^28 tries), and
pins it by the digest the push reported, checked against the registry's manifest bytes. The same
commit built twice gives the same tag; when that tag is already in the registry it is reused only
when its config (digest-verified) says it was built from this very commit, so a pinned reference
never moves.

With a signing key (--key, or $SHIP_COSIGN_KEY) only what this run built and pushed is signed:
anyone who can push to the registry could have put a found tag there, so ship never signs one.
Never writes to git.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipeline import names
from pipeline.config import App
from pipeline.context import Context
from pipeline.errors import BuildError
from pipeline.image.engine import build_image, image_tag, push_image, run_build_steps
from pipeline.image.signing import signing_key
from pipeline.imageref import ImageRef


@dataclass(frozen=True)
class BuildResult:
    image: ImageRef
    commit: str
    built: bool  # False when the tag was already in the registry
    # signed with cosign by this run (a signing key was given, and this run built it)
    signed: bool = False
    warning: str = ""  # why it was not signed, when an environment requires signatures

    def to_json(self) -> dict:
        return {
            "image": str(self.image),
            "tag": self.image.tag,
            "digest": self.image.digest,
            "commit": self.commit,
            "built": self.built,
            "signed": self.signed,
        }

    def text(self) -> str:
        return str(self.image)

    def notes(self) -> list[str]:
        return [self.warning] if self.warning else []


def sign(ctx: Context, result: BuildResult, key: str | None) -> BuildResult:
    """The build signed with `key` (a path) or $SHIP_COSIGN_KEY; unsigned, with a warning when an
    environment requires signatures, when there is neither."""
    found = signing_key(key)
    if found is None:
        strict = [e.name for e in ctx.config.environments.values() if e.policy.require_signature]
        warning = (
            (
                "not signed: no signing key (--key or "
                f"${names.SIGNING_KEY_VARIABLE}); {', '.join(strict)} "
                "refuse unsigned images"
            )
            if strict
            else ""
        )
        return replace(result, warning=warning)
    ctx.progress(f"signing {result.image} with cosign")
    ctx.signer().sign(result.image, found)
    return replace(result, signed=True)


def _built_from(registry: Any, ref: ImageRef) -> str:
    return str(registry.labels(ref.path, ref.digest).get(names.REVISION_LABEL, ""))


def _reuse(ctx: Context, existing: ImageRef, sha: str, key: str | None) -> BuildResult:
    """The found tag, when its config says it was built from `sha`; never signed by this run."""
    revision = _built_from(ctx.registry(), existing)
    if revision != sha:
        raise BuildError(
            f"{existing.repository}:{existing.tag} is already in the registry but its "
            f"{names.REVISION_LABEL} is {revision or 'missing'}, "
            f"not {sha}: not reusing or signing an image "
            "this run did not build; delete the tag from the registry to build it again"
        )
    ctx.progress(
        f"{existing.repository}:{existing.tag} is already in "
        f"the registry (built from {sha[:7]}); not rebuilding"
    )
    note = (
        "not signed: only an image this run built is signed; this one was found in the registry "
        "(ship verify ENV checks its signature)"
    )
    return BuildResult(existing, sha, built=False, warning=note if signing_key(key) else "")


def _pin_pushed(
    ctx: Context, repository: str, tag: str, reported: str | None, sha: str
) -> ImageRef:
    """The digest the push reported, once the registry serves it under the tag and its config says
    `sha`."""
    if not reported:
        raise BuildError(
            f"pushed {repository}:{tag} but the build engine "
            "reported no digest; nothing is signed or pinned"
        )
    pinned = ctx.registry().resolve(repository, tag)
    if pinned is None:
        raise BuildError(f"pushed {repository}:{tag} but the registry does not have it")
    if reported != pinned.digest:
        raise BuildError(
            f"digest mismatch for {repository}:{tag}: engine "
            f"pushed {reported}, registry serves {pinned.digest}"
        )
    revision = _built_from(ctx.registry(), pinned)
    if revision != sha:
        raise BuildError(
            f"{repository}@{reported}: its {names.REVISION_LABEL} "
            f"is {revision or 'missing'}, not {sha}"
        )
    return pinned


def build_app(
    ctx: Context, app: App, *, allow_dirty: bool = False, key: str | None = None
) -> BuildResult:
    """APP's image for its last source commit: found in the registry (built from that very commit),
    or built, pushed and pinned, then signed when there is a signing key."""
    cfg, progress = ctx.config, ctx.progress
    dirty = ctx.workspace.git.require_clean(allow_dirty=allow_dirty)
    head = ctx.workspace.git.last_change(app.sources, cfg.ignore)
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
    reported = push_image(
        engine, repository, tag, progress, ctx.credentials.lookup(cfg.registry_host)
    )
    return sign(
        ctx,
        BuildResult(_pin_pushed(ctx, repository, tag, reported, head.sha), head.sha, built=True),
        key,
    )


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
