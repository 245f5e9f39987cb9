"""Writing a release into an environment: the record, the overlay, the ledger, one commit.

    image (built, or given and checked) ─► Release record ─► overlay.plan_release ─► publish

The decisions live in overlay.py; this module gathers the inputs (the source commit, the app's
config for the environment, its rendered base) and has the workspace publish them. Secrets
never reach git: a Secret with data in the overlay or the app's base stops the release, naming
the file. Syncing and gating what was written is gating.py's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pipeline import names
from pipeline.config import App, Environment, Slot
from pipeline.context import Context
from pipeline.errors import PromotionError, RegistryError
from pipeline.gitops import configmaps, overlay
from pipeline.gitops.git import Commit
from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome
from pipeline.gitops.records import Release, release_id
from pipeline.image import chartrepo, charts
from pipeline.image.registry import Registry
from pipeline.imageref import ImageRef
from pipeline.kube.apply import SyncResult
from pipeline.names import REVISION_LABEL
from pipeline.rollout.gate import GateResult

LedgerChange = Callable[[Ledger, Release], Ledger]


@dataclass(frozen=True)
class WriteOptions:
    """How `write_releases` commits releases into their slots; every field has a default."""

    push: bool = True  # push the commit (False: it stays in the local clone)
    action: str = "release"  # the commit's type: release, promote, rollback
    # the commit's title; None: `ACTION(ENV): APP@ID`, or `ACTION(ENV): N apps: …`
    title: str | None = None
    # write a release even when it is the current one already (a rollback does)
    always: bool = False
    # New releases: their ids are settled against the ledger they are written into, so two runs
    # racing to release different images of one commit get different ids.
    new_id: bool = False
    # how each ledger changes; None: the release added as pending
    ledger_change: LedgerChange | None = None
    # the control a pending release went through (a freeze override), noted in its entry
    override: str = ""
    extra: dict[str, str | None] = field(default_factory=dict)  # more commit trailers


@dataclass
class ReleaseResult:
    release: Release
    commit: Commit | None  # None when the release was already in place
    changed: bool
    sync: SyncResult | None = None  # when the release was synced
    gate: GateResult | None = None  # when it was gated
    source: str | None = None  # the environment it was promoted from; None for a release
    show_sync: bool = True  # False for all but one of the apps a sync applied together: said once

    def to_json(self) -> dict:
        return {
            "release": self.release.record(),
            **({"outcome": "promoted"} if self.source else {}),
            "changed": self.changed,
            "commit": self.commit.sha if self.commit else None,
            "changes": [c.to_json() for c in self.sync.changes] if self.sync else [],
            "gate": self.gate.to_json() if self.gate else None,
        }

    def lines(self, done: str, already: str) -> list[str]:
        """`done`/`already`: the first line when something changed, or when nothing had to."""
        out = [done if self.changed else already]
        out += [str(c) for c in self.sync.changes] if self.sync and self.show_sync else []
        return out + ([str(self.gate)] if self.gate else [])

    def text(self) -> str:
        rel = self.release
        if self.source:
            return "\n".join(
                self.lines(
                    f"promoted {rel.ref} from {self.source} to {rel.environment}: {rel.image}",
                    f"{rel.ref} is already in {rel.environment}; nothing to promote",
                )
            )
        return "\n".join(
            self.lines(
                f"released {rel.ref} to {rel.environment}: {rel.image} "
                f"(commit {self.commit.short if self.commit else '-'})",
                f"{rel.ref} is already released to {rel.environment}; nothing to do",
            )
        )


def check_image(registry: Registry, image: str) -> ImageRef:
    """The pinned image, after confirming its tag still points at its digest in the registry."""
    ref = ImageRef.parse(image)
    live = registry.manifest_digest(ref.path, ref.tag)
    if live is None:
        raise RegistryError(f"{ref.repository}:{ref.tag} is not in the registry")
    if live != ref.digest:
        raise RegistryError(f"{ref.repository}:{ref.tag} now points at {live}, not {ref.digest}")
    return ref


def image_source(ctx: Context, ref: ImageRef) -> Commit:
    """The commit an image was built from: its tag (ship tags images with the full sha of the
    app's last change), else its org.opencontainers.image.revision label, checked against git."""
    git = ctx.workspace.git
    found = git.resolve(ref.tag) if re.fullmatch(r"[0-9a-f]{7,40}", ref.tag) else None
    if found is None:
        revision = ctx.registry(ref.registry).labels(ref.path, ref.digest).get(REVISION_LABEL, "")
        found = git.resolve(revision) if revision else None
    if found is None:
        raise PromotionError(
            f"{ref}: cannot tell which commit it was built from: its tag {ref.tag} is not a commit "
            f"of this repository and it has no {REVISION_LABEL} label naming one"
        )
    return found


def refuse_older(
    ctx: Context, slot: Slot, built_from: Commit, image: str, *, allow_older: bool
) -> None:
    """Runs can finish out of order: an image built from a commit older than the one ENV's current
    release's image was built from is refused."""
    current = ctx.workspace.current_release(slot)
    if current is None or allow_older:
        return
    theirs = current.image_commit or current.commit
    if ctx.workspace.git.is_older(built_from.sha, theirs):
        raise PromotionError(
            f"{image} was built from {built_from.short}, older "
            f"than the image of {slot.env.name}'s current "
            f"release {current.id} (built from {theirs[:7]}); "
            "pass --allow-older to release it anyway"
        )


def new_release(
    ctx: Context,
    slot: Slot,
    image: str,
    source: Commit,
    author: str,
    image_commit: str | None = None,
) -> Release:
    """The release record of `image` with the environment's config for the slot's app at `source`
    (the app's last change)."""
    app = ctx.config.app(slot.app)
    data = ctx.workspace.config_data(app, slot.env)
    chart, digest, pinned = chart_fields(ctx, app, slot)
    # Another image, config or chart base from the same commit is another release: same id, a
    # suffix. The id is settled again when it is written (write_releases), against the ledger as
    # pushed.
    rid = ctx.workspace.ledger(slot).id_for(
        release_id(source.time, source.short), image, data, digest
    )
    by = names.check_text(
        os.environ.get("SHIP_ACTOR") or author, "the actor ($SHIP_ACTOR or git's user)"
    )
    return Release(
        id=rid,
        app=app.name,
        environment=slot.env.name,
        commit=source.sha,
        image=image,
        config="",
        created_at=ctx.clock.iso(),
        created_by=by,
        image_commit=image_commit or source.sha,
        chart=chart,
        chart_digest=digest,
        chart_source=pinned,
        config_data=data,
    )


def chart_fields(ctx: Context, app: App, slot: Slot) -> tuple[str | None, str | None, str | None]:
    """(chart, chart_digest, chart_source) of a release of APP into ENV: its chart base as the
    working tree has it; a remote chart pulled first (its archive pinned by sha256)."""
    if app.chart is None:
        return None, None, None
    pinned = fetch_chart(ctx, app)
    base = ctx.workspace.chart_base(app, slot)
    return base.chart, base.digest, pinned


def fetch_chart(ctx: Context, app: App) -> str | None:
    """A remote chart's pinned reference, once it is in the repository's chart cache
    (image/charts.py); None for a chart in the repository."""
    if app.chart is None or app.chart.repo is None:
        return None
    ref = charts.fetch(
        chartrepo.archives_for(app.chart.repo, ctx.registry, ctx.http), app.chart, ctx.config.root
    )
    ctx.progress(f"chart {ref}")
    return str(ref)


def refuse_rejected(ctx: Context, slot: Slot, release: Release, *, allow_rejected: bool) -> None:
    entry = ctx.workspace.ledger(slot).find(release.id)
    if entry is not None and entry.outcome is Outcome.REJECTED and not allow_rejected:
        raise PromotionError(
            f"release {release.id} was rejected in {slot.env.name} ({entry.reason}); "
            "pass --allow-rejected to release it again"
        )


def write_releases(
    ctx: Context,
    env: Environment,
    releases: list[tuple[App, Release]],
    options: WriteOptions = WriteOptions(),
) -> list[ReleaseResult]:
    """Several apps' releases written into their slots of ENV (overlays and ledgers), checked to
    render, in one commit (WriteOptions says how)."""
    action, push = options.action, options.push
    written: dict[str, Release] = {app.name: rel for app, rel in releases}
    plans = [
        (Slot(env, app.name), _plan(ctx, app, Slot(env, app.name), rel, written, options))
        for app, rel in releases
    ]

    def message() -> str:  # once the plans ran: a new release's id is settled then
        ids = ", ".join(f"{rel.app}@{rel.id}" for rel in written.values())
        first = written[releases[0][0].name]
        default = (
            f"{action}({env.name}): {first.app}@{first.id}"
            if len(releases) == 1
            else f"{action}({env.name}): {len(releases)} apps: {ids}"
        )
        trailers = (
            first.trailers() if len(releases) == 1 else {"Apps": ids, "Environment": env.name}
        )
        return names.commit_message(options.title or default, action, {**trailers, **options.extra})

    commit = ctx.workspace.publish_many(env, [a for a, _ in releases], plans, message, push=push)
    return [
        ReleaseResult(written[app.name], commit, changed=commit is not None) for app, _ in releases
    ]


def _plan(
    ctx: Context,
    app: App,
    slot: Slot,
    release: Release,
    written: dict[str, Release],
    options: WriteOptions,
) -> Callable[[dict[str, str | None]], tuple[overlay.OverlayFiles, str] | None]:
    always, new_id = options.always, options.new_id
    change = options.ledger_change or (
        lambda ledger, rel: ledger.record(
            rel, Outcome.PENDING, "", ctx.clock.iso(), options.override
        )
    )
    base_objects, base_rel = ctx.workspace.base_of(app, slot, release)
    base_files = ctx.workspace.base_files(app, slot, release)

    def plan(current: dict[str, str | None]) -> tuple[overlay.OverlayFiles, str] | None:
        now = overlay.current_release(current, slot)
        ledger = Ledger.parse(current.get(LEDGER_FILE), str(slot.overlay / LEDGER_FILE))
        rel = release
        if new_id:
            rel = replace(
                rel,
                id=ledger.id_for(
                    release.id.split(".")[0],
                    release.image,
                    dict(release.config_data),
                    release.chart_digest,
                ),
            )
        if not always:
            rel = replace(
                rel, config=configmaps.config_name_for(app, rel.id, rel.config_data, current)
            )
        written[app.name] = rel
        if (
            not always
            and now
            and now.id == rel.id
            and now.image == rel.image
            and now.config == rel.config
            and now.chart_digest == rel.chart_digest
        ):
            return None  # the same commit, image, config and chart base are already released here
        files = overlay.plan_release(
            current, app, slot, rel, overlay.AppBase(base_objects, base_rel, base_files)
        )
        files.files[LEDGER_FILE] = change(ledger, rel).dumps()
        ctx.progress(f"wrote {slot.overlay}: {rel.image}, ConfigMap {rel.config}")
        return files, ""

    return plan
