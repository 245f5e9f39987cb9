"""`chart:` and `values:` on an app in ship.yaml, and the kustomization that renders the chart."""

from pathlib import Path

import pytest

from pipeline import config, yamlsafe
from pipeline.errors import ConfigError
from pipeline.gitops.chart import (
    chart_files,
    digest_of,
    folder_of,
    image_name,
    merge_values,
    wiring,
)

APP = """\
registry: 127.0.0.1:5000
apps:
  podinfo:
    path: apps/podinfo
    image: podinfo
{extra}
environments:
  dev:
    namespace: podinfo-dev
"""


def parse(extra: str):
    text = APP.format(extra="\n".join(f"    {line}" for line in extra.splitlines()))
    return config.parse(yamlsafe.loads(text, "ship.yaml"), Path("/repo"), "ship.yaml", {})


def test_chart_and_values_load():
    app = parse("chart: {path: examples/podinfo/charts/podinfo}\nvalues: helm/values").app("podinfo")
    assert app.chart == config.ChartSource(path=Path("examples/podinfo/charts/podinfo"))
    assert app.chart.name == "podinfo"
    assert app.values_files("dev") == (Path("apps/podinfo/helm/values.yaml"), Path("apps/podinfo/helm/values/dev.yaml"))


def test_an_app_without_a_chart_keeps_its_kustomize_base():
    app = parse("base: k8s").app("podinfo")
    assert (app.chart, app.base) == (None, "k8s")


@pytest.mark.parametrize("extra, error", [
    ("chart: {path: ../podinfo}", r"ship.yaml:6: apps.podinfo.chart.path: expected "),
    ("chart: {path: /charts/podinfo}", r"apps.podinfo.chart.path: expected "),
    ("chart: {paht: charts/podinfo}", r"apps.podinfo.chart.paht: unknown key \(did you mean 'path'\?\)"),
    ("chart: {}", r"apps.podinfo.chart.path: missing required field"),
    ("chart: charts/podinfo", r"apps.podinfo.chart: expected a mapping, got a string"),
    ("chart: {path: charts/podinfo}\nbase: base", r"ship.yaml:7: apps.podinfo.base: an app from a chart has no kustomize base"),
    ("values: values", r"ship.yaml:6: apps.podinfo.values: values are the inputs of a chart"),
    ("chart: {path: charts/podinfo}\nvalues: ../v", r"ship.yaml:7: apps.podinfo.values: expected "),
])
def test_chart_errors_name_file_line_and_key(extra, error):
    with pytest.raises(ConfigError, match=error):
        parse(extra)


def chart_app(tmp_path: Path, files: dict[str, str]) -> config.App:
    for name, text in {"charts/podinfo/Chart.yaml": "name: podinfo\n", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return config.App(name="podinfo", path=Path("apps/podinfo"), image="podinfo",
                      chart=config.ChartSource(path=Path("charts/podinfo")))


def test_the_kustomization_names_the_chart_and_the_values_of_the_environment(tmp_path):
    app = chart_app(tmp_path, {"apps/podinfo/values.yaml": "ui: {message: all, color: blue}\nreplicaCount: 1\n",
                               "apps/podinfo/values/prod.yaml": "ui: {message: prod}\nreplicaCount: 3\n"})
    folder = tmp_path / "environments/prod/podinfo"
    got = chart_files(app, "prod", "podinfo-prod", folder, tmp_path)
    assert got["kustomization.yaml"]["helmGlobals"] == {"chartHome": "../../../charts"}
    assert got["kustomization.yaml"]["helmCharts"] == [{"name": "podinfo", "releaseName": "podinfo",
                                                        "namespace": "podinfo-prod", "includeCRDs": True,
                                                        "valuesFile": "values.yaml"}]
    assert got["values.yaml"] == {"ui": {"message": "prod", "color": "blue"}, "replicaCount": 3}


def test_values_files_that_do_not_exist_are_left_out(tmp_path):
    app = chart_app(tmp_path, {"apps/podinfo/values/dev.yaml": "a: 1\n"})
    assert chart_files(app, "dev", "podinfo-dev", tmp_path / "out", tmp_path)["values.yaml"] == {"a": 1}
    assert chart_files(app, "prod", "podinfo-prod", tmp_path / "out", tmp_path)["values.yaml"] == {}


@pytest.mark.parametrize("text, error", [
    ("a: [1, 2\n", r"^apps/podinfo/values/dev.yaml:"),
    ("- a\n", r"^apps/podinfo/values/dev.yaml: chart values must be a mapping$"),
])
def test_values_that_do_not_parse_name_the_file(tmp_path, text, error):
    app = chart_app(tmp_path, {"apps/podinfo/values/dev.yaml": text})
    with pytest.raises(ConfigError, match=error):
        chart_files(app, "dev", "podinfo-dev", tmp_path / "out", tmp_path)


def test_values_merge_as_helm_merges_them():
    base = {"ui": {"message": "a", "color": "blue"}, "faults": {"error": False}, "ports": [1, 2], "gone": 1}
    over = {"ui": {"message": "b"}, "ports": [3], "gone": None, "new": {"x": 1}}
    assert merge_values(base, over) == {"ui": {"message": "b", "color": "blue"}, "faults": {"error": False},
                                        "ports": [3], "new": {"x": 1}}
    assert base["ui"] == {"message": "a", "color": "blue"}  # inputs untouched


def test_a_chart_path_without_chart_yaml_is_refused(tmp_path):
    app = config.App(name="podinfo", path=Path("apps/podinfo"), image="podinfo",
                     chart=config.ChartSource(path=Path("charts/nothing")))
    with pytest.raises(ConfigError, match=r"^charts/nothing: no Chart.yaml \(apps.podinfo.chart.path names no Helm chart\)$"):
        chart_files(app, "dev", "podinfo-dev", tmp_path / "out", tmp_path)


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "podinfo"},
              "spec": {"template": {"spec": {"containers": [
                  {"name": "redis", "image": "public.ecr.aws/docker/library/redis:7.0.7"},
                  {"name": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.9.2",
                   "envFrom": [{"secretRef": {"name": "theirs"}}]}]}}}}


def test_wiring_renames_the_apps_image_and_adds_its_config_to_the_containers_that_run_it():
    app = config.App(name="podinfo", path=Path("apps/podinfo"), image="podinfo", secrets=("TOKEN",),
                     chart=config.ChartSource(path=Path("charts/podinfo")))
    wired = wiring(app, [DEPLOYMENT, {"kind": "Service", "metadata": {"name": "podinfo"}}], "charts/podinfo")
    assert wired["images"] == [{"name": "ghcr.io/stefanprodan/podinfo", "newName": "podinfo"}]
    assert wired["patches"] == [{
        "target": {"group": "apps", "version": "v1", "kind": "Deployment", "name": "podinfo"},
        "patch": yamlsafe.dumps([
            {"op": "add", "path": "/spec/template/spec/containers/1/envFrom/-",
             "value": {"configMapRef": {"name": "podinfo-config"}}},
            {"op": "add", "path": "/spec/template/spec/containers/1/envFrom/-",
             "value": {"secretRef": {"name": "podinfo-secrets"}}}])}]


def test_a_chart_with_no_container_running_the_apps_image_is_refused():
    app = config.App(name="shop", path=Path("apps/shop"), image="shop", chart=config.ChartSource(path=Path("charts/x")))
    with pytest.raises(ConfigError, match=r"^charts/x: no Deployment, StatefulSet or DaemonSet of the chart runs "
                       r"an image named shop \(apps.shop.image\)"):
        wiring(app, [DEPLOYMENT], "charts/x")


@pytest.mark.parametrize("image, name", [("ghcr.io/a/b:1.2", "ghcr.io/a/b"), ("localhost:5000/b", "localhost:5000/b"),
                                         (f"b:1@sha256:{'a' * 64}", "b"), ("b", "b")])
def test_image_name_drops_tag_and_digest(image, name):
    assert image_name(image) == name


def test_a_chart_base_folder_carries_its_version_and_digest():
    assert folder_of("podinfo-6.9.2", "sha256:" + "0123456789ab" * 5 + "cdef") == "charts/podinfo-6.9.2-0123456789ab"
    assert digest_of({"a": "1", "b": "2"}) == digest_of({"b": "2", "a": "1"}) != digest_of({"a": "1", "b": "3"})
