"""A canary in an environment's overlay: pure, file contents in and out.

While a canary runs, the overlay holds, beside the stable release:

    canary/kustomization.yaml   the app's base again, suffixed `-canary`, pinned to the new
                                release's image and ConfigMap, its pods labelled
                                `ship.dev/track: canary`, replicas = ceil(weight × stable), ≥ 1
    route.yaml / canary-ingress.yaml   the router's weights (routing.py)
    canary.yaml                 the canary's state: release, steps, current step, running or held

so git says what the cluster runs, `ship status` can report it, and an interrupted canary can be
resumed or aborted from git alone. Removing these files (and syncing) removes the canary.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

from pipeline import names, yamlsafe
from pipeline.config import App, CanaryStep, Slot
from pipeline.errors import ConfigError
from pipeline.gitops import routing
from pipeline.gitops.chart import chart_folder
from pipeline.gitops.overlay import (
    CANARY_DIR,
    CANARY_STATE_FILE,
    CONFIG_DIR,
    HEADER,
    KUSTOMIZATION,
    AppBase,
    OverlayFiles,
    config_map,
    current_release,
    patch_target,
    patched_workloads,
    pinned_images,
    routing_files,
    workload_ops,
)
from pipeline.gitops.records import Release
from pipeline.refs import pointer


class Phase(str, Enum):
    """Where a canary stands: running its steps, or held after analysis for a person to decide."""

    RUNNING = "running"
    HELD = "held"


STATE_HEADER = (
    "# Written by ship: a canary in progress. `ship abort "
    "ENV` removes it; `ship promote --resume` continues it.\n"
)


@dataclass(frozen=True)
class CanaryState:
    """A canary of `release` in an environment, at steps[step]."""

    release: Release
    source: str  # the environment it is promoted from
    steps: tuple[CanaryStep, ...]
    step: int  # index of the current step
    status: Phase
    started_at: str
    updated_at: str

    @property
    def weight(self) -> int:
        return self.steps[self.step].weight

    def describe(self) -> str:
        held = ", held for a decision" if self.status is Phase.HELD else ""
        return (
            f"{self.release.id} canary {self.weight}% "
            f"(step {self.step + 1}/{len(self.steps)}{held})"
        )

    def dumps(self) -> str:
        data = {
            "release": self.release.record(),
            "source": self.source,
            "steps": [{"weight": s.weight, "bake": s.bake} for s in self.steps],
            "step": self.step,
            "weight": self.weight,
            "status": self.status.value,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
        }
        return STATE_HEADER + yamlsafe.dumps(data)

    @classmethod
    def parse(cls, text: str | None, source: str) -> CanaryState | None:
        if not text:
            return None
        data = yamlsafe.loads(text, source)
        try:
            steps = tuple(CanaryStep(int(s["weight"]), float(s["bake"])) for s in data["steps"])
            state = cls(
                Release.from_record(data["release"]),
                data["source"],
                steps,
                int(data["step"]),
                Phase(data["status"]),
                data.get("started_at", ""),
                data.get("updated_at", ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a canary state written by ship ({exc})") from exc
        if not 0 <= state.step < len(steps):
            raise ConfigError(
                f"{source}: step {state.step} or status {state.status!r} is out of range"
            )
        return state


def read_state(files: dict[str, str | None], slot: Slot) -> CanaryState | None:
    return CanaryState.parse(files.get(CANARY_STATE_FILE), f"{slot.overlay}/{CANARY_STATE_FILE}")


def canary_replicas(weight: int, stable_replicas: int) -> int:
    """ceil(weight × stable replicas), at least one pod."""
    return max(1, math.ceil(weight * stable_replicas / 100))


def canary_kustomization(
    app: App, slot: Slot, state: CanaryState, base_objects: list[dict], base_rel: str
) -> dict:
    """canary/kustomization.yaml: the base once more as `<name>-canary`, on the canary's release."""
    rel = state.release
    patches = []
    services = set()
    for w in patched_workloads(app, base_objects):
        replicas = canary_replicas(state.weight, int(w["spec"].get("replicas", 1)))
        ops = (
            workload_ops(w, rel, app.config_name)
            + routing.track_ops(names.CANARY, selector=True)
            + [
                {"op": "add", "path": "/spec/replicas", "value": replicas},
                {
                    "op": "add",
                    "path": pointer("metadata", "annotations", names.CANARY_WEIGHT),
                    "value": str(state.weight),
                },
            ]
        )
        patches.append({"target": patch_target(w), "patch": yamlsafe.dumps(ops)})
        if (svc := routing.service_for(base_objects, w)) is not None:
            services.add(svc[0])
    for service in sorted(services):
        patch = routing.service_track_patch(service, names.CANARY)
        patches.append({**patch, "patch": yamlsafe.dumps(patch["patch"])})
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [str(PurePosixPath("..") / base_rel)],
        "nameSuffix": names.CANARY_SUFFIX,
        "images": pinned_images([], app, rel),
        "patches": patches,
        "labels": [{"pairs": {names.TRACK: names.CANARY}, "includeSelectors": False}],
    }


def _kustomization(current: dict[str, str | None], slot: Slot) -> dict:
    text = current.get(KUSTOMIZATION)
    if not text:
        raise ConfigError(
            f"{slot.overlay}/{KUSTOMIZATION}: no stable release to run a canary beside"
        )
    return dict(yamlsafe.loads(text, f"{slot.overlay}/{KUSTOMIZATION}"))


def _with_resources(kz: dict, add: list[str], remove: list[str]) -> dict:
    resources = [r for r in kz.get("resources", []) if r not in remove]
    resources += [r for r in add if r not in resources]
    return {**kz, "resources": resources}


def plan_canary(
    current: dict[str, str | None], app: App, slot: Slot, state: CanaryState, base: AppBase
) -> OverlayFiles:
    """The slot's files with the canary at `state`'s step, beside the stable release (and its
    chart base's files, for an app from a chart)."""
    base_objects, base_rel, base_files = base.objects, base.path, base.files
    kz = _kustomization(current, slot)
    config_file = f"{CONFIG_DIR}/{state.release.config}.yaml"
    routes = routing_files(slot, base_objects, patched_workloads(app, base_objects), state.weight)
    files: dict[str, str | None] = {
        f"{CANARY_DIR}/{KUSTOMIZATION}": HEADER
        + yamlsafe.dumps(
            canary_kustomization(app, slot, state, base_objects, os.path.normpath(base_rel))
        ),
        CANARY_STATE_FILE: state.dumps(),
        **routes,
    }
    if current.get(config_file) is None:
        files[config_file] = HEADER + yamlsafe.dumps(config_map(app, state.release))
    files.update(
        {path: text for path, text in (base_files or {}).items() if current.get(path) != text}
    )
    add = [config_file, *[p for p, t in routes.items() if t is not None], CANARY_DIR]
    remove = [p for p, t in routes.items() if t is None]
    files[KUSTOMIZATION] = HEADER + yamlsafe.dumps(_with_resources(kz, add, remove))
    return OverlayFiles(files)


def plan_weight_zero(
    current: dict[str, str | None],
    app: App,
    slot: Slot,
    state: CanaryState,
    base_objects: list[dict],
) -> OverlayFiles:
    """Routing back to 100% stable with the canary still in place: the first move of an abort."""
    routes = routing_files(slot, base_objects, patched_workloads(app, base_objects), 0)
    return OverlayFiles({**routes, CANARY_STATE_FILE: current.get(CANARY_STATE_FILE)})


def plan_removed(
    current: dict[str, str | None],
    app: App,
    slot: Slot,
    base_objects: list[dict],
    stable_config: str | None,
) -> OverlayFiles:
    """The overlay without the canary: its kustomization, state and routing weights gone."""
    kz = _kustomization(current, slot)
    state = read_state(current, slot)
    routes = routing_files(slot, base_objects, patched_workloads(app, base_objects), None)
    files: dict[str, str | None] = {p: None for p in current if p.startswith(f"{CANARY_DIR}/")}
    files[CANARY_STATE_FILE] = None
    files.update(routes)
    remove = [CANARY_DIR, *[p for p, t in routes.items() if t is None]]
    if state is not None and state.release.config != stable_config:
        remove.append(f"{CONFIG_DIR}/{state.release.config}.yaml")
        files[f"{CONFIG_DIR}/{state.release.config}.yaml"] = None
    canary_chart = chart_folder(state.release if state else None)
    if canary_chart and canary_chart != chart_folder(current_release(current, slot)):
        files.update({p: None for p in current if p.startswith(f"{canary_chart}/")})
    files[KUSTOMIZATION] = HEADER + yamlsafe.dumps(
        _with_resources(kz, [p for p, t in routes.items() if t is not None], remove)
    )
    return OverlayFiles(files)
