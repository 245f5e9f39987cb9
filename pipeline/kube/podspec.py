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
                add(
                    f"{base}/{group}/{i}/env/{j}/valueFrom/configMapKeyRef/name",
                    (var.get("valueFrom") or {}).get("configMapKeyRef"),
                )
    for i, volume in enumerate(pod_spec.get("volumes") or []):
        add(f"{base}/volumes/{i}/configMap/name", volume.get("configMap"))
        for j, source in enumerate((volume.get("projected") or {}).get("sources") or []):
            add(f"{base}/volumes/{i}/projected/sources/{j}/configMap/name", source.get("configMap"))
    return refs


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, or of a workload's template."""
    spec: dict[str, Any] = obj.get("spec") or {}
    return spec if obj.get("kind") == "Pod" else (spec.get("template") or {}).get("spec") or {}


CONTAINER_GROUPS = ("initContainers", "containers", "ephemeralContainers")


def pod_specs(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(JSON pointer, pod spec) of every pod an object runs: a Pod's own spec, a workload's
    template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, any kind with spec.template),
    a CronJob's job template's."""
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        return []
    if obj.get("kind") == "Pod":
        return [("/spec", spec)]
    found = []
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        found.append((POD_SPEC, template["spec"]))
    job = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    if isinstance(job.get("spec"), dict):
        found.append(("/spec/jobTemplate/spec/template/spec", job["spec"]))
    return found


def container_images(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON pointer, image) of every container, init container and ephemeral container the object's
    pods run."""
    out = []
    for base, spec in pod_specs(obj):
        for group in CONTAINER_GROUPS:
            for i, container in enumerate(spec.get(group) or []):
                if isinstance(container, dict):
                    out.append((f"{base}/{group}/{i}/image", str(container.get("image") or "")))
    return out
