"""Reproductions: committed symlinks, FIFOs and /proc files never make ship read or write outside
the repository (issue 27, item 2). Real git and kustomize; the in-memory cluster of tests/fakes.py,
since every refusal here comes before anything reaches a cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import paths, scaffold
from pipeline.cli import app
from pipeline.commands import deploy
from pipeline.errors import ConfigError
from pipeline.report.dashboard import site
from tests.fakes import GOOD, fake_context, fake_project

CANARY = "leak-me-if-you-can-4711"


@pytest.fixture
def flow(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", CANARY)
    fake_project(tmp_path / "repo")
    ctx, cluster, _ = fake_context(tmp_path / "repo", [])
    yield ctx, cluster
    ctx.close()


def commit(ctx, message: str) -> None:
    ctx.workspace.git.repo.git.add("--all")
    ctx.workspace.git.repo.git.commit("-qm", message)


def test_a_config_symlinked_to_proc_environ_is_refused_and_nothing_is_committed(flow):
    ctx, cluster = flow
    config = ctx.config.root / "apps/hellok8s/config/dev.env"
    config.unlink()
    config.symlink_to("/proc/self/environ")
    commit(ctx, "config from the runner's environment")
    head = ctx.workspace.git.head().sha
    with pytest.raises(ConfigError, match=r"apps/hellok8s/config/dev.env: a symlink "
                                          r"\(to /proc/self/environ\); ship reads and writes only regular files"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert ctx.workspace.git.head().sha == head and not ctx.workspace.git.dirty_paths()
    assert CANARY not in ctx.workspace.git.repo.git.log("-p", "--all")


def test_a_config_that_is_a_fifo_is_refused_without_hanging(flow):
    ctx, _ = flow
    config = ctx.config.root / "apps/hellok8s/config/dev.env"
    config.unlink()
    os.mkfifo(config)
    with pytest.raises(ConfigError, match="apps/hellok8s/config/dev.env: not a regular file"):
        ctx.workspace.config_data(ctx.config.app(None), ctx.config.env("dev"))


def test_a_proc_file_is_read_not_stated_for_its_size(tmp_path):
    (tmp_path / "env").symlink_to("/proc/self/environ")
    with pytest.raises(ConfigError, match="env: a symlink"):
        paths.read_text(tmp_path, "env")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(ConfigError, match="big: larger than 10 bytes"):
        paths.read_bytes(tmp_path, "big", cap=10)
    assert paths.read_bytes(tmp_path, "big", cap=11) == b"x" * 11


def test_an_overlay_folder_symlinked_outside_is_refused_and_nothing_is_written_there(flow, tmp_path):
    ctx, _ = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    outside = tmp_path / "outside"
    outside.mkdir()
    configs = ctx.config.root / "environments/dev/hellok8s/configs"
    for f in configs.iterdir():
        (outside / f.name).write_text(f.read_text())
        f.unlink()
    configs.rmdir()
    configs.symlink_to(outside)
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("MESSAGE=new\nDB_URL=postgres://db\n")
    commit(ctx, "configs elsewhere, and a new config")
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(ConfigError, match=r"environments/dev/hellok8s/configs: a symlink"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert sorted(p.name for p in outside.iterdir()) == before


@pytest.mark.parametrize("where", ["ship.yaml", "environments/dev/freeze.yaml"])
def test_other_inputs_symlinked_outside_are_refused(flow, where, tmp_path):
    ctx, _ = flow
    target = ctx.config.root / where
    (tmp_path / "elsewhere.yaml").write_text(target.read_text() if target.exists() else "reason: x\n")
    target.unlink(missing_ok=True)
    target.symlink_to(tmp_path / "elsewhere.yaml")
    commit(ctx, f"{where} elsewhere")
    with pytest.raises(ConfigError, match=f"{where}: a symlink"):
        if where == "ship.yaml":
            fake_context(ctx.config.root, [])
        else:
            deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))


def test_dashboard_out_refuses_a_symlink_and_a_folder_of_other_files_unless_forced(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "index.html").write_text("mine")
    link = tmp_path / "site"
    link.symlink_to(victim)
    with pytest.raises(ConfigError, match="site: a symlink; refusing to write through it"):
        paths.output_folder(link, site.site_files(), force=True)
    (victim / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="victim: holds notes.txt, which ship did not write; .* --force"):
        paths.output_folder(victim, site.site_files())
    assert paths.output_folder(victim, site.site_files(), force=True) == victim
    (tmp_path / "other").mkdir()
    (tmp_path / "other/assets").mkdir()
    (tmp_path / "other/assets/app.js").symlink_to(tmp_path / "victim/notes.txt")
    with pytest.raises(ConfigError, match="assets/app.js: a symlink"):
        paths.output_folder(tmp_path / "other", site.site_files(), force=True)


def test_the_dashboard_command_refuses_a_symlinked_out(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", CANARY)
    fake_project(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    (tmp_path / "victim").mkdir()
    (tmp_path / "site").symlink_to(tmp_path / "victim")
    result = CliRunner().invoke(app, ["dashboard", "--out", str(tmp_path / "site")])
    assert result.exit_code == 1 and "ConfigError:" in result.stderr and "a symlink" in result.stderr
    assert list((tmp_path / "victim").iterdir()) == []


def test_the_dashboard_command_writes_into_a_foreign_folder_only_with_force(tmp_path, monkeypatch):
    fake_project(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    (tmp_path / "site").mkdir()
    (tmp_path / "site/notes.txt").write_text("mine\n")
    refused = CliRunner().invoke(app, ["dashboard", "--out", str(tmp_path / "site")])
    assert refused.exit_code == 1 and "ConfigError:" in refused.stderr
    assert not (tmp_path / "site/index.html").exists()
    forced = CliRunner().invoke(app, ["dashboard", "--out", str(tmp_path / "site"), "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "site/index.html").is_file() and (tmp_path / "site/notes.txt").read_text() == "mine\n"


def test_init_never_writes_through_a_symlink_even_with_force(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "target.yaml").write_text("precious\n")
    (tmp_path / "repo/ship.yaml").symlink_to(tmp_path / "target.yaml")
    with pytest.raises(ConfigError, match="ship.yaml: a symlink"):
        scaffold.init(tmp_path / "repo", "shop", scaffold.InitOptions(path="apps/shop", port=8080, registry="registry.example.com", force=True))
    assert (tmp_path / "target.yaml").read_text() == "precious\n"
    (tmp_path / "repo/ship.yaml").unlink()
    (tmp_path / "repo/environments").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="environments: a symlink"):
        scaffold.init(tmp_path / "repo", "shop", scaffold.InitOptions(path="apps/shop", port=8080, registry="registry.example.com", force=True))
    assert not (tmp_path / "dev").exists() and not (tmp_path / "repo/ship.yaml").exists()


def test_contained_refuses_dot_dot_and_absolute_paths_elsewhere(tmp_path):
    with pytest.raises(ConfigError, match="outside the repository"):
        paths.contained(tmp_path, "../x")
    with pytest.raises(ConfigError, match="outside the repository"):
        paths.contained(tmp_path, Path("/etc/passwd"))
    assert paths.contained(tmp_path, "a/b") == Path(os.path.realpath(tmp_path)) / "a/b"
