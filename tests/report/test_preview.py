"""`ship preview`: every overlay rendered with the real kustomize at the base and in the working
tree, no cluster. Right for an image bump, a config change and secret changes (never a value)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.commands import deploy, observe
from tests.fakes import DIGEST_GOOD, GOOD, fake_context, fake_project

SECRET_VALUES = ("s3cret", "hunter2-old", "hunter2-new", "leaked-in-config")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """dev released once (an overlay with a pinned image and a versioned ConfigMap), on main."""
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    ctx, _, _ = fake_context(tmp_path, [])
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    yield ctx
    ctx.close()


def preview(ctx):
    fresh, _, _ = fake_context(ctx.config.root, [])  # ship.yaml as the working tree has it now
    result = observe.preview(fresh, "main", "ship preview")
    text = result.text()
    for value in SECRET_VALUES:
        assert value not in text and value not in json.dumps(result.to_json())
    return result.preview, text


def test_nothing_changed_says_so(repo):
    p, text = preview(repo)
    assert not p.changed and text.splitlines()[-1] == "**No change** to any environment or app."


def test_an_image_bump_in_an_overlay(repo):
    kz = repo.config.root / "environments/dev/hellok8s/kustomization.yaml"
    kz.write_text(kz.read_text().replace("newTag: '1111111'", "newTag: '2222222'")
                  .replace(DIGEST_GOOD, "sha256:" + "c" * 64))
    p, text = preview(repo)
    (dev,) = [e for e in p.environments if e.changed]
    (change,) = dev.objects
    assert change.subject == "Deployment/hk-dev/hellok8s" and change.action == "changed"
    assert change.images == (("hellok8s", GOOD, f"127.0.0.1:15000/hellok8s:2222222@sha256:{'c' * 64}"),)
    assert "| dev | 1 object, 1 image | no change |" in text.splitlines()
    assert ("  - image of `hellok8s`: `127.0.0.1:15000/hellok8s:1111111@sha256:aaaaaaaaaaaa…` → "
            "`127.0.0.1:15000/hellok8s:2222222@sha256:cccccccccccc…`") in text.splitlines()
    assert "| uat | no change | no change |" in text.splitlines()
    assert "```diff\n--- base/Deployment/hk-dev/hellok8s\n+++ head/Deployment/hk-dev/hellok8s" in text


def test_a_config_change_shows_in_the_next_release_of_that_environment(repo):
    uat_env = repo.config.root / "apps/hellok8s/config/uat.env"
    uat_env.write_text(uat_env.read_text().replace("MESSAGE=Hello from uat", "MESSAGE=Hello again from uat"))
    p, text = preview(repo)
    uat = next(e for e in p.environments if e.environment == "uat")
    assert uat.next_release == {"hellok8s": (("MESSAGE", "Hello from uat", "Hello again from uat"),)}
    assert not uat.objects and not any(e.changed for e in p.environments if e.environment != "uat")
    assert "| uat | no change | hellok8s: 1 config value |" in text.splitlines()
    assert "| `MESSAGE` | `Hello from uat` | `Hello again from uat` |" in text.splitlines()


def test_a_config_change_in_the_overlay_shows_as_values_the_deployment_reads(repo):
    cm = next((repo.config.root / "environments/dev/hellok8s/configs").iterdir())
    cm.write_text(cm.read_text().replace("Hello from dev", "Hello, edited"))
    p, _ = preview(repo)
    (change,) = p.environments[0].objects
    assert change.subject == f"ConfigMap/hk-dev/{cm.stem}" and change.config == (("MESSAGE", "Hello from dev", "Hello, edited"),)


def test_secret_changes_name_the_keys_and_never_a_value(repo):
    root = repo.config.root
    base = root / "apps/hellok8s/base"
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: api}\nstringData: {API_KEY: %s, OLD: x}\n"
    (base / "secret.yaml").write_text(secret % "hunter2-old")
    (base / "kustomization.yaml").write_text((base / "kustomization.yaml").read_text()
                                             .replace("  - service.yaml\n", "  - service.yaml\n  - secret.yaml\n"))
    repo.workspace.git.repo.git.add("--all")
    repo.workspace.git.repo.git.commit("-qm", "a Secret in the base (which ship would refuse to release)")
    (base / "secret.yaml").write_text((secret % "hunter2-new").replace(", OLD: x", ", NEW: y"))
    (root / "ship.yaml").write_text((root / "ship.yaml").read_text().replace("secrets: [DB_PASSWORD]",
                                                                             "secrets: [DB_PASSWORD, API_TOKEN]"))
    env_file = root / "apps/hellok8s/config/dev.env"
    env_file.write_text(env_file.read_text() + "DB_PASSWORD=leaked-in-config\n")
    p, text = preview(repo)
    dev = p.environments[0]
    secret_change = next(o for o in dev.objects if o.subject == "Secret/hk-dev/api")
    assert secret_change.secrets == (("API_KEY", "changed"), ("NEW", "added"), ("OLD", "removed"))
    assert "  - secret key `API_KEY` changed (value not shown)" in text.splitlines()
    assert dev.next_release["hellok8s"] == (("DB_PASSWORD", "", "<redacted>"),)
    assert p.apps[0].secret_keys == (("API_TOKEN", "added"),)
    assert ("- secret key `API_TOKEN` added in ship.yaml: its value comes from `SHIP_SECRET_HELLOK8S_API_TOKEN` "
            "at sync time") in text.splitlines()
    assert any("DB_PASSWORD is a secret of hellok8s" in w for w in p.warnings)
    assert any("Secret/api has data in git" in w for w in p.warnings)
    assert "API_KEY: <redacted>" in text  # the rendered diff shows the keys only


def test_a_branch_is_compared_with_its_merge_base_and_source_changes_mean_a_new_image(repo, monkeypatch):
    git = repo.workspace.git.repo.git
    git.checkout("-qb", "feature")
    main_go = repo.config.root / "apps/hellok8s/main.go"
    main_go.write_text(main_go.read_text() + "\n// a change\n")
    git.commit("-qam", "feature work")
    git.checkout("-q", "main")
    deploy.release(repo, "uat", None, deploy.ReleaseOptions(images=(GOOD,)))  # main moves on after the branch left it
    git.checkout("-q", "feature")
    monkeypatch.chdir(repo.config.root)
    out = CliRunner().invoke(app, ["preview", "--base", "main", "--output", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert not any(e["objects"] for e in data["environments"])  # uat's release on main is not this branch's doing
    assert data["apps"][0]["source"] == ["apps/hellok8s/main.go"]
    missing = CliRunner().invoke(app, ["preview", "--base", "nope"])
    assert missing.exit_code == 1 and missing.stderr.startswith("GitError: --base nope: no such branch or commit")
