"""A pinned image reference, `registry/repo:tag@sha256:<digest>`: the value every layer passes
around (config, gitops overlays, policy, image, rollout). Pure: parsing only, no registry I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import RegistryError

_PINNED = re.compile(
    r"^(?P<repo>[^@\s]+?):(?P<tag>[\w][\w.-]{0,127})@(?P<digest>sha256:[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class ImageRef:
    """A pinned image reference: `registry/repo:tag@sha256:<digest>`."""

    repository: str  # includes the registry host: 127.0.0.1:5000/hellok8s
    tag: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.repository.split("/", 1)[1]

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        match = _PINNED.match(text.strip())
        if not match:
            raise RegistryError(
                f"{text!r} is not a pinned image reference (repo:tag@sha256:<64 hex>)"
            )
        if "/" not in match["repo"]:
            raise RegistryError(
                f"{text!r} names no registry host (expected host[:port]/repo:tag@sha256:<64 hex>)"
            )
        return cls(match["repo"], match["tag"], match["digest"])
