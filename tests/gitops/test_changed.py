"""`ship build [APP...] [--changed] [--list]`: which apps changed since their last release in the
first environment (a pure decision, then records and git), and what a build of several prints."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from pipeline import config, scaffold
from pipeline.cli import app as cli
from pipeline.commands import deploy
from pipeline.errors import ConfigError
from pipeline.gitops.changed import first_environment, is_changed, released_commit
from pipeline.supply.build import BuildResult, Builds
from tests.fakes import DIGEST_GOOD, GOOD, fake_context, fake_project

ANCESTRY = {("a", "b")}  # a comes before b


def before(a: str, b: str) -> bool:
    return a == b or (a, b) in ANCESTRY


@pytest.mark.parametrize("current, released, changed", [
    ("a", None, True),   # never released
    ("a", "a", False),   # released as it is
    ("b", "a", True),    # changed since its release
    ("a", "b", False),   # the release is newer than this checkout
    ("c", "a", True),    # neither descends from the other (or the release's commit is unknown here)
])
def test_an_app_changed_when_never_released_or_its_last_change_is_not_in_its_release(current, released, changed):
    assert is_changed(current, released, before) is changed


def test_the_first_environment_is_the_one_that_promotes_from_none(tmp_path):
    fake_project(tmp_path)
    cfg = config.load(tmp_path, environ={})
    assert first_environment(cfg).name == "dev"
    text = (tmp_path / "ship.yaml").read_text().replace("  dev: {", "  dev: {promotes_from: prod, ", 1)
    (tmp_path / "ship.yaml").write_text(text)
    with pytest.raises(ConfigError, match="promotes_from makes a cycle"):  # refused when ship.yaml loads
        first_environment(config.load(tmp_path, environ={}))


def test_the_release_record_is_read_per_app(tmp_path):
    fake_project(tmp_path)
    dev = config.load(tmp_path, environ={}).env("dev")
    assert released_commit(tmp_path, dev, "hellok8s") is None
    (tmp_path / "environments/dev/shop").mkdir()
    (tmp_path / "environments/dev/shop/release.yaml").write_text("id: r2\napp: shop\ncommit: 2222\n")
    (tmp_path / "environments/dev/hellok8s").mkdir()
    (tmp_path / "environments/dev/hellok8s/release.yaml").write_text("id: r3\napp: hellok8s\ncommit: 3333\n")
    assert released_commit(tmp_path, dev, "shop") == "2222" and released_commit(tmp_path, dev, "hellok8s") == "3333"


@pytest.fixture
def two_apps(tmp_path, monkeypatch):
    """The fake project with a second app, shop, added by `ship init shop`."""
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    scaffold.init(tmp_path, "shop", scaffold.InitOptions(path="apps/shop", port=8080, registry="unused"))
    (tmp_path / "apps/shop/Dockerfile").write_text("FROM scratch\n")
    commit(tmp_path, "shop")
    ctx, _, registry = fake_context(tmp_path, [])
    for name in ("hellok8s", "shop"):  # both already built from their last change: found, not rebuilt
        source = ctx.workspace.git.last_change(f"apps/{name}").sha
        registry.digests[(name, source)] = DIGEST_GOOD
        registry.revisions[name] = source
    yield ctx
    ctx.close()


def commit(root, message: str) -> None:
    import git

    repo = git.Repo(root)
    repo.git.add("--all")
    repo.git.commit("-qm", message)


def matrix(ctx) -> dict:
    return json.loads(deploy.build(ctx, None, changed=True, list_only=True).text())


def test_changed_lists_the_apps_changed_since_their_release_in_dev(two_apps):
    ctx = two_apps
    assert matrix(ctx) == {"app": ["hellok8s", "shop"]}  # neither released yet
    deploy.release(ctx, "dev", "hellok8s", deploy.ReleaseOptions(images=(GOOD,), sync=False, push=False))
    assert matrix(ctx) == {"app": ["shop"]}
    shop = ctx.workspace.git.last_change("apps/shop").sha
    (ctx.config.root / "environments/dev/shop").mkdir()
    (ctx.config.root / "environments/dev/shop/release.yaml").write_text(f"id: r1\napp: shop\ncommit: {shop}\n")
    commit(ctx.config.root, "shop released")
    assert matrix(ctx) == {"app": []}
    assert deploy.build(ctx, None, changed=True, list_only=True).text() == '{"app": []}'
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("MESSAGE=changed\n")
    commit(ctx.config.root, "hellok8s's config changed")
    assert matrix(ctx) == {"app": ["hellok8s"]}
    assert json.loads(deploy.build(ctx, ["shop"], changed=True, list_only=True).text()) == {"app": []}
    assert deploy.build(ctx, ["shop", "hellok8s"], list_only=True).to_json() == {"app": ["shop", "hellok8s"]}


def test_build_prints_one_app_alone_and_several_a_line_each(two_apps):
    ctx = two_apps
    one = deploy.build(ctx, ["shop"])
    assert isinstance(one, BuildResult) and one.text() == f"127.0.0.1:15000/shop:{one.image.tag}@{DIGEST_GOOD}"
    every = deploy.build(ctx, None)
    assert isinstance(every, Builds) and list(every.builds) == ["hellok8s", "shop"]
    tags = {name: ctx.workspace.git.last_change(f"apps/{name}").sha for name in ("hellok8s", "shop")}
    images = {name: f"127.0.0.1:15000/{name}:{tag}@{DIGEST_GOOD}" for name, tag in tags.items()}
    assert every.text() == f"hellok8s {images['hellok8s']}\nshop {images['shop']}"
    assert every.to_json() == {"images": images}
    changed = deploy.build(ctx, None, changed=True)  # --changed prints a line per app, even for one
    assert isinstance(changed, Builds) and changed.text().splitlines() == [f"hellok8s {images['hellok8s']}",
                                                                           f"shop {images['shop']}"]


def test_the_cli_prints_the_matrix_on_one_line(tmp_path, monkeypatch):
    fake_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["build", "--changed", "--list"])
    assert out.exit_code == 0, out.output
    assert out.stdout == '{"app": ["hellok8s"]}\n'
    out = CliRunner().invoke(cli, ["build", "nope", "--list"])
    assert out.exit_code == 1 and out.stderr.startswith("ConfigError: unknown app 'nope'")


def test_a_change_ship_yaml_ignores_builds_and_releases_nothing(two_apps):
    """ship.yaml's `ignore:` (READMEs, docs): such a commit moves no app's source commit, so
    `--changed` lists nothing and a build finds the same tag; the workflow's `paths` agree."""
    from dataclasses import replace

    ctx = two_apps
    ctx.config = replace(ctx.config, ignore=scaffold.IGNORE)
    shop = ctx.workspace.git.last_change("apps/shop", ctx.config.ignore).sha
    (ctx.config.root / "environments/dev/shop").mkdir(parents=True)
    (ctx.config.root / "environments/dev/shop/release.yaml").write_text(f"id: r1\napp: shop\ncommit: {shop}\n")
    commit(ctx.config.root, "shop released")
    (ctx.config.root / "apps/shop/README.md").write_text("# shop\n")
    (ctx.config.root / "apps/shop/docs").mkdir()
    (ctx.config.root / "apps/shop/docs/how.txt").write_text("how\n")
    commit(ctx.config.root, "shop's docs")
    assert matrix(ctx) == {"app": ["hellok8s"]}
    assert ctx.workspace.git.last_change("apps/shop", ctx.config.ignore).sha == shop
    assert ctx.workspace.git.last_change("apps/shop").sha != shop  # without the list, docs would ship
    (ctx.config.root / "apps/shop/Dockerfile").write_text("FROM scratch\nLABEL x=y\n")
    commit(ctx.config.root, "shop's image changed")
    assert matrix(ctx) == {"app": ["hellok8s", "shop"]}
    paths = yaml.safe_load(scaffold.workflow_files({"shop": ()}, scaffold.IGNORE)[".github/workflows/pipeline.yml"])[True]
    assert paths["push"]["paths"][:3] == ["apps/**", "!**/*.md", "!**/docs/**"]
