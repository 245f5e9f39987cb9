"""Rendering with the real kustomize, and its cache: used for a clean working tree at the same
HEAD, never for edited or untracked files, and off with SHIP_RENDER_CACHE=off."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.errors import RenderError
from pipeline.gitops.render import render

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n"


def config_map(value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{value: '{value}'}}\n"


@pytest.fixture
def repo(tmp_path) -> Path:
    folder = tmp_path / "overlay"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(KUSTOMIZATION)
    (folder / "cm.yaml").write_text(config_map("one"))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    commit(tmp_path, "one")
    return tmp_path


def commit(root: Path, message: str) -> None:
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message],
                   check=True)


def value(objects: list[dict]) -> str:
    return objects[0]["data"]["value"]


def test_a_clean_tree_renders_once_and_is_cached_in_git_dir(repo):
    first = render(repo / "overlay")
    assert value(first) == "one"
    entries = list((repo / ".git/ship/render-cache").glob("*.json"))
    assert len(entries) == 1
    assert render(repo / "overlay") == first
    assert list((repo / ".git/ship/render-cache").glob("*.json")) == entries


def test_a_folder_without_kustomization_is_an_error(tmp_path):
    with pytest.raises(RenderError, match="no kustomization.yaml"):
        render(tmp_path)


def test_an_edit_or_a_new_commit_is_rendered_again(repo):
    assert value(render(repo / "overlay")) == "one"
    (repo / "overlay/cm.yaml").write_text(config_map("two"))
    assert value(render(repo / "overlay")) == "two"  # edited, uncommitted: not from the cache
    commit(repo, "two")
    assert value(render(repo / "overlay")) == "two"
    (repo / "overlay/extra.yaml").write_text("untracked: true\n")
    (repo / "overlay/cm.yaml").write_text(config_map("three"))
    commit(repo, "three")
    assert value(render(repo / "overlay")) == "three"


def test_the_cache_can_be_turned_off(repo, monkeypatch):
    render(repo / "overlay")
    monkeypatch.setenv("SHIP_RENDER_CACHE", "off")
    for entry in (repo / ".git/ship/render-cache").glob("*.json"):
        entry.write_text('[{"data": {"value": "stale"}}]')
    assert value(render(repo / "overlay")) == "one"
    monkeypatch.delenv("SHIP_RENDER_CACHE")
    assert value(render(repo / "overlay")) == "stale"  # the entry is used when on: the key matched
