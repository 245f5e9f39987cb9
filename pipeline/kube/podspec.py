"""Where a pod spec refers to ConfigMaps: one walk, used to repoint a workload at a release's
ConfigMap (gitops/overlay.py) and to keep ConfigMaps that running pods still need (plan.py). Pure.
"""

from __future__ import annotations

from typing import Any

POD_SPEC = "/spec/template/spec"  # in a workload; a Pod's own spec is at /spec


def configmap_refs(pod_spec: dict[str, Any], base: str = POD_SPEC) -> list[tuple[str, str]]:
    """(JSON pointer, ConfigMap name) of every ConfigMap reference: envFrom, env valueFrom,
    volumes and projected volumes, init containers first."""
    refs: list[tuple[str, str]] = []

    def add(pointer: str, ref: dict[str, Any] | None) -> None:
        if ref and ref.get("name"):
            refs.append((pointer, str(ref["name"])))

    for group in ("initContainers", "containers"):
        for i, container in enumerate(pod_spec.get(group) or []):
            for j, source in enumerate(container.get("envFrom") or []):
                add(f"{base}/{group}/{i}/envFrom/{j}/configMapRef/name", source.get("configMapRef"))
            for j, var in enumerate(container.get("env") or []):
                add(f"{base}/{group}/{i}/env/{j}/valueFrom/configMapKeyRef/name",
                    (var.get("valueFrom") or {}).get("configMapKeyRef"))
    for i, volume in enumerate(pod_spec.get("volumes") or []):
        add(f"{base}/volumes/{i}/configMap/name", volume.get("configMap"))
        for j, source in enumerate((volume.get("projected") or {}).get("sources") or []):
            add(f"{base}/volumes/{i}/projected/sources/{j}/configMap/name", source.get("configMap"))
    return refs


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, or of a workload's template."""
    spec: dict[str, Any] = obj.get("spec") or {}
    return spec if obj.get("kind") == "Pod" else (spec.get("template") or {}).get("spec") or {}
