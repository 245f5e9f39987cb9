"""Health's vocabulary: the codes, the verdict on one object, and small readers of status. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pipeline.refs import subject as subject  # re-exported: health.subject


class HealthCode(str, Enum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Health:
    """The verdict on one object."""

    code: HealthCode
    message: str  # one human line, e.g. "2/3 updated, 1/3 ready"
    subject: str = ""  # "Deployment/<namespace>/<name>", or "Namespace/<name>" when cluster-scoped
    reason: str = ""  # machine reason, e.g. "ProgressDeadlineExceeded", "CrashLoopBackOff"

    @property
    def ok(self) -> bool:
        return self.code is HealthCode.HEALTHY


# Higher is worse. Suspended ranks above Unknown because a paused rollout is a known,
# deliberate state that still blocks a release, while Unknown usually clears on the next look.
_SEVERITY = {
    HealthCode.HEALTHY: 0,
    HealthCode.UNKNOWN: 1,
    HealthCode.SUSPENDED: 2,
    HealthCode.PROGRESSING: 3,
    HealthCode.DEGRADED: 4,
}


def worst(healths: Iterable[Health]) -> Health | None:
    """The most severe Health (the first one of that severity), or None if there are none."""
    found: Health | None = None
    for health in healths:
        if found is None or _SEVERITY[health.code] > _SEVERITY[found.code]:
            found = health
    return found


def _int(value: Any) -> int:
    # The API omits zero-valued status counters (omitempty), so absent means 0.
    return int(value) if value is not None else 0


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def _observed(obj: dict[str, Any]) -> bool:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    return _int(meta.get("generation")) <= _int(status.get("observedGeneration"))


def _counts(updated: int, ready: int, desired: int) -> str:
    return f"{updated}/{desired} updated, {ready}/{desired} ready"


def verdicts_on(obj: dict[str, Any]) -> Callable[..., Health]:
    """`verdict(code, message, reason="")`: a Health about OBJ (a health rule's one way to
    answer)."""

    def verdict(code: HealthCode, message: str, reason: str = "") -> Health:
        return Health(code, message, subject(obj), reason)

    return verdict
