"""What `ship init` works out by itself: a Dockerfile by what the app's folder holds (or none, said
so), and the registry: ghcr.io/OWNER of a GitHub repository, else --registry is required."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from pipeline import bootstrap, config
from pipeline.cli import app
from pipeline.errors import ConfigError


@pytest.mark.parametrize(("found", "kind"), [("go.mod", "go"), ("package.json", "node"), ("pyproject.toml", "python"),
                                             ("requirements.txt", "python")])
def test_the_dockerfile_is_picked_by_what_the_folder_holds(tmp_path, found, kind):
    (tmp_path / found).write_text("")
    assert bootstrap.pick_dockerfile(tmp_path, "shop").kind == kind
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert bootstrap.pick_dockerfile(tmp_path, "shop") is None  # theirs stays


def init(tmp_path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return CliRunner().invoke(app, ["init", "shop", *args])


def test_a_go_app_gets_a_scratch_image_and_its_build_command(tmp_path, monkeypatch):
    (tmp_path / "apps/shop").mkdir(parents=True)
    (tmp_path / "apps/shop/go.mod").write_text("module shop\n\ngo 1.24\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:Acme/shop.git"], cwd=tmp_path, check=True)
    out = init(tmp_path, monkeypatch, "--port", "3000")
    assert out.exit_code == 0, out.output
    assert "wrote apps/shop/Dockerfile" in out.stdout
    dockerfile = (tmp_path / "apps/shop/Dockerfile").read_text()
    assert "FROM scratch\nCOPY bin/shop /shop\nEXPOSE 3000\n" in dockerfile
    cfg = config.load(tmp_path, environ={})
    assert cfg.registry == "ghcr.io/acme"  # from the origin remote
    assert yaml.safe_load((tmp_path / "ship.yaml").read_text())["apps"]["shop"]["build"] == [
        'CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/shop .']


def test_an_app_init_cannot_pick_a_dockerfile_for_is_told_so(tmp_path, monkeypatch):
    out = init(tmp_path, monkeypatch, "--registry", "registry.example.com/team")
    assert out.exit_code == 0, out.output
    assert ("note: no Dockerfile written: apps/shop has none and no go.mod, package.json, pyproject.toml or "
            "requirements.txt to pick one by; write apps/shop/Dockerfile before the first build") in out.stdout
    assert not (tmp_path / "apps/shop/Dockerfile").exists()


def test_without_github_the_registry_must_be_given_and_nothing_is_written(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://gitlab.example.com/acme/shop.git"], cwd=tmp_path, check=True)
    out = init(tmp_path, monkeypatch)
    assert out.exit_code == 1
    assert out.stderr.strip().startswith("ConfigError: --registry is required: this repository's origin is not on GitHub")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git"]
    with pytest.raises(ConfigError):
        bootstrap.default_registry(tmp_path)


def test_adding_an_app_to_a_ship_yaml_needs_no_registry(tmp_path, monkeypatch):
    assert init(tmp_path, monkeypatch, "--registry", "registry.example.com").exit_code == 0
    out = CliRunner().invoke(app, ["init", "api", "--path", "services/api"])
    assert out.exit_code == 0, out.output
    assert config.load(tmp_path, environ={}).registry == "registry.example.com"
