"""Taking over fields that hand edits made with kubectl own, as Flux's ssa package does.

Server-side apply keeps fields other field managers own, so `kubectl set env …` on a field git
does not set survives every sync, invisible to diff. Before applying, ship merges the field
sets of kubectl's managers (`kubectl-edit`, `kubectl-set`, `kubectl-client-side-apply`, …) into
its own Apply entry in metadata.managedFields; the apply that follows then removes every field
ship owns but no longer sends. For a diff, the same fields are stripped from the dry-run result,
so the drift shows. Pure: managedFields and objects in, new ones out.

FieldsV1 (k8s.io/apimachinery structured-merge-diff) is a trie: `f:<field>`, `k:<json of a list
item's keys>`, `v:<json value>` for set members, `i:<index>`, and `.` for the node itself.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pipeline.names import TAKEOVER_MANAGERS

TAKEOVER = TAKEOVER_MANAGERS  # ship.yaml's `takeover_managers` default

Fields = dict[str, Any]


def foreign_fields(obj: dict[str, Any], managers: tuple[str, ...]) -> Fields:
    """The union of the field sets that `managers` own in `obj` (empty when none)."""
    merged: Fields = {}
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") in managers and entry.get("fieldsType", "FieldsV1") == "FieldsV1":
            merged = merge(merged, entry.get("fieldsV1") or {})
    return merged


def merge(a: Fields, b: Fields) -> Fields:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = (
            merge(out[k], v)
            if k in out and isinstance(out[k], dict) and isinstance(v, dict)
            else copy.deepcopy(v)
        )
    return out


def taken_over(
    obj: dict[str, Any], managers: tuple[str, ...], manager: str
) -> list[dict[str, Any]]:
    """obj's managedFields with the entries of `managers` folded into `manager`'s Apply entry."""
    entries = obj.get("metadata", {}).get("managedFields") or []
    keep = [e for e in entries if e.get("manager") not in managers]
    mine = next(
        (e for e in keep if e.get("manager") == manager and e.get("operation") == "Apply"), None
    )
    fields = merge((mine or {}).get("fieldsV1") or {}, foreign_fields(obj, managers))
    entry = {
        **(
            mine
            or {
                "manager": manager,
                "operation": "Apply",
                "apiVersion": obj.get("apiVersion"),
                "fieldsType": "FieldsV1",
            }
        ),
        "fieldsV1": fields,
    }
    return [entry if e is mine else e for e in keep] + ([] if mine else [entry])


def strip(obj: dict[str, Any], fields: Fields, desired: dict[str, Any]) -> dict[str, Any]:
    """`obj` without the fields in `fields` that `desired` does not set: what an apply by the
    field set's new owner leaves behind."""
    out = copy.deepcopy(obj)
    _strip(out, fields, desired)
    return out


def _strip(node: Any, fields: Fields, want: Any) -> None:
    if isinstance(node, dict):
        for key, sub in fields.items():
            if not key.startswith("f:") or key[2:] not in node:
                continue
            name = key[2:]
            inner = want.get(name) if isinstance(want, dict) else None
            if inner is None and (not sub or "." in sub):
                del node[name]  # owned whole (or a leaf) and not in git
            elif sub:
                _strip(node[name], sub, inner)
    elif isinstance(node, list):
        for key, sub in fields.items():
            if not key.startswith("k:"):
                continue
            match = json.loads(key[2:])
            item = next((i for i in node if isinstance(i, dict) and _has(i, match)), None)
            wanted = next((i for i in want or [] if isinstance(i, dict) and _has(i, match)), None)
            if item is None:
                continue
            if wanted is None and "." in sub:
                node.remove(item)
            elif wanted is not None:
                _strip(item, sub, wanted)


def _has(item: dict[str, Any], keys: dict[str, Any]) -> bool:
    return all(item.get(k) == v for k, v in keys.items())
