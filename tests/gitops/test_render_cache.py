"""The render cache's key (render_cache.py): the content of what kustomize reads, not where it
lies or which commit holds it. A changed file misses; the same tree elsewhere hits, and real
kustomize renders it the same there (its output names no path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.gitops import render_cache
from pipeline.gitops.render import kustomize_command, render

COMMAND = ["kustomize", "build"]


def overlay_and_base(root: Path) -> Path:
    """environments/dev naming ../../apps/web/base (outside it), with ship's release.yaml and
    ledger.yaml beside its kustomization, as ship writes them."""
    base = root / "apps/web/base"
    base.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [cm.yaml]\nconfigMapGenerator:\n- name: gen\n  files: [data.txt]\n")
    (base / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {a: one}\n")
    (base / "data.txt").write_text("hello\n")
    (root / "apps/web/main.go").write_text("package main\n")  # beside the base: kustomize never reads it
    dev = root / "environments/dev"
    dev.mkdir(parents=True)
    (dev / "kustomization.yaml").write_text(
        "namespace: dev\nresources: [../../apps/web/base, extra.yaml]\n"
        "buildMetadata: [originAnnotations]\n")
    (dev / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")
    (dev / "release.yaml").write_text("id: r1\n")
    (dev / "ledger.yaml").write_text("releases: []\n")
    return dev


def key(folder: Path) -> str | None:
    return render_cache.key(folder, COMMAND, [])


@pytest.mark.parametrize("edit", ["environments/dev/kustomization.yaml", "environments/dev/extra.yaml",
                                  "apps/web/base/cm.yaml", "apps/web/base/data.txt",
                                  "apps/web/base/kustomization.yaml"])
def test_a_changed_file_that_kustomize_reads_is_another_key(tmp_path, edit):
    dev = overlay_and_base(tmp_path)
    before = key(dev)
    path = tmp_path / edit
    path.write_text(path.read_text() + "# changed\n")
    assert before is not None and key(dev) not in (None, before)


def test_a_new_file_in_a_subfolder_is_another_key(tmp_path):
    dev = overlay_and_base(tmp_path)
    before = key(dev)
    (dev / "configs").mkdir()
    (dev / "configs/new.yaml").write_text("x: 1\n")
    assert key(dev) != before


def test_what_kustomize_never_reads_is_left_out(tmp_path):
    """Files beside a kustomization that no kustomization names (the ledger, the release record),
    and the app's source beside its base, are not read by kustomize: changing them keeps the key."""
    dev = overlay_and_base(tmp_path)
    before = key(dev)
    (dev / "ledger.yaml").write_text("releases: [{id: r1, outcome: healthy}]\n")
    (dev / "release.yaml").write_text("id: r2\n")
    (tmp_path / "apps/web/main.go").write_text("package main // changed\n")
    assert key(dev) == before


def test_a_file_beside_a_kustomization_counts_once_one_names_it(tmp_path):
    dev = overlay_and_base(tmp_path)
    (dev / "kustomization.yaml").write_text((dev / "kustomization.yaml").read_text()
                                            + "configMapGenerator:\n- name: rel\n  files: [record=release.yaml]\n")
    before = key(dev)
    (dev / "release.yaml").write_text("id: r2\n")
    assert key(dev) != before


def test_a_pattern_in_a_kustomization_makes_every_file_count(tmp_path):
    dev = overlay_and_base(tmp_path)
    (dev / "kustomization.yaml").write_text((dev / "kustomization.yaml").read_text() + "patches: [{path: '*.patch'}]\n")
    before = key(dev)
    (dev / "ledger.yaml").write_text("releases: [{id: r1}]\n")
    assert key(dev) != before


def test_the_same_tree_elsewhere_is_the_same_key_and_kustomize_renders_it_the_same(tmp_path, monkeypatch):
    one = overlay_and_base(tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "deeper/two")
    two = tmp_path / "deeper/two/environments/dev"
    assert key(one) == key(two)
    monkeypatch.setenv("SHIP_RENDER_CACHE", "off")  # the real kustomize both times
    rendered = render(one)
    assert render(two) == rendered
    assert "path: ../../apps/web/base/cm.yaml" in str(rendered)  # origin annotations: relative paths only


def test_another_kustomize_or_helm_is_another_key(tmp_path):
    dev = overlay_and_base(tmp_path)
    assert render_cache.key(dev, COMMAND, []) != render_cache.key(dev, ["kubectl", "kustomize"], [])
    assert render_cache.key(dev, COMMAND, [["/bin/kustomize", 1, 2]]) != render_cache.key(dev, COMMAND, [["/bin/kustomize", 1, 3]])


@pytest.mark.parametrize("kustomization", [
    "resources: [https://github.com/org/repo//deploy?ref=v1]\n",
    "resources: [github.com/org/repo/deploy]\n",
    "helmCharts: [{name: podinfo, repo: https://stefanprodan.github.io/podinfo, version: 6.0.0}]\n",
    "resources: [: broken\n",
])
def test_what_no_local_file_holds_is_never_cached(tmp_path, kustomization):
    (tmp_path / "kustomization.yaml").write_text(kustomization)
    assert key(tmp_path) is None


def test_a_clone_renders_what_another_clone_rendered_without_kustomize(tmp_path, monkeypatch):
    """The process's memory serves a second clone with the same files (a test's repository, a
    scratch folder): kustomize runs once; the second clone's own cache gets the entry too."""
    for name in ("one", "two"):
        overlay_and_base(tmp_path / name)
        (tmp_path / name / ".git").mkdir()
    calls = tmp_path / "calls"
    real = kustomize_command()[0]
    counting = tmp_path / "kustomize"
    counting.write_text(f"#!/bin/sh\necho x >> {calls}\nexec {real} \"$@\"\n")
    counting.chmod(0o755)
    monkeypatch.setenv("SHIP_KUSTOMIZE", str(counting))
    first = render(tmp_path / "one/environments/dev")
    assert render(tmp_path / "two/environments/dev") == first
    assert calls.read_text().count("x") == 1
    assert len(list((tmp_path / "two/.git/ship/render-cache").glob("*.json"))) == 1
    (tmp_path / "two/apps/web/base/data.txt").write_text("changed\n")
    assert render(tmp_path / "two/environments/dev") != first
    assert calls.read_text().count("x") == 2
