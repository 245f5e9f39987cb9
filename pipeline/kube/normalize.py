"""How an object reads once the server's bookkeeping is gone, for comparing two versions of it and
for showing it in a diff: no managedFields, resourceVersion or status, a Secret's values
redacted. Pure; never what ship applies (ownership.py adds what that needs).
"""

from __future__ import annotations

import copy
from typing import Any

REDACTED = "<redacted>"
# Fields the API server owns: never compared, never shown in a diff.
SERVER_FIELDS = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def normalized(obj: dict[str, Any], *, redacted: bool = True) -> dict[str, Any]:
    """The object as a person compares it: no server bookkeeping, no status, secrets redacted."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for f in SERVER_FIELDS:
        meta.pop(f, None)
    (meta.get("annotations") or {}).pop("deployment.kubernetes.io/revision", None)
    if meta.get("annotations") == {}:
        meta.pop("annotations")
    return redact(out) if redacted else out


def redact(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") != "Secret":
        return obj
    out = copy.deepcopy(obj)
    for section in ("data", "stringData"):
        if isinstance(out.get(section), dict):
            out[section] = {k: REDACTED for k in out[section]}
    annotations = out.get("metadata", {}).get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return out
