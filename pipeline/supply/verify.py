"""`ship verify ENV`: re-resolve every pinned tag@digest in an overlay against the registry, and
check each digest's signature when the environment names a public key.

A tag that now points at another digest (someone pushed over it) or no longer exists fails
the check: the overlay still runs the pinned digest, but the tag no longer tells the truth.
A digest without a signature made with the environment's key fails it too. A remote chart a
release runs is re-resolved the same way: its version must still be the archive the release
pinned (image/charts.py). Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline import yamlsafe
from pipeline.config import Environment, Slot
from pipeline.context import Context
from pipeline.errors import ConfigError, RegistryError, ShipError, SignatureError
from pipeline.gitops.overlay import CANARY_DIR, KUSTOMIZATION
from pipeline.image import chartrepo, charts
from pipeline.imageref import ImageRef


@dataclass(frozen=True, kw_only=True)
class VerifiedPin:
    """What asking the registry again said of one pinned reference: an image or a remote chart."""

    ref: str  # REPO:TAG@sha256:… for an image, the chart source (REPO:VERSION@sha256:…) for a chart
    ok: bool
    problem: str = ""
    # `signed with keys/cosign.pub`, when the environment names a key (images only)
    signature: str = ""
    unsigned: bool = False  # the problem is its signature (the tag is fine)

    def text(self) -> str:
        if self.ok:
            return f"ok  {self.ref}" + (f"  ({self.signature})" if self.signature else "")
        return f"{'UNSIGNED' if self.unsigned else 'MOVED'}  {self.ref}  ({self.problem})"

    def error(self, environment: str) -> ShipError:
        kind = SignatureError if self.unsigned else RegistryError
        return kind(f"{environment}: {self.ref}: {self.problem}")


def pinned_images(ctx: Context, env: Environment) -> list[ImageRef]:
    """Every image ENV's overlay pins, app by app: the stable releases' and, during a canary, the
    canary's."""
    path = ctx.config.root / env.folder / KUSTOMIZATION
    if not path.is_file():
        raise ConfigError(
            f"{env.folder}/{KUSTOMIZATION}: not found; nothing has been released to {env.name}"
        )
    refs: list[ImageRef] = []
    slots = [Slot(env, app).overlay for app in ctx.workspace.apps_in(env)]
    for folder in [f for slot in slots for f in (slot, slot / CANARY_DIR)]:
        kz_path = ctx.config.root / folder / KUSTOMIZATION
        kz = (
            (yamlsafe.load_file(kz_path, f"{folder}/{KUSTOMIZATION}", ctx.config.root) or {})
            if kz_path.is_file()
            else {}
        )
        for entry in kz.get("images", []):
            if entry.get("digest") and entry.get("newTag"):
                ref = ImageRef(
                    entry.get("newName", entry["name"]), entry["newTag"], entry["digest"]
                )
                refs += [] if ref in refs else [ref]
    return refs


def _signature(ctx: Context, env: Environment, ref: ImageRef) -> VerifiedPin:
    key = env.policy.public_key
    if key is None:
        return VerifiedPin(ref=str(ref), ok=True)
    problem = ctx.signer().verify(ref, ctx.config.root / key)
    if problem:
        return VerifiedPin(
            ref=str(ref), ok=False, problem=f"not signed with {key}: {problem}", unsigned=True
        )
    return VerifiedPin(ref=str(ref), ok=True, signature=f"signed with {key}")


def other_images(ctx: Context, env: Environment, pinned: list[ImageRef]) -> list[VerifiedPin]:
    """The images ENV's rendered objects run besides the pinned releases (sidecars, init
    containers, Jobs …): each must be pinned by digest, and signed when ENV names a key."""
    from pipeline.policy.images import digest_ref, running_images

    known = {ref.digest for ref in pinned}
    rendered = ctx.workspace.render_overlay(env)
    results: list[VerifiedPin] = []
    for found in running_images(rendered):
        ref = digest_ref(found.image)
        if ref is None:
            problem = f"{found.subject} {found.pointer}: not pinned by digest"
            results.append(VerifiedPin(ref=found.image, ok=False, problem=problem))
        elif ref.digest not in known:
            known.add(ref.digest)
            checked = _signature(ctx, env, ref)
            results.append(replace(checked, ref=found.image))
    return results


def verify_charts(ctx: Context, env: Environment) -> list[VerifiedPin]:
    """Every remote chart ENV's releases run (`chart_source`), asked again: is its version still
    that archive? A chart archive pushed over the version fails, as a moved tag does."""
    results = []
    for app in ctx.workspace.apps_in(env):
        current = ctx.workspace.current_release(Slot(env, app))
        if current is None or not current.chart_source:
            continue
        ref = charts.ChartRef.parse(current.chart_source)
        try:
            live = chartrepo.archives_for(ref.repo, ctx.registry, ctx.http).resolve(
                ref.repo, ref.version
            )
        except RegistryError as exc:
            results.append(VerifiedPin(ref=str(ref), ok=False, problem=str(exc)))
            continue
        ok = live.digest == ref.digest
        problem = "" if ok else f"version {ref.version} now is archive {live.digest}"
        results.append(VerifiedPin(ref=str(ref), ok=ok, problem=problem))
    return results


def verify_pins(ctx: Context, env: Environment) -> list[VerifiedPin]:
    """Every image and remote chart ENV pins, asked again; then the other images it runs."""
    results = []
    pinned = pinned_images(ctx, env)
    for ref in pinned:
        try:
            live = ctx.registry(ref.registry).manifest_digest(ref.path, ref.tag)
        except RegistryError as exc:
            results.append(VerifiedPin(ref=str(ref), ok=False, problem=str(exc)))
            continue
        if live is None:
            results.append(
                VerifiedPin(ref=str(ref), ok=False, problem=f"tag {ref.tag} no longer exists")
            )
        elif live != ref.digest:
            results.append(
                VerifiedPin(ref=str(ref), ok=False, problem=f"tag {ref.tag} now points at {live}")
            )
        else:
            results.append(_signature(ctx, env, ref))
    return results + verify_charts(ctx, env) + other_images(ctx, env, pinned)
