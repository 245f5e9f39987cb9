"""Rendering with the real kustomize, and its cache in the clone: used again while the files
kustomize reads are unchanged, never after one was edited (committed or not), and off with
SHIP_RENDER_CACHE=off. The key itself: test_render_cache.py."""

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


def test_a_tag_of_digits_stays_a_string_kustomize_accepts(tmp_path):
    """A short sha can be all digits (0279160): ship must quote it, or kustomize reads a number."""
    from pipeline import yamlsafe

    kz = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["cm.yaml"],
          "images": [{"name": "app", "newName": "127.0.0.1:15000/app", "newTag": "0279160"}]}
    assert "newTag: '0279160'" in yamlsafe.dumps(kz)
    assert [yamlsafe.dumps({"v": v}) for v in ("1e5", "0o17", "3f2a1bc")] == ["v: '1e5'\n", "v: '0o17'\n", "v: 3f2a1bc\n"]
    (tmp_path / "kustomization.yaml").write_text(yamlsafe.dumps(kz))
    (tmp_path / "cm.yaml").write_text(config_map("one"))
    assert render(tmp_path)[0]["kind"] == "ConfigMap"
