"""`ship init`: scaffolds ship into an empty repository, refuses to overwrite, adds an app to a
repository that has ship.yaml (leaving the other apps byte for byte), and what it writes takes
a release through the local cluster."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline import config, scaffold, yamlsafe
from pipeline.cli import app
from pipeline.errors import ConfigError
from tests.conftest import bare_and_clone, commit_all, copy_project


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def on_github(monkeypatch):
    """As in GitHub Actions: the registry defaults to ghcr.io/OWNER (test_bootstrap.py: the remote)."""
    monkeypatch.setenv("GITHUB_REPOSITORY", "Acme/shop-repo")


def test_init_writes_config_overlays_base_rbac_and_workflows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = ship("init", "shop", "--port", "9000")
    assert out.exit_code == 0, out.output
    for name in ("ship.yaml", "environments/prod/.gitkeep", "apps/shop/base/deployment.yaml",
                 "apps/shop/config/uat.env", "deploy/rbac/prod.yaml", ".github/workflows/pipeline.yml",
                 ".github/workflows/rollback.yml", ".github/workflows/preview.yml"):
        assert f"wrote {name}" in out.stdout
    cfg = config.load(tmp_path, environ={})
    assert cfg.app("shop").image == "shop" and cfg.env("prod").namespace == "shop-prod" and cfg.registry == "ghcr.io/acme"
    assert cfg.env("prod").canary.router == "gateway"
    assert "containerPort: 9000" in (tmp_path / "apps/shop/base/deployment.yaml").read_text()
    # prod's canary reads the template's Prometheus (monitoring): its deployer may, by name; dev's has no canary
    prod_rbac = yamlsafe.loads_all((tmp_path / "deploy/rbac/prod.yaml").read_text(), "prod.yaml")
    assert [(d["kind"], d["metadata"]["name"]) for d in prod_rbac if d["metadata"].get("namespace") == "monitoring"] == [
        ("Role", "ship-deployer-shop-prod"), ("RoleBinding", "ship-deployer-shop-prod")]
    assert "monitoring" not in (tmp_path / "deploy/rbac/dev.yaml").read_text()


def test_init_refuses_to_overwrite_anything_without_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ship.yaml").write_text("# mine\n")
    out = ship("init", "shop")
    assert out.exit_code == 1
    assert out.stderr.strip() == "ConfigError: ship.yaml already exists; nothing written; pass --force to overwrite"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ship.yaml"]
    assert ship("init", "shop", "--force").exit_code == 0
    assert "apps:" in (tmp_path / "ship.yaml").read_text()


def test_init_keeps_an_existing_base_and_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "apps/shop/base").mkdir(parents=True)
    (tmp_path / "apps/shop/config").mkdir()
    (tmp_path / "apps/shop/config/dev.env").write_text("MINE=1\n")
    out = ship("init", "shop")
    assert out.exit_code == 0 and "apps/shop/base" not in out.stdout and "config/dev.env" not in out.stdout
    assert (tmp_path / "apps/shop/config/dev.env").read_text() == "MINE=1\n"


def test_init_refuses_a_bad_app_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = ship("init", "My_App")
    assert out.exit_code == 1 and "ConfigError: app name 'My_App': expected a lowercase DNS label" in out.stderr


@pytest.mark.cluster
@pytest.mark.registry
def test_what_init_writes_releases_to_the_local_cluster(tmp_path, monkeypatch, local_parts, hellok8s_image,
                                                        project_repo):
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    # The session image was built from project_repo's commit: this repository's history holds it
    # (ship checks an image's source commit against git), then starts afresh for `ship init`.
    repo.git.fetch(str(project_repo), "main")
    repo.git.reset("--hard", "FETCH_HEAD")
    repo.git.rm("-rq", ".")
    repo.git.commit("-qm", "start afresh")
    monkeypatch.chdir(work)
    assert ship("init", "shop", "--registry", local_parts["SHIP_REGISTRY"]).exit_code == 0
    unique_namespaces_for(work / "ship.yaml", "shop")
    repo.git.add("--all")
    repo.git.commit("-m", "ship init")
    repo.git.push("origin", "HEAD:main")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    out = ship("release", "dev", "shop", "--image", hellok8s_image, "--output", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["gate"]["passed"] is True
    status = json.loads(ship("status", "dev", "--output", "json").stdout)["environments"][0]
    assert status["health"] == "Healthy" and status["drift"] is False
    ns = status["namespace"]
    from kubernetes import client
    from kubernetes import config as kconfig

    client.CoreV1Api(kconfig.new_client_from_config(config_file=local_parts["KUBECONFIG"])).delete_namespace(ns)


def unique_namespaces_for(cfg_path, app: str) -> None:
    import uuid

    suffix = uuid.uuid4().hex[:6]
    text = cfg_path.read_text()
    for env in ("dev", "uat", "prod"):
        text = text.replace(f"namespace: {app}-{env}", f"namespace: {app}-{env}-{suffix}")
    cfg_path.write_text(text)


def test_init_refuses_a_path_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    out = ship("init", "shop", "--path", "../../escape")
    assert out.exit_code == 1 and "ConfigError: --path '../../escape': expected a relative path inside the repository; nothing written" in out.stderr
    assert list((tmp_path / "repo").iterdir()) == [] and not (tmp_path.parent / "escape").exists()


def test_init_refuses_a_name_other_commands_would_refuse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = ship("init", "a" * 41)
    assert out.exit_code == 1 and "at most 40 characters" in out.stderr and list(tmp_path.iterdir()) == []


# ── adding an app to a repository that has ship.yaml ─────────────────────────────────────────


def _project_clone(tmp_path, monkeypatch):
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    copy_project(work)
    commit_all(work, "hellok8s")
    monkeypatch.chdir(work)
    return work, repo


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_init_adds_an_app_and_keeps_the_other_app_and_environments_byte_for_byte(tmp_path, monkeypatch):
    work, repo = _project_clone(tmp_path, monkeypatch)
    before_cfg = config.load(work, environ={})
    old_text, old_app = (work / "ship.yaml").read_text(), _files(work / "apps/hellok8s")
    out = ship("init", "shop", "--port", "9000")
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[:2] == ["wrote ship.yaml", "wrote apps/shop/base/kustomization.yaml"]
    assert "deploy/rbac" not in out.stdout and ".github" not in out.stdout
    new_text = (work / "ship.yaml").read_text()
    block = new_text[new_text.index("\n  shop:\n") + 1:new_text.index("\n\nenvironments:\n") + 1]
    assert all(line.startswith("    ") for line in block.splitlines()[1:])
    # one block added at the end of `apps:`, not a byte of the rest changed
    assert new_text == old_text.replace("\n\nenvironments:\n", "\n" + block + "\nenvironments:\n", 1)
    assert _files(work / "apps/hellok8s") == old_app
    cfg = config.load(work, environ={})
    assert list(cfg.apps) == ["hellok8s", "shop"] and cfg.apps["hellok8s"] == before_cfg.apps["hellok8s"]
    assert cfg.environments == before_cfg.environments
    assert cfg.app("shop").path.as_posix() == "apps/shop" and cfg.app("shop").image == "shop"
    assert sorted(p.name for p in (work / "apps/shop/config").iterdir()) == ["dev.env", "prod.env", "uat.env"]


def test_the_gitignore_init_writes_keeps_the_tree_clean_after_a_build(tmp_path, monkeypatch):
    work, repo = _project_clone(tmp_path, monkeypatch)
    assert ship("init", "shop").exit_code == 0
    assert (work / "apps/shop/.gitignore").read_text().splitlines()[-1] == "bin/"
    commit_all(work, "ship init shop")
    for binary in ("apps/shop/bin/shop", "apps/hellok8s/bin/hellok8s"):
        (work / binary).parent.mkdir(parents=True, exist_ok=True)
        (work / binary).write_bytes(b"\x7fELF built")
    assert repo.git.status("--porcelain", "--untracked-files=all") == ""
    # hellok8s's own folder ignores its binary (not only the repository's top-level .gitignore)
    assert repo.git.check_ignore("-v", "apps/hellok8s/bin/hellok8s").startswith("apps/hellok8s/.gitignore:")


def test_init_refuses_an_app_ship_yaml_has_and_writes_nothing(tmp_path, monkeypatch):
    work, repo = _project_clone(tmp_path, monkeypatch)
    out = ship("init", "hellok8s")
    assert out.exit_code == 1
    assert out.stderr.strip() == "ConfigError: app 'hellok8s' is already in ship.yaml; nothing written"
    assert repo.git.status("--porcelain", "--untracked-files=all") == ""
    out = ship("init", "shop", "--path", "apps/hellok8s")
    assert out.exit_code == 1 and "app 'hellok8s' is built from it already; nothing written" in out.stderr
    assert repo.git.status("--porcelain", "--untracked-files=all") == ""


ENTRY = "  shop:\n    path: apps/shop\n    image: shop  # repository\n"


@pytest.mark.parametrize("text, expected", [
    ("registry: r\n\n# the apps\napps:\n  a:\n    path: a\n    image: a\n\n# where they go\nenvironments: {}\n",
     "registry: r\n\n# the apps\napps:\n  a:\n    path: a\n    image: a\n  shop:\n    path: apps/shop\n"
     "    image: shop  # repository\n\n# where they go\nenvironments: {}\n"),
    ("apps:\n    a:\n        path: a\n# b was here\n    c:\n        path: c",
     "apps:\n    a:\n        path: a\n# b was here\n    c:\n        path: c\n    shop:\n        path: apps/shop\n"
     "        image: shop  # repository\n"),
    ("apps: {}  # none yet\nenvironments: {}\n", "apps: # none yet\n" + ENTRY + "environments: {}\n"),
])
def test_with_app_adds_the_entry_at_the_end_of_apps_and_keeps_every_other_line(text, expected):
    assert scaffold.with_app(text, ENTRY) == expected


def test_with_app_refuses_apps_written_inline():
    with pytest.raises(ConfigError, match="written inline"):
        scaffold.with_app("apps: {a: {path: a, image: a}}\n", ENTRY)


def test_init_with_a_chart_writes_values_files_and_no_kustomize_base(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    out = ship("init", "podinfo", "--chart", "charts/podinfo")
    assert out.exit_code == 1 and out.stderr.strip() == ("ConfigError: charts/podinfo: no Chart.yaml (--chart names "
                                                         "no Helm chart); nothing written")
    assert list(tmp_path.iterdir()) == []
    shutil.copytree(Path(__file__).parents[1] / "examples/podinfo/charts/podinfo", tmp_path / "charts/podinfo")
    out = ship("init", "podinfo", "--chart", "charts/podinfo")
    assert out.exit_code == 0, out.output
    for name in ("apps/podinfo/values.yaml", "apps/podinfo/values/dev.yaml", "apps/podinfo/values/prod.yaml"):
        assert f"wrote {name}" in out.stdout
    assert "apps/podinfo/base" not in out.stdout and "apps/podinfo/config" not in out.stdout
    app_cfg = config.load(tmp_path, environ={}).app("podinfo")
    assert app_cfg.chart == config.ChartSource(path=Path("charts/podinfo")) and app_cfg.image == "podinfo"


def test_init_with_a_remote_chart_pins_its_version(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    out = ship("init", "podinfo", "--chart", "oci://ghcr.io/stefanprodan/charts/podinfo")
    assert out.exit_code == 1 and out.stderr.strip() == (
        "ConfigError: --chart 'oci://ghcr.io/stefanprodan/charts/podinfo': expected oci://HOST/PATH/NAME:VERSION; "
        "nothing written")
    assert list(tmp_path.iterdir()) == []
    out = ship("init", "podinfo", "--chart", "oci://ghcr.io/stefanprodan/charts/podinfo:6.9.2")
    assert out.exit_code == 0, out.output
    assert "wrote apps/podinfo/values.yaml" in out.stdout
    chart = config.load(tmp_path, environ={}).app("podinfo").chart
    assert (chart.repo, chart.version) == ("oci://ghcr.io/stefanprodan/charts/podinfo", "6.9.2")
    assert chart.path == Path(".ship/charts/podinfo-6.9.2/podinfo")
