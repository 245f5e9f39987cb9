"""`chart:` and `values:` on an app in ship.yaml, and the kustomization that renders the chart."""

import subprocess
from pathlib import Path

import pytest

from pipeline import config
from pipeline.errors import ConfigError
from pipeline import yamlsafe
from pipeline.gitops.chart import chart_files, merge_values
from pipeline.gitops.git import GitRepo
from pipeline.gitops.workspace import Workspace

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


def test_a_release_of_an_app_from_a_chart_is_refused_plainly_until_it_is_wired(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    app = chart_app(tmp_path, {})
    with pytest.raises(ConfigError, match=r"^apps.podinfo.chart: releasing an app from a Helm chart is not supported yet"):
        Workspace(tmp_path, GitRepo(tmp_path)).base_of(app, config.Environment(name="dev", namespace="podinfo-dev"))
