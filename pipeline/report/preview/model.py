"""The preview as data: what changes per environment and per app between a base and a head."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.report.preview.changes import Change, ObjectChange


@dataclass(frozen=True)
class EnvironmentPreview:
    environment: str
    overlay: str  # its folder
    objects: list[ObjectChange]  # what `ship sync ENV` would apply differently
    # app -> config values its next release here carries differently
    next_release: dict[str, tuple[Change, ...]]
    error: str = ""  # the head's overlay does not render: kustomize's message

    @property
    def changed(self) -> bool:
        return bool(self.objects or any(self.next_release.values()) or self.error)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "overlay": self.overlay,
            "error": self.error or None,
            "objects": [o.to_json() for o in self.objects],
            "next_release": {
                app: [{"key": k, "before": b, "after": a} for k, b, a in changes]
                for app, changes in self.next_release.items()
            },
        }


@dataclass(frozen=True)
class AppPreview:
    app: str
    path: str
    source: list[str]  # files changed outside config/ and base/: the next build makes a new image
    secret_keys: tuple[tuple[str, str], ...]  # (key, added | removed) in ship.yaml's `secrets:`

    @property
    def changed(self) -> bool:
        return bool(self.source or self.secret_keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "path": self.path,
            "source": self.source,
            "secret_keys": [{"key": k, "change": c} for k, c in self.secret_keys],
        }


@dataclass
class Preview:
    base: str  # the ref asked for
    base_sha: str  # the commit compared with (the merge base of `base` and HEAD)
    head: str  # "working tree"
    environments: list[EnvironmentPreview] = field(default_factory=list)
    apps: list[AppPreview] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(e.changed for e in self.environments) or any(a.changed for a in self.apps)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "base_commit": self.base_sha,
            "head": self.head,
            "changed": self.changed,
            "environments": [e.to_json() for e in self.environments],
            "apps": [a.to_json() for a in self.apps],
            "warnings": self.warnings,
        }
