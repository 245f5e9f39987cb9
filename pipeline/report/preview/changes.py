"""What changes between two renderings of the same kustomization, as a reviewer reads it. Pure.

    before objects, after objects ─► ObjectChange per object that differs:
        images      each container whose image changes
        config      each key of the ConfigMaps a workload reads (or of a ConfigMap changed in place)
                    whose value changes
        secrets     each key of a Secret (or of one a workload reads) that is added, removed or
                    changed: the key only, never a value
        diff        a unified diff of the rest, with every Secret value redacted

Secret values are compared by hash and dropped before anything is returned, so no caller can
print one by accident.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any

from pipeline import yamlsafe
from pipeline.kube import normalize
from pipeline.kube import plan as planning

MAX_DIFF_LINES = 120  # per object: a preview is read in a pull request, not scrolled for ever
Change = tuple[str, str, str]  # (name, before, after); "" for absent


@dataclass(frozen=True)
class ObjectChange:
    subject: str  # Kind/namespace/name
    action: str  # added | removed | changed
    images: tuple[Change, ...] = ()  # (container, image before, image after)
    config: tuple[Change, ...] = ()  # (key, value before, value after)
    secrets: tuple[tuple[str, str], ...] = ()  # (key, added | removed | changed)
    diff: str = ""

    @property
    def kind(self) -> str:
        return self.subject.split("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "action": self.action,
            "images": [{"container": c, "before": b, "after": a} for c, b, a in self.images],
            "config": [{"key": k, "before": b, "after": a} for k, b, a in self.config],
            "secrets": [{"key": k, "change": c} for k, c in self.secrets],
            "diff": self.diff,
        }


@dataclass
class _Side:
    """One rendering, indexed: objects by subject, ConfigMap data and Secret hashes by name."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, dict[str, str]] = field(default_factory=dict)
    # name -> key -> sha256 of the value
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)


def _index(objects: list[dict[str, Any]]) -> _Side:
    side = _Side()
    for obj in objects:
        side.objects[planning.subject(obj)] = obj
        name = obj.get("metadata", {}).get("name", "")
        if obj.get("kind") == "ConfigMap":
            side.config[name] = {k: str(v) for k, v in (obj.get("data") or {}).items()}
        elif obj.get("kind") == "Secret":
            values = {**(obj.get("data") or {}), **(obj.get("stringData") or {})}
            side.secrets[name] = {
                k: hashlib.sha256(str(v).encode()).hexdigest() for k, v in values.items()
            }
    return side


def compare(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[ObjectChange]:
    """Every object that differs, in the order of `after` (then the removed ones)."""
    old, new = _index(before), _index(after)
    out = []
    for subject, obj in new.objects.items():
        prior = old.objects.get(subject)
        if prior is None:
            out.append(_change(subject, "added", None, obj, old, new))
        elif yamlsafe.dumps(prior, sort_keys=True) != yamlsafe.dumps(obj, sort_keys=True):
            out.append(_change(subject, "changed", prior, obj, old, new))
    out += [
        _change(s, "removed", o, None, old, new)
        for s, o in old.objects.items()
        if s not in new.objects
    ]
    return out


def _change(
    subject: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    old: _Side,
    new: _Side,
) -> ObjectChange:
    b, a = before or {}, after or {}
    secrets = _key_changes(_secret_hashes(b, old), _secret_hashes(a, new))
    config = (
        ()
        if action != "changed" and b.get("kind", a.get("kind")) == "ConfigMap"
        else _changed(_read_config(b, old), _read_config(a, new))
    )
    return ObjectChange(
        subject,
        action,
        images=_changed(_images(b), _images(a)),
        config=config,
        secrets=secrets,
        diff=_diff(subject, before, after),
    )


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return spec if obj.get("kind") == "Pod" else (spec.get("template") or {}).get("spec") or {}


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(obj)
    return [c for group in ("initContainers", "containers") for c in pod.get(group) or []]


def _images(obj: dict[str, Any]) -> dict[str, str]:
    return {c.get("name", "?"): c.get("image", "") for c in _containers(obj)}


def _read_config(obj: dict[str, Any], side: _Side) -> dict[str, str]:
    """The values a workload reads from ConfigMaps (every key of each one it references); a
    ConfigMap's own data."""
    if obj.get("kind") == "ConfigMap":
        # Its own values; a versioned ConfigMap that is added or removed shows them where a workload
        # reads it.
        return side.config.get(obj.get("metadata", {}).get("name", ""), {})
    merged: dict[str, str] = {}
    for name in sorted(planning.referenced_configmaps([obj])):
        merged.update(side.config.get(name, {}))
    return merged


def _secret_names(obj: dict[str, Any]) -> set[str]:
    names = {
        (s.get("secretRef") or {}).get("name")
        for c in _containers(obj)
        for s in c.get("envFrom") or []
    }
    names |= {
        ((v.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        for c in _containers(obj)
        for v in c.get("env") or []
    }
    names |= {(v.get("secret") or {}).get("secretName") for v in _pod(obj).get("volumes") or []}
    return {n for n in names if n}


def _secret_hashes(obj: dict[str, Any], side: _Side) -> dict[str, str]:
    if obj.get("kind") == "Secret":
        return side.secrets.get(obj.get("metadata", {}).get("name", ""), {})
    merged: dict[str, str] = {}
    for name in sorted(_secret_names(obj)):
        merged.update({f"{name}/{k}": v for k, v in side.secrets.get(name, {}).items()})
    return merged


def _changed(before: dict[str, str], after: dict[str, str]) -> tuple[Change, ...]:
    keys = sorted(set(before) | set(after))
    return tuple(
        (k, before.get(k, ""), after.get(k, "")) for k in keys if before.get(k) != after.get(k)
    )


def _key_changes(before: dict[str, str], after: dict[str, str]) -> tuple[tuple[str, str], ...]:
    out = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            out.append((key, "added"))
        elif key not in after:
            out.append((key, "removed"))
        elif before[key] != after[key]:
            out.append((key, "changed"))
    return tuple(out)


def _diff(subject: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    old = (
        yamlsafe.dumps(normalize.redact(before), sort_keys=True).splitlines(keepends=True)
        if before
        else []
    )
    new = (
        yamlsafe.dumps(normalize.redact(after), sort_keys=True).splitlines(keepends=True)
        if after
        else []
    )
    lines = list(
        difflib.unified_diff(old, new, fromfile=f"base/{subject}", tofile=f"head/{subject}", n=2)
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more lines\n"]
    return "".join(lines)


def env_changes(
    before: dict[str, str], after: dict[str, str], secret_keys: set[str]
) -> tuple[Change, ...]:
    """Config values (a dotenv file) that change; a key that is a secret shows no value."""
    hidden = {k: normalize.REDACTED for k in secret_keys}
    changes = _changed(before, after)
    return tuple(
        (k, hidden.get(k, b) if b else "", hidden.get(k, a) if a else "") for k, b, a in changes
    )


def flat_values(values: Any, prefix: str = "") -> dict[str, str]:
    """Chart values as `a.b.c` keys and their YAML text: what a reviewer compares line by line."""
    if isinstance(values, dict) and values:
        return {
            k: v
            for key, value in values.items()
            for k, v in flat_values(value, f"{prefix}{key}.").items()
        }
    return {prefix.rstrip("."): yamlsafe.dumps(values).strip().removesuffix("...").strip()}


def chart_changes(before: dict[str, str], after: dict[str, str]) -> tuple[Change, ...]:
    """An app from a chart: its chart version and each value that changes (chart_inputs in
    gather.py)."""
    return tuple(
        (k, before.get(k, ""), after.get(k, ""))
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    )
