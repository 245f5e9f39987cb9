"""An app from a Helm chart (podinfo's own chart, unmodified) through the deploy flows: release,
values-only change, chart bump, rollback, promotion with a canary, on the in-memory cluster and a
temporary git repository, rendered by the real kustomize and helm (`make binaries`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import git
import pytest
import yaml

from pipeline import config
from pipeline.commands import deploy, inspect
from pipeline.context import Context
from pipeline.errors import ConfigError, RenderError
from pipeline.gitops.changed import changed_apps
from pipeline.gitops.git import GitRepo
from pipeline.gitops.render import helm_command
from pipeline.gitops.workspace import Workspace
from tests.fakes import FakeCluster, FakeRegistry, FakeSigner

pytestmark = pytest.mark.binaries

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "d" * 64
IMAGE = f"127.0.0.1:15000/podinfo:1111111@{DIGEST}"
SHIP_YAML = """registry: 127.0.0.1:15000
apps:
  podinfo:
    path: apps/podinfo
    image: podinfo
    chart: {path: charts/podinfo}
    keep_configs: 3
environments:
  dev: {namespace: pi-dev, gates: {timeout: 5s}}
  uat: {namespace: pi-uat, promotes_from: dev, gates: {timeout: 5s}}
  prod:
    namespace: pi-prod
    promotes_from: uat
    gates: {timeout: 5s}
    canary: {router: gateway, host: "{app}.example.com", interval: 1s, steps: [{weight: 10, bake: 0s}]}
"""


@pytest.fixture
def flow(tmp_path):
    if helm_command() is None:
        pytest.fail("helm is not installed: run `make binaries`", pytrace=False)
    shutil.copytree(ROOT / "examples/podinfo/charts/podinfo", tmp_path / "charts/podinfo")
    write(tmp_path, "apps/podinfo/values.yaml", "ui: {message: hello}\n")
    write(tmp_path, "apps/podinfo/values/dev.yaml", "replicaCount: 1\n")
    write(tmp_path, "ship.yaml", SHIP_YAML)
    for env in ("dev", "uat", "prod"):
        write(tmp_path, f"environments/{env}/.gitkeep", "")
    repo = git.Repo.init(tmp_path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "ship-test")
        cw.set_value("user", "email", "ship-test@example.com")
    repo.git.add("--all")
    repo.git.commit("-m", "initial")
    cluster, lines = FakeCluster(), []
    registry = FakeRegistry({("podinfo", "1111111"): DIGEST}, revision=repo.head.commit.hexsha)
    cfg = config.load(tmp_path, environ={})
    ctx = Context(cfg, Workspace(cfg.root, GitRepo(cfg.root)), connect=lambda _env: cluster,
                  open_registry=lambda _host: registry, open_signer=FakeSigner, progress=lines.append)
    yield ctx, cluster
    ctx.close()


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def change(ctx, rel: str, text: str) -> None:
    write(ctx.config.root, rel, text)
    ctx.workspace.git.repo.git.add("--all")
    ctx.workspace.git.repo.git.commit("-qm", f"change {rel}")


def container(cluster, ns: str, name: str = "podinfo") -> dict:
    return cluster.deployment(ns, name)["spec"]["template"]["spec"]["containers"][0]


def message(cluster, ns: str) -> str:
    return {e["name"]: e.get("value") for e in container(cluster, ns).get("env", [])}["PODINFO_UI_MESSAGE"]


def test_a_chart_release_pins_the_image_wires_the_config_and_writes_the_chart_base(flow):
    ctx, cluster = flow
    result = deploy.release(ctx, "dev", None, image=IMAGE)
    assert result.gate is not None and result.gate.passed
    rel = result.release
    assert rel.chart == "podinfo-6.9.2" and rel.chart_digest.startswith("sha256:")
    c = container(cluster, "pi-dev")
    assert c["image"] == IMAGE  # the chart says ghcr.io/stefanprodan/podinfo:6.9.2
    assert {"configMapRef": {"name": rel.config}} in c["envFrom"]
    assert cluster.get("v1", "ConfigMap", rel.config, "pi-dev")["immutable"] is True
    labels = cluster.deployment("pi-dev", "podinfo")["metadata"]["labels"]
    assert labels["ship.dev/app"] == "podinfo" and labels["ship.dev/environment"] == "dev"
    slot = ctx.config.root / "environments/dev/podinfo"
    folder = f"charts/podinfo-6.9.2-{rel.chart_digest[7:19]}"
    assert (slot / folder / "podinfo/templates/deployment.yaml").read_text() == \
        (ROOT / "examples/podinfo/charts/podinfo/templates/deployment.yaml").read_text()
    assert yaml.safe_load((slot / "kustomization.yaml").read_text())["resources"][0] == folder
    assert yaml.safe_load((slot / "release.yaml").read_text())["chart"] == "podinfo-6.9.2"
    assert inspect.diff(ctx, "dev").exit_code == 0  # the chart's output, applied, is what git says
    assert inspect.verify(ctx, "dev").to_json()["ok"]  # the chart's one image, pinned, still resolves


def test_values_and_chart_changes_are_new_releases_and_rollback_returns_to_the_chart_and_values(flow):
    ctx, cluster = flow
    first = deploy.release(ctx, "dev", None, image=IMAGE).release
    assert message(cluster, "pi-dev") == "hello"
    change(ctx, "apps/podinfo/values/dev.yaml", "replicaCount: 1\nui: {message: values only}\n")
    second = deploy.release(ctx, "dev", None, image=IMAGE).release
    assert second.id != first.id and second.chart_digest != first.chart_digest
    assert message(cluster, "pi-dev") == "values only"
    chart = ctx.config.root / "charts/podinfo/Chart.yaml"
    change(ctx, "charts/podinfo/Chart.yaml", chart.read_text().replace("version: 6.9.2", "version: 6.9.3"))
    apps = list(ctx.config.apps.values())
    assert [a.name for a in changed_apps(ctx.config, ctx.workspace.git, apps)] == ["podinfo"]  # a chart is a base
    bump = ctx.workspace.git.head().sha
    third = deploy.release(ctx, "dev", None, image=IMAGE).release
    assert third.chart == "podinfo-6.9.3" and third.id not in (first.id, second.id)
    assert third.commit == bump and changed_apps(ctx.config, ctx.workspace.git, apps) == []
    assert cluster.deployment("pi-dev", "podinfo")["metadata"]["labels"]["helm.sh/chart"] == "podinfo-6.9.3"
    back = deploy.rollback(ctx, "dev", None, second.id, "test")
    assert back.target.id == second.id
    assert cluster.deployment("pi-dev", "podinfo")["metadata"]["labels"]["helm.sh/chart"] == "podinfo-6.9.2"
    assert message(cluster, "pi-dev") == "values only"
    history = inspect.history(ctx, "dev").text()
    assert "CHART" in history.splitlines()[0] and "podinfo-6.9.3" in history and "podinfo-6.9.2" in history
    kept = sorted(p.name for p in (ctx.config.root / "environments/dev/podinfo/charts").iterdir())
    assert len(kept) == 3


def test_promotion_takes_each_environments_values_and_the_canary_renders_its_own_chart_base(flow):
    ctx, cluster = flow
    change(ctx, "apps/podinfo/values/prod.yaml", "replicaCount: 2\nui: {message: prod}\n")
    deploy.release(ctx, "dev", None, image=IMAGE)
    deploy.promote(ctx, "dev", "uat")
    assert message(cluster, "pi-uat") == "hello"
    first = deploy.promote(ctx, "uat", "prod")  # the first prod release: no stable to run a canary beside
    assert message(cluster, "pi-prod") == "prod"
    change(ctx, "apps/podinfo/values/prod.yaml", "replicaCount: 2\nui: {message: prod two}\n")
    deploy.release(ctx, "dev", None, image=IMAGE)
    deploy.promote(ctx, "dev", "uat")
    deploy.promote(ctx, "uat", "prod")
    assert message(cluster, "pi-prod") == "prod two"
    assert cluster.deployment("pi-prod", "podinfo-canary") is None
    slot = ctx.config.root / "environments/prod/podinfo"
    assert not (slot / "canary").exists() and first is not None


def test_bad_chart_inputs_are_one_line_naming_the_file_and_write_nothing(flow):
    ctx, _ = flow
    head = ctx.workspace.git.head().sha
    change(ctx, "apps/podinfo/values/dev.yaml", "replicaCount: [1\n")
    with pytest.raises(ConfigError, match=r"^apps/podinfo/values/dev.yaml:"):
        deploy.release(ctx, "dev", None, image=IMAGE)
    change(ctx, "apps/podinfo/values/dev.yaml", "ui: not-a-mapping\n")
    with pytest.raises(RenderError, match=r"^charts/podinfo \(values for dev: .*\): kustomize cannot render it: "
                       r"helm: template: podinfo/templates/deployment.yaml"):
        deploy.release(ctx, "dev", None, image=IMAGE)
    shutil.rmtree(ctx.config.root / "charts/podinfo")
    ctx.workspace.git.repo.git.commit("-qam", "chart gone")
    with pytest.raises(ConfigError, match=r"^charts/podinfo: no Chart.yaml"):
        deploy.release(ctx, "dev", None, image=IMAGE)
    assert ctx.workspace.git.repo.git.log(f"{head}..HEAD", "--format=%s").count("release") == 0
    assert not (ctx.config.root / "environments/dev/podinfo").exists()


def test_preview_shows_a_values_change_and_a_chart_bump_for_the_next_release(flow):
    from pipeline.report.preview.gather import gather
    from pipeline.report.preview.markdown import markdown

    ctx, _ = flow
    write(ctx.config.root, "apps/podinfo/values/dev.yaml", "replicaCount: 2\nfaults: {error: true}\n")
    chart = ctx.config.root / "charts/podinfo/Chart.yaml"
    chart.write_text(chart.read_text().replace("version: 6.9.2", "version: 6.9.3"))
    preview = gather(ctx.config, "main")
    dev = next(e for e in preview.environments if e.environment == "dev")
    assert dev.next_release["podinfo"] == (("chart", "podinfo-6.9.2", "podinfo-6.9.3"),
                                           ("values.faults.error", "", "true"), ("values.replicaCount", "1", "2"))
    uat = next(e for e in preview.environments if e.environment == "uat")
    assert uat.next_release["podinfo"] == (("chart", "podinfo-6.9.2", "podinfo-6.9.3"),)
    assert "values.faults.error" in markdown(preview)


def test_promotion_carries_the_chart_its_source_runs_not_a_newer_one_in_the_tree(flow):
    ctx, cluster = flow
    released = deploy.release(ctx, "dev", None, image=IMAGE).release
    chart = ctx.config.root / "charts/podinfo/Chart.yaml"
    change(ctx, "charts/podinfo/Chart.yaml", chart.read_text().replace("version: 6.9.2", "version: 6.9.3"))
    rel = deploy.promote(ctx, "dev", "uat").release  # one app: a ReleaseResult
    assert rel.id == released.id and rel.chart == "podinfo-6.9.2"
    assert cluster.deployment("pi-uat", "podinfo")["metadata"]["labels"]["helm.sh/chart"] == "podinfo-6.9.2"
    assert message(cluster, "pi-uat") == "hello"
