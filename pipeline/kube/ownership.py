"""Ownership and drift, pure: which live objects are ship's, the labels and the content hash ship
adds to what it applies, and whether applying an object would change its live copy.

Ownership is two labels, `app.kubernetes.io/managed-by: ship` and `ship.dev/environment: ENV`,
plus an annotation with the hash of what ship last applied, so a sync sends nothing that has
not drifted. Imports no client; decides, never reads or writes the cluster.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

from pipeline import names

MANAGED_BY = names.MANAGED_BY
ENV_LABEL = names.ENV_LABEL
HASH_ANNOTATION = names.APPLIED_HASH


def owned(obj: dict[str, Any], env: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == names.MANAGER and labels.get(ENV_LABEL) == env


def content_hash(obj: dict[str, Any]) -> str:
    body = {k: v for k, v in obj.items() if k != "status"}
    if obj.get("kind") == "Secret":
        # Never a hash of secret values in an annotation: keys only; values are compared live.
        body = {
            k: ({kk: "" for kk in v} if k in ("data", "stringData") and isinstance(v, dict) else v)
            for k, v in body.items()
        }
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:20]


def with_ownership(obj: dict[str, Any], env: str) -> dict[str, Any]:
    """The object as ship applies it: ownership labels and the hash of its content."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Secret" and isinstance(out.get("stringData"), dict):
        # The server folds stringData into data; comparing data is what finds a changed value.
        data = out.setdefault("data", {}) or {}
        data.update(
            {
                k: base64.b64encode(str(v).encode()).decode()
                for k, v in out.pop("stringData").items()
            }
        )
        out["data"] = data
    meta = out.setdefault("metadata", {})
    meta.setdefault("labels", {}).update({MANAGED_BY: names.MANAGER, ENV_LABEL: env})
    meta.setdefault("annotations", {}).pop(HASH_ANNOTATION, None)
    digest = content_hash(out)
    meta["annotations"][HASH_ANNOTATION] = digest
    return out


def is_subset(want: Any, have: Any) -> bool:
    """Every field of `want` is in `have` with the same value (the server may add defaults)."""
    if isinstance(want, dict):
        # The server leaves out zero values (Go's omitempty): `minReadySeconds: 0` reads back as
        # absent.
        return isinstance(have, dict) and all(
            is_subset(v, have[k]) if k in have else _is_zero(v) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(w, h) for w, h in zip(want, have))
        )
    if (
        isinstance(want, (int, float))
        and isinstance(have, (int, float))
        and not isinstance(want, bool)
    ):
        return want == have
    return want == have or (isinstance(want, str) and str(have) == want)


def _is_zero(value: Any) -> bool:
    return (
        value is None
        or (not isinstance(value, bool) and value in (0, "", [], {}))
        or value is False
    )


def drifted(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """Whether applying `desired` (ownership already added) would change `live`."""
    want = (desired.get("metadata", {}).get("annotations") or {}).get(HASH_ANNOTATION)
    have = (live.get("metadata", {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if want != have:
        return True  # git changed since the last apply (this also catches removed fields)
    comparable = {k: v for k, v in desired.items() if k not in ("status",)}
    if desired.get("kind") == "Secret":
        comparable = {k: v for k, v in comparable.items() if k != "stringData"}
    return not is_subset(comparable, live)
