"""`ship verify ENV`: re-resolve every pinned tag@digest in an overlay against the registry.

A tag that now points at another digest (someone pushed over it) or no longer exists fails
the check: the overlay still runs the pinned digest, but the tag no longer tells the truth.
Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Environment
from pipeline.context import Context
from pipeline.errors import ConfigError, RegistryError
from pipeline.gitops import yamlsafe
from pipeline.gitops.overlay import KUSTOMIZATION
from pipeline.image.registry import ImageRef


@dataclass(frozen=True)
class VerifiedImage:
    image: str
    ok: bool
    problem: str = ""

    def text(self) -> str:
        return f"{'ok' if self.ok else 'MOVED'}  {self.image}" + ("" if self.ok else f"  ({self.problem})")


def pinned_images(ctx: Context, env: Environment) -> list[ImageRef]:
    path = ctx.config.root / env.overlay / KUSTOMIZATION
    if not path.is_file():
        raise ConfigError(f"{env.overlay}/{KUSTOMIZATION}: not found; nothing has been released to {env.name}")
    kz = yamlsafe.load_file(path, f"{env.overlay}/{KUSTOMIZATION}") or {}
    refs = []
    for entry in kz.get("images", []):
        if entry.get("digest") and entry.get("newTag"):
            refs.append(ImageRef(entry.get("newName", entry["name"]), entry["newTag"], entry["digest"]))
    return refs


def verify_images(ctx: Context, env: Environment) -> list[VerifiedImage]:
    results = []
    for ref in pinned_images(ctx, env):
        try:
            live = ctx.registry(ref.registry).manifest_digest(ref.path, ref.tag)
        except RegistryError as exc:
            results.append(VerifiedImage(str(ref), False, str(exc)))
            continue
        if live is None:
            results.append(VerifiedImage(str(ref), False, f"tag {ref.tag} no longer exists"))
        elif live != ref.digest:
            results.append(VerifiedImage(str(ref), False, f"tag {ref.tag} now points at {live}"))
        else:
            results.append(VerifiedImage(str(ref), True))
    return results
