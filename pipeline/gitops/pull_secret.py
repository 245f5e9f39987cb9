"""The image pull secret: how an environment's nodes pull its private images with the run's login.

At each sync, for an environment with `pull_secret: true` (the default), ship looks up the
credentials of every registry its pod specs pull from (credentials.py: the same login that pushed
and signed) and keeps Secret `ship-registry` (names.PULL_SECRET, type
kubernetes.io/dockerconfigjson) in the namespace, listed in every pod spec's imagePullSecrets.
Made fresh at each sync, so a token that expires (GITHUB_TOKEN) is replaced; owned and pruned like
the apps' Secrets. A run that finds no credentials keeps the Secret already in the cluster (a
developer's `ship sync` without a login changes nothing); with none there either there is no
Secret and no reference: public images need none. Identity tokens are left out: the kubelet
cannot exchange them. The values live only in memory, never in git. Pure apart from `lookup`.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

from pipeline import names
from pipeline.image.credentials import Lookup
from pipeline.kube.podspec import pod_spec_of

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")
TYPE = "kubernetes.io/dockerconfigjson"
KEY = ".dockerconfigjson"


def image_host(image: str) -> str:
    """The registry host of an image reference, as the kubelet reads it (no host: Docker Hub)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _pod_specs(objects: list[dict]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for obj in objects:
        if obj.get("kind") == "CronJob":
            out.append(
                (
                    (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get(
                        "template"
                    )
                    or {}
                ).get("spec")
                or {}
            )
        elif obj.get("kind") in WORKLOADS:
            out.append(pod_spec_of(obj))
    return out


def registry_hosts(objects: list[dict]) -> list[str]:
    """Every registry host the pod specs of `objects` pull from, sorted."""
    hosts = {
        image_host(str(c["image"]))
        for spec in _pod_specs(objects)
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        if c.get("image")
    }
    return sorted(hosts)


def secret_object(namespace: str, auths: dict[str, dict[str, str]]) -> dict:
    config = json.dumps({"auths": auths}, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TYPE,
        "metadata": {
            "name": names.PULL_SECRET,
            "namespace": namespace,
            "labels": {names.PART_OF: names.MANAGER},
        },
        "data": {KEY: base64.b64encode(config.encode()).decode()},
    }


def pull_secret(
    namespace: str, objects: list[dict], lookup: Callable[[str], Lookup], live: dict | None
) -> dict | None:
    """Secret ship-registry as this sync should apply it: from the credentials found for the
    registries `objects` pull from, else the live one's data; None when there is neither."""
    auths = {}
    for host in registry_hosts(objects):
        found = lookup(host).credential
        if found is not None and not found.identity_token:
            auths[host] = found.config_entry()
    if auths:
        return secret_object(namespace, auths)
    if live and live.get("type") == TYPE and (live.get("data") or {}).get(KEY):
        kept = secret_object(namespace, {})
        kept["data"] = {KEY: live["data"][KEY]}
        return kept
    return None


def with_references(objects: list[dict]) -> list[dict]:
    """`objects` with ship-registry in every pod spec's imagePullSecrets (once; others kept)."""
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj) if obj.get("kind") in (*WORKLOADS, "CronJob") else obj
        for spec in _pod_specs([obj]):
            refs = spec.setdefault("imagePullSecrets", [])
            if not any(r.get("name") == names.PULL_SECRET for r in refs):
                refs.append({"name": names.PULL_SECRET})
        out.append(obj)
    return out
