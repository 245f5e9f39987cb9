"""Overlay writing and release records: pure, no files, git or cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import yamlsafe
from pipeline.config import App, Environment, Slot
from pipeline.errors import ValidationError
from pipeline.gitops import configmaps, overlay
from pipeline.gitops.records import Release

APP = App(name="hellok8s", path=Path("apps/hellok8s"), image="hellok8s", secrets=("DB_PASSWORD",), keep_configs=3)
ENV = Environment(name="dev", namespace="hellok8s-dev")
SLOT = Slot(ENV, "hellok8s")
DIGEST = "sha256:" + "a" * 64
BASE = yamlsafe.loads_all((Path(__file__).parents[1] / "fixtures/overlay/base-rendered.yaml").read_text())


def release(rid: str, data: dict | None = None, image: str | None = None) -> Release:
    return Release(
        id=rid, app="hellok8s", environment="dev", commit="c" * 40,
        image=image or f"127.0.0.1:5000/hellok8s:{rid[-7:]}@{DIGEST}", config=f"hellok8s-config-{rid}",
        created_at="2026-11-24T10:00:00Z", created_by="test", config_data=data or {"MESSAGE": "hi"},
    )


def apply_files(current: dict, planned: overlay.OverlayFiles) -> dict:
    out = dict(current)
    for path, text in planned.files.items():
        if text is None:
            out.pop(path, None)
        else:
            out[path] = text
    return out


def test_config_refs_finds_every_kind_of_reference():
    workload = {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "s"}}, {"configMapRef": {"name": "cfg"}}],
                        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}]}],
        "volumes": [{"name": "v", "configMap": {"name": "cfg"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "other"}}, {"configMap": {"name": "cfg"}}]}}],
    }}}}
    assert overlay.config_refs(workload, "cfg") == [
        "/spec/template/spec/containers/0/envFrom/1/configMapRef/name",
        "/spec/template/spec/containers/0/env/0/valueFrom/configMapKeyRef/name",
        "/spec/template/spec/volumes/0/configMap/name",
        "/spec/template/spec/volumes/1/projected/sources/1/configMap/name",
    ]


def test_first_release_writes_pinned_image_versioned_configmap_and_record():
    rel = release("r20261124-100000-aaaaaaa", {"MESSAGE": "hi", "DB_URL": "postgres://db"})
    files = overlay.plan_release({}, APP, SLOT, rel, overlay.AppBase(BASE, "../../../apps/hellok8s/base")).files
    kz = yamlsafe.loads(files["kustomization.yaml"])
    assert kz["namespace"] == "hellok8s-dev"
    assert kz["labels"][0]["pairs"]["ship.dev/app"] == "hellok8s"
    assert kz["resources"] == ["../../../apps/hellok8s/base",
                               "configs/hellok8s-config-r20261124-100000-aaaaaaa.yaml"]
    assert kz["images"] == [{"name": "hellok8s", "newName": "127.0.0.1:5000/hellok8s", "newTag": "aaaaaaa", "digest": DIGEST}]
    patch = yamlsafe.loads(kz["patches"][0]["patch"])
    assert kz["patches"][0]["target"] == {"group": "apps", "version": "v1", "kind": "Deployment", "name": "hellok8s",
                                         "labelSelector": "ship.dev/track!=canary"}
    assert patch[0] == {"op": "replace", "path": "/spec/template/spec/containers/0/envFrom/0/configMapRef/name",
                        "value": "hellok8s-config-r20261124-100000-aaaaaaa"}
    assert patch[1]["value"]["kubernetes.io/change-cause"].startswith("ship release r20261124-100000-aaaaaaa: 127.0.0.1:5000")
    cm = yamlsafe.loads(files["configs/hellok8s-config-r20261124-100000-aaaaaaa.yaml"])
    assert cm["immutable"] is True and cm["data"] == {"DB_URL": "postgres://db", "MESSAGE": "hi"}
    record = yamlsafe.loads(files["release.yaml"])
    assert record["id"] == rel.id and record["image"] == rel.image and record["config"] == rel.config
    assert "namespace.yaml" not in files  # the environment's own (environment_files)
    env_files = overlay.environment_files(ENV, ["web", "hellok8s"])
    assert yamlsafe.loads(env_files["kustomization.yaml"])["resources"] == ["namespace.yaml", "hellok8s", "web"]
    assert yamlsafe.loads(env_files["namespace.yaml"]) == {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": "hellok8s-dev"}}


def test_only_the_newest_configs_are_kept():
    current: dict = {}
    ids = [f"r2026112{i}-100000-aaaaaa{i}" for i in range(1, 6)]
    for rid in ids:
        current = apply_files(current, overlay.plan_release(current, APP, SLOT, release(rid), overlay.AppBase(BASE, "../base")))
    kz = yamlsafe.loads(current["kustomization.yaml"])
    assert [r for r in kz["resources"] if r.startswith("configs/")] == [f"configs/hellok8s-config-{r}.yaml" for r in ids[-3:]]
    assert sorted(p for p in current if p.startswith("configs/")) == [f"configs/hellok8s-config-{r}.yaml" for r in ids[-3:]]
    assert len(kz["images"]) == 1 and len(kz["patches"]) == 1


def test_a_second_config_for_the_same_release_gets_a_new_immutable_name():
    rel = release("r20261124-100000-aaaaaaa", {"MESSAGE": "one"})
    current = apply_files({}, overlay.plan_release({}, APP, SLOT, rel, overlay.AppBase(BASE, "../base")))
    assert configmaps.config_name_for(APP, rel.id, {"MESSAGE": "one"}, current) == "hellok8s-config-r20261124-100000-aaaaaaa"
    assert configmaps.config_name_for(APP, rel.id, {"MESSAGE": "two"}, current) == "hellok8s-config-r20261124-100000-aaaaaaa-2"


def test_current_release_reads_the_record_back():
    rel = release("r20261124-100000-aaaaaaa")
    current = apply_files({}, overlay.plan_release({}, APP, SLOT, rel, overlay.AppBase(BASE, "../base")))
    assert overlay.current_release(current, SLOT) == rel
    assert overlay.current_release({}, SLOT) is None


def test_a_base_without_a_config_reference_is_refused():
    base = [o for o in BASE if o["kind"] != "Deployment"]
    with pytest.raises(ValidationError, match="no Deployment, StatefulSet or DaemonSet references ConfigMap hellok8s-config"):
        overlay.plan_release({}, APP, SLOT, release("r20261124-100000-aaaaaaa"), overlay.AppBase(base, "../base"))


def test_a_base_carrying_a_secret_with_data_is_refused():
    base = [*BASE, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"p": "aGk="}}]
    with pytest.raises(ValidationError, match="Secret db carries data; secrets never go in git"):
        overlay.plan_release({}, APP, SLOT, release("r20261124-100000-aaaaaaa"), overlay.AppBase(base, "../base"))


def test_kept_configs_order_release_suffixes_as_numbers():
    """Releases of one commit get .2, .3, … .10: the newest are kept, not those sorting last as text
    (make faults found .6 to .9 kept and .10 to .17 dropped, the current release's among them)."""
    from pipeline.gitops.configmaps import kept_configs

    base = "hellok8s-config-r20261126-071503-9d979a1"
    existing = [base] + [f"{base}.{n}" for n in range(2, 12)]
    kept, dropped = kept_configs(existing, f"{base}.12", 5)
    assert kept == [f"{base}.{n}" for n in range(8, 13)]
    assert dropped == [base] + [f"{base}.{n}" for n in range(2, 8)]


def test_chart_bases_of_the_newest_releases_are_kept_and_the_resource_points_at_the_releases():
    from dataclasses import replace

    from pipeline.gitops.ledger import LEDGER_FILE, Ledger, Outcome

    current: dict = {}
    ledger = Ledger(())
    for n in range(5):
        rel = replace(release(f"r20261124-10000{n}-aaaaaaa"), chart="podinfo-6.9.2", chart_digest=f"sha256:{n:012d}" + "0" * 52)
        folder = f"charts/podinfo-6.9.2-{n:012d}"
        files = overlay.plan_release(current, APP, SLOT, rel, overlay.AppBase(BASE, folder, {f"{folder}/kustomization.yaml": "k"}))
        current = apply_files(current, files)
        ledger = ledger.record(rel, Outcome.HEALTHY, "", "2026-11-24T10:00:00Z")
        current[LEDGER_FILE] = ledger.dumps()
        assert yamlsafe.loads(current["kustomization.yaml"])["resources"][0] == folder
        assert [r for r in yamlsafe.loads(current["kustomization.yaml"])["resources"] if r.startswith("charts/")] == [folder]
    assert yamlsafe.loads(current["release.yaml"])["chart"] == "podinfo-6.9.2"
    assert sorted(p for p in current if p.startswith("charts/")) == [  # keep_configs 3, plus the one just written
        f"charts/podinfo-6.9.2-{n:012d}/kustomization.yaml" for n in (1, 2, 3, 4)]
