"""Which rendered objects are release hooks, in which phase and order, and the name each gets. Pure.

    rendered objects ─► split ─► pre hooks (ordered) · the rest (reconciled as usual) · post hooks

A hook is a Job marked either by Helm (`helm.sh/hook: pre-install,pre-upgrade`, as kustomize's
helmCharts leaves it: kustomize v5.8.1 renders hooks as plain objects unless `skipHooks`) or,
in a kustomize base, by ship's own annotation `ship.dev/hook: pre-release|post-release`.
A pre hook runs to completion before anything else of the release is applied; a post hook runs
after the release's gate passed. Jobs are immutable, so each release's hook Job gets a name of
its own: `NAME-RELEASEID`, the same for every sync of that release, so it runs once per release.

Helm's other hooks (test, pre/post-delete, pre/post-rollback) are not release steps in ship and
are left out, as are the hooks in a canary's copy of the base (`ship.dev/track: canary`): during
a canary the stable copy's hook Jobs carry the canary's release, so each release's hooks run once.
A hook of another kind (a ConfigMap or ServiceAccount a hook Job uses) stays with the objects
reconciled as usual, and is also applied first, before the pre hook Jobs.
Never talks to a cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pipeline import names
from pipeline.errors import ValidationError
from pipeline.kube.plan import stage_of, subject

HELM_HOOK = "helm.sh/hook"
HELM_WEIGHT = "helm.sh/hook-weight"
# Helm's hook-handling annotations: ship names each release's Job itself and keeps it, so a
# delete policy would only make kubectl users wonder; they are dropped from what is applied
# (the weight stays: it orders the hooks, for a kustomize base's Jobs too).
HELM_HOOK_ANNOTATIONS = (HELM_HOOK, "helm.sh/hook-delete-policy")
# what carries the release annotation (overlay.py)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
NAME_MAX = 63  # a Job's name becomes its pods' job-name label, which is at most 63 characters


class Phase(str, Enum):
    PRE = "pre-release"
    POST = "post-release"


_HELM_PHASES = {
    "pre-install": Phase.PRE,
    "pre-upgrade": Phase.PRE,
    "post-install": Phase.POST,
    "post-upgrade": Phase.POST,
}
_HELM_OTHERS = frozenset(
    {
        "pre-delete",
        "post-delete",
        "pre-rollback",
        "post-rollback",
        "test",
        "test-success",
        "test-failure",
    }
)


@dataclass(frozen=True)
class HookPlan:
    """A release's objects sorted for hooks: what runs before, what is reconciled, what runs
    after."""

    pre: tuple[dict[str, Any], ...] = ()  # Jobs (renamed), in the order they run
    objects: tuple[dict[str, Any], ...] = ()  # everything else, reconciled as usual
    post: tuple[dict[str, Any], ...] = ()  # Jobs (renamed), in the order they run
    # non-Job pre hooks: also in `objects`, applied first
    pre_objects: tuple[dict[str, Any], ...] = ()

    @property
    def jobs(self) -> tuple[dict[str, Any], ...]:
        return self.pre + self.post


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def phase_of(obj: dict[str, Any]) -> Phase | None | bool:
    """The object's hook phase; None when it is no hook; False for a Helm hook ship leaves out."""
    notes = _annotations(obj)
    ours = notes.get(names.HOOK)
    if ours is not None:
        try:
            return Phase(ours)
        except ValueError:
            raise ValidationError(
                f"{subject(obj)}: annotation {names.HOOK}: {ours!r} is not "
                f"{Phase.PRE.value} or {Phase.POST.value}"
            ) from None
    helm = notes.get(HELM_HOOK)
    if helm is None:
        return None
    kinds = [k.strip() for k in helm.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in _HELM_PHASES and k not in _HELM_OTHERS]
    if unknown:
        raise ValidationError(
            f"{subject(obj)}: annotation {HELM_HOOK}: unknown hook {unknown[0]!r}"
        )
    phases = {_HELM_PHASES[k] for k in kinds if k in _HELM_PHASES}
    if not phases:
        return False
    # pre-install,post-upgrade: helm would run it twice; ship runs it once, before
    if len(phases) > 1:
        return Phase.PRE
    return phases.pop()


def weight(obj: dict[str, Any]) -> int:
    raw = _annotations(obj).get(HELM_WEIGHT, "0")
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(
            f"{subject(obj)}: annotation {HELM_WEIGHT}: {raw!r} is not an integer"
        ) from None


def order(hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Helm's hook order: by weight, then kind (what others depend on first), then name."""
    return sorted(hooks, key=lambda o: (weight(o), stage_of(o), o["metadata"]["name"]))


def job_name(name: str, release_id: str) -> str:
    """`NAME-RELEASEID`, cut to fit a label value: what the release's hook Job is called."""
    suffix = release_id.replace(".", "-").lower()
    return f"{name[: NAME_MAX - len(suffix) - 1].rstrip('-')}-{suffix}"


def content_id(obj: dict[str, Any]) -> str:
    """For a hook of no known release: a short hash of its spec, so it runs once per content."""
    return (
        "h" + hashlib.sha256(json.dumps(obj.get("spec"), sort_keys=True).encode()).hexdigest()[:10]
    )


def renamed(job: dict[str, Any], release_id: str | None) -> dict[str, Any]:
    """The hook Job as this release applies it: its own name, the release noted, Helm's hook
    annotations dropped."""
    meta = dict(job.get("metadata") or {})
    rid = release_id or content_id(job)
    notes = {k: v for k, v in _annotations(job).items() if k not in HELM_HOOK_ANNOTATIONS}
    notes.setdefault(names.HOOK, str(phase_of(job).value))  # type: ignore[union-attr]
    if release_id:
        notes[names.RELEASE] = release_id
    meta.update(name=job_name(meta["name"], rid), annotations=notes)
    return {**job, "metadata": meta}


def release_ids(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Each app's release as the rendered workloads say (their `ship.dev/release` annotation);
    during a canary the canary's, the release on its way in."""
    found: dict[str, str] = {}
    for obj in sorted(
        objects, key=lambda o: names.is_canary((o.get("metadata") or {}).get("name", ""))
    ):
        rid = _annotations(obj).get(names.RELEASE)
        if obj.get("kind") in WORKLOAD_KINDS and rid and app_of(obj):
            found[app_of(obj)] = rid  # canaries sort last, so theirs wins
    return found


def prepare(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rendered objects as ship applies them: each hook Job under its release's name, the
    hooks that are no release step left out. Call once: a renamed Job would be renamed again."""
    ids = release_ids(objects)
    out = []
    for obj in objects:
        phase = phase_of(obj)
        if phase is False:
            continue
        if phase is not None and _labels(obj).get(names.TRACK) == names.CANARY:
            # the canary's copy of the base: its release's hooks run once, under their own name
            continue
        if phase is not None:
            weight(obj)  # a bad weight is refused here, naming the object, whatever the order needs
        out.append(
            renamed(obj, ids.get(app_of(obj)))
            if phase is not None and obj.get("kind") == "Job"
            else obj
        )
    return out


def split(objects: list[dict[str, Any]]) -> HookPlan:
    """Prepared objects (prepare) sorted into pre hook Jobs, the rest, and post hook Jobs."""
    pre: list[dict[str, Any]] = []
    post: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    pre_objects: list[dict[str, Any]] = []
    for obj in objects:
        phase = phase_of(obj)
        if phase is None or phase is False:
            rest.append(obj)
        elif obj.get("kind") != "Job":
            rest.append(obj)
            if phase is Phase.PRE:
                pre_objects.append(obj)
        else:
            (pre if phase is Phase.PRE else post).append(obj)
    return HookPlan(tuple(order(pre)), tuple(rest), tuple(order(post)), tuple(order(pre_objects)))


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def app_of(obj: dict[str, Any]) -> str:
    """The app an object belongs to (its `ship.dev/app` label), or ""."""
    return str(_labels(obj).get(names.APP_LABEL, ""))
