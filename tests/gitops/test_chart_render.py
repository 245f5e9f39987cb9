"""podinfo's own chart (examples/podinfo, unmodified) rendered per environment through the real
kustomize and helm (`make binaries`), with the image pinned by kustomize `images:` over it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline import yamlsafe
from pipeline.config import App, ChartSource
from pipeline.errors import RenderError
from pipeline.gitops.chart import chart_files
from pipeline.gitops.render import helm_command, render

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
VALUES = {
    "values.yaml": "ui: {message: from every environment}\n",
    "values/dev.yaml": "replicaCount: 1\n",
    "values/prod.yaml": "replicaCount: 3\nui: {message: hello from prod}\nfaults: {error: true}\n",
}

pytestmark = pytest.mark.binaries


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    if helm_command() is None:
        pytest.fail("helm is not installed: run `make binaries`", pytrace=False)
    monkeypatch.setenv("SHIP_RENDER_CACHE", "off")
    shutil.copytree(ROOT / "examples/podinfo/charts/podinfo", tmp_path / "charts/podinfo")
    for name, text in VALUES.items():
        (tmp_path / "apps/podinfo" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "apps/podinfo" / name).write_text(text)
    return tmp_path


APP = App(name="podinfo", path=Path("apps/podinfo"), image="podinfo", chart=ChartSource(path=Path("charts/podinfo")))


def rendered(repo: Path, env: str) -> dict[str, dict]:
    """ENV's overlay as ship lays it out: the chart's kustomization as a base, `images:` over it."""
    base, overlay = repo / "environments" / env / "podinfo-chart", repo / "environments" / env
    base.mkdir(parents=True)
    for name, content in chart_files(APP, env, f"podinfo-{env}", base, repo).items():
        (base / name).write_text(yamlsafe.dumps(content))
    (overlay / "kustomization.yaml").write_text(yamlsafe.dumps({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["podinfo-chart"],
        "images": [{"name": "ghcr.io/stefanprodan/podinfo", "newName": "127.0.0.1:5000/podinfo", "digest": DIGEST}]}))
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in render(overlay)}


def container(objects: dict[str, dict]) -> dict:
    return objects["Deployment/podinfo"]["spec"]["template"]["spec"]["containers"][0]


def test_values_per_environment_reach_the_chart_output(repo):
    dev, prod = rendered(repo, "dev"), rendered(repo, "prod")
    assert {"Deployment/podinfo", "Service/podinfo"} <= dev.keys()
    assert dev["Deployment/podinfo"]["spec"]["replicas"] == 1 and prod["Deployment/podinfo"]["spec"]["replicas"] == 3
    message = {e["name"]: e.get("value") for e in container(dev)["env"]}["PODINFO_UI_MESSAGE"]
    assert message == "from every environment"
    assert {e["name"]: e.get("value") for e in container(prod)["env"]}["PODINFO_UI_MESSAGE"] == "hello from prod"
    assert "--random-error=true" in container(prod)["command"] and "--random-error=false" in container(dev)["command"]
    assert prod["Deployment/podinfo"]["metadata"]["namespace"] == "podinfo-prod"


def test_the_image_is_pinned_over_what_the_chart_values_say(repo):
    assert container(rendered(repo, "dev"))["image"] == f"127.0.0.1:5000/podinfo@{DIGEST}"


def test_a_template_error_names_the_folder(repo):
    (repo / "apps/podinfo/values/dev.yaml").write_text("ui: not-a-mapping\n")
    with pytest.raises(RenderError, match=r"environments/dev: kustomize cannot render it: helm: template: "
                       r"podinfo/templates/deployment.yaml:\d+:\d+: .*can't evaluate field message"):
        rendered(repo, "dev")


def test_the_chart_in_the_repository_is_podinfos_unmodified():
    chart = (ROOT / "examples/podinfo/charts/podinfo/Chart.yaml").read_text()
    assert "name: podinfo" in chart and "version: 6.9.2" in chart
    assert (ROOT / "examples/podinfo/LICENSE").read_text().lstrip().startswith("Apache License")
