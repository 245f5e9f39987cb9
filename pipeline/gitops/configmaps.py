"""An app's versioned, immutable ConfigMaps in its overlay slot: their names, their objects, and
which of them a slot keeps. Pure.

Each release gets a ConfigMap named after its release id (`APP-config-rID`); since a ConfigMap
marked immutable can never change, a second, different config for the same release gets a
numbered suffix. A slot keeps the newest `keep_configs` of them so a rollback finds its config.
"""

from __future__ import annotations

from pipeline import names, yamlsafe
from pipeline.config import App
from pipeline.gitops.records import Release

CONFIG_DIR = "configs"


def config_map(app: App, release: Release) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": release.config,
            "labels": {
                names.APP_NAME: app.name,
                names.PART_OF: app.name,
                names.CONFIG_OF: app.name,
            },
            "annotations": {names.RELEASE: release.id},
        },
        "immutable": True,
        "data": dict(sorted(release.config_data.items())),
    }


def _release_order(config: str) -> tuple[str, int]:
    """`…-r20261124-214456-3f2a1bc.12` sorts by its time, then by its suffix as a number (.12 after
    .9)."""
    rid = config.rsplit("-r", 1)[-1] if "-r" in config else config
    base, _, n = rid.partition(".")
    return base, int(n) if n.isdigit() else 1


def kept_configs(existing: list[str], new: str, keep: int) -> tuple[list[str], list[str]]:
    """(config names kept, names dropped): the newest `keep`, release ids sorting by time."""
    names = sorted(set(existing) | {new}, key=_release_order)
    kept = names[-keep:]
    if new not in kept:  # re-releasing an older release keeps its config in any case
        kept = [*names[-(keep - 1) :], new] if keep > 1 else [new]
    return kept, [n for n in names if n not in kept]


def config_name_for(
    app: App, release_id: str, data: dict[str, str], current: dict[str, str | None]
) -> str:
    """The versioned ConfigMap name; a second, different config for the same release gets a suffix,
    since a ConfigMap marked immutable can never change."""
    name = f"{app.config_name}-{release_id}"
    existing = current.get(f"{CONFIG_DIR}/{name}.yaml")
    if existing is None:
        return name
    obj = yamlsafe.loads(existing, name) or {}
    if dict(obj.get("data") or {}) == dict(sorted(data.items())):
        return name
    n = 2
    while current.get(f"{CONFIG_DIR}/{name}-{n}.yaml") is not None:
        n += 1
    return f"{name}-{n}"
