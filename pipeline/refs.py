"""How ship spells a reference to a thing: an object's subject line and a JSON pointer.

    subject(obj)             `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object
    pointer("spec", "a/b")   `/spec/a~1b`: a JSON pointer (RFC 6901), each key escaped

Spelled once, here, so every error line names an object the same way and every JSON patch
escapes the same way (`~` before `/`, or `a~1` and `a/` collide). A leaf: pure, imports
nothing from ship.
"""

from __future__ import annotations

from typing import Any


def subject(obj: dict[str, Any]) -> str:
    """`Kind/namespace/name`, or `Kind/name` for a cluster-scoped object (as kubectl's errors
    read)."""
    meta = obj.get("metadata") or {}
    kind, namespace, name = (
        obj.get("kind") or "",
        meta.get("namespace") or "",
        meta.get("name") or "",
    )
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def escape(key: str) -> str:
    """One reference token of a JSON pointer: `~` → `~0`, then `/` → `~1` (RFC 6901 section 3)."""
    return key.replace("~", "~0").replace("/", "~1")


def pointer(*keys: str | int) -> str:
    """The JSON pointer to `keys`, e.g. pointer("metadata", "labels", "ship.dev/track")."""
    return "".join("/" + escape(str(k)) for k in keys)
