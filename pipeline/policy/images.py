"""Every image that will run, checked before anything is applied: pinned by digest, and signed
with the environment's key when its policy asks.

The images come from the rendered objects, not from the kustomization's `images:` list: a
sidecar or an init container in a base, a Job, a CronJob, an ephemeral container would all run
too. sync_environment calls `admit` on what it is about to apply, so release, promote, rollback,
abort, retire and sync all pass through it, other apps' overlays included. Reads the registry
only through cosign; never writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.config import Environment
from pipeline.context import Context
from pipeline.errors import SignatureError, ValidationError
from pipeline.imageref import ImageRef
from pipeline.kube.podspec import container_images

_DIGEST = re.compile(r"^(?P<name>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class RunningImage:
    subject: str  # Deployment/hk-dev/hellok8s
    pointer: str  # /spec/template/spec/initContainers/0/image
    image: str

    def line(self) -> str:
        return f"{self.subject} {self.pointer}: {self.image or '(no image)'}"


def running_images(objects: list[dict]) -> list[RunningImage]:
    out = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        subject = f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"
        out += [RunningImage(subject, pointer, image) for pointer, image in container_images(obj)]
    return out


def digest_ref(image: str) -> ImageRef | None:
    """`repo[:tag]@sha256:<64 hex>` as an ImageRef (tag may be empty); None when not pinned by
    digest."""
    match = _DIGEST.match(image)
    if not match:
        return None
    name, tag = match["name"], ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return ImageRef(name, tag, match["digest"])


def admit(ctx: Context, env: Environment, objects: list[dict]) -> list[RunningImage]:
    """The images `objects` run; ValidationError when one is not pinned by digest, SignatureError
    when ENV requires signatures and one lacks ENV's key's. Nothing is applied before this
    passes."""
    images = running_images(objects)
    for found in images:
        if digest_ref(found.image) is None:
            raise ValidationError(
                f"{env.name}: {found.line()}: not pinned by digest (@sha256:…); every image "
                "that runs must be, so what runs is what was verified; nothing applied"
            )
    policy = env.policy
    if policy.require_signature and policy.public_key is not None:
        seen: set[str] = set()
        for found in images:
            ref = digest_ref(found.image)
            if ref is None or ref.digest in seen:
                continue
            seen.add(ref.digest)
            ctx.progress(f"verifying the signature of {found.image} with {policy.public_key}")
            problem = ctx.signer().verify(ref, ctx.config.root / policy.public_key)
            if problem:
                raise SignatureError(
                    f"{found.line()}: not signed with "
                    f"{policy.public_key}, which {env.name} requires "
                    f"({problem}); nothing applied"
                )
    return images
