"""Reproductions: no Secret with data reaches a cluster from git, however kustomize made it; a
changed secret value shows in `ship diff` (issue 27, items 6 and 9). Real git and kustomize, the
in-memory cluster."""

from __future__ import annotations

import pytest

from pipeline import names
from pipeline.commands import deploy, inspect
from pipeline.errors import ValidationError
from tests.fakes import GOOD, fake_context, fake_project


@pytest.fixture
def released(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    ctx, cluster, _ = fake_context(tmp_path, [])
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    yield ctx, cluster
    ctx.close()


def add_to_kustomization(ctx, text: str) -> None:
    path = ctx.config.root / "environments/dev/kustomization.yaml"
    path.write_text(path.read_text() + text)
    ctx.workspace.git.repo.git.commit("-qam", "a generator in the overlay")


def test_a_secret_generator_with_literals_in_an_overlay_is_never_applied(released):
    ctx, cluster = released
    add_to_kustomization(ctx, "secretGenerator:\n- name: sneaky\n  literals: [password=hunter2]\n")
    with pytest.raises(ValidationError, match=r"environments/dev: Secret/hk-dev/sneaky-[a-z0-9]+ renders with data "
                                              r"\(from a file, a secretGenerator or a patch\)"):
        deploy.sync(ctx, "dev")
    assert not [n for n in cluster.names("Secret", "hk-dev") if n.startswith("sneaky")]


def test_a_release_refuses_an_overlay_whose_generator_renders_a_secret(released):
    ctx, _ = released
    add_to_kustomization(ctx, "secretGenerator:\n- name: sneaky\n  literals: [password=hunter2]\n")
    head = ctx.workspace.git.head().sha
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("MESSAGE=new\nDB_URL=x\n")
    ctx.workspace.git.repo.git.commit("-qam", "new config")
    with pytest.raises(ValidationError, match="renders with data"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    assert ctx.workspace.git.repo.git.rev_list("--count", f"{head}..HEAD") == "1"  # only the config commit


def test_diff_shows_a_secret_whose_value_changed_without_showing_the_value(released, monkeypatch):
    ctx, _ = released
    assert inspect.diff(ctx, "dev").exit_code == 0
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "rotated-value")
    result = inspect.diff(ctx, "dev")
    text = result.text()
    assert result.exit_code == 3 and f"Secret/hk-dev/{names.secret_name('hellok8s')}" in text
    assert "DB_PASSWORD: <redacted> (changed)" in text and "rotated-value" not in text and "s3cret" not in text


def test_two_apps_whose_secrets_share_a_variable_are_refused(tmp_path):
    """Reproduction: web + ADMIN_TOKEN and web-admin + TOKEN are both SHIP_SECRET_WEB_ADMIN_TOKEN."""
    from pipeline import config, yamlsafe
    from pipeline.errors import ConfigError

    text = ("registry: r.example.com\napps:\n  web: {path: apps/web, image: web, secrets: [ADMIN_TOKEN]}\n"
            "  web-admin: {path: apps/web-admin, image: web-admin, secrets: [TOKEN]}\n"
            "environments:\n  dev: {namespace: dev}\n")
    with pytest.raises(ConfigError, match=r"ship.yaml:4: apps.web-admin.secrets: TOKEN is read from "
                                          r"SHIP_SECRET_WEB_ADMIN_TOKEN, as secret ADMIN_TOKEN of app web is"):
        config.parse(yamlsafe.loads(text, "ship.yaml"), tmp_path, "ship.yaml", {})
