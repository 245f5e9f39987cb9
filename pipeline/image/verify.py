"""`ship verify ENV`: re-resolve every pinned tag@digest in an overlay against the registry.

A tag that now points at another digest (someone pushed over it) or no longer exists fails
the check: the overlay still runs the pinned digest, but the tag no longer tells the truth.
Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.gitops import yamlsafe
from pipeline.config import Environment, ShipConfig
from pipeline.errors import ConfigError, RegistryError
from pipeline.gitops.overlay import KUSTOMIZATION
from pipeline.image.registry import ImageRef, Registry


@dataclass(frozen=True)
class VerifiedImage:
    image: str
    ok: bool
    problem: str = ""


def pinned_images(cfg: ShipConfig, env: Environment) -> list[ImageRef]:
    path = cfg.root / env.overlay / KUSTOMIZATION
    if not path.is_file():
        raise ConfigError(f"{env.overlay}/{KUSTOMIZATION}: not found; nothing has been released to {env.name}")
    kz = yamlsafe.load_file(path, f"{env.overlay}/{KUSTOMIZATION}") or {}
    refs = []
    for entry in kz.get("images", []):
        if entry.get("digest") and entry.get("newTag"):
            refs.append(ImageRef(entry.get("newName", entry["name"]), entry["newTag"], entry["digest"]))
    return refs


def verify(cfg: ShipConfig, env: Environment) -> list[VerifiedImage]:
    results = []
    for ref in pinned_images(cfg, env):
        registry = Registry(ref.registry)
        try:
            live = registry.manifest_digest(ref.path, ref.tag)
        except RegistryError as exc:
            results.append(VerifiedImage(str(ref), False, str(exc)))
            continue
        finally:
            registry.close()
        if live is None:
            results.append(VerifiedImage(str(ref), False, f"tag {ref.tag} no longer exists"))
        elif live != ref.digest:
            results.append(VerifiedImage(str(ref), False, f"tag {ref.tag} now points at {live}"))
        else:
            results.append(VerifiedImage(str(ref), True))
    return results
