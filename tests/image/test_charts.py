"""Remote charts, pure parts: `chart: {repo, version}` in ship.yaml, the pinned reference, the
chart layer of a Helm OCI manifest, and unpacking an archive only inside its folder."""

import io
import tarfile
from pathlib import Path

import pytest

from pipeline import config, yamlsafe
from pipeline.errors import ConfigError, RegistryError
from pipeline.image import chartrepo, charts
from pipeline.image.charts import ChartRef

APP = """\
registry: 127.0.0.1:5000
apps:
  podinfo:
    path: apps/podinfo
    image: podinfo
    chart: {chart}
environments:
  dev:
    namespace: podinfo-dev
"""
DIGEST = "sha256:" + "ab" * 32


def parse(chart: str):
    return config.parse(yamlsafe.loads(APP.format(chart=chart), "ship.yaml"), Path("/repo"), "ship.yaml", {})


def test_a_remote_chart_loads_with_its_cache_folder():
    source = parse("{repo: oci://127.0.0.1:5443/team/charts/podinfo, version: 6.9.2}").app("podinfo").chart
    assert (source.repo, source.version, source.remote) == ("oci://127.0.0.1:5443/team/charts/podinfo", "6.9.2", True)
    assert source.path == Path(".ship/charts/podinfo-6.9.2/podinfo") and source.name == "podinfo"


@pytest.mark.parametrize("chart, error", [
    ("{repo: https://charts.example.com/podinfo, version: 6.9.2}", r"apps.podinfo.chart.name: a chart of an https "),
    ("{repo: 'https://charts.example.com/a b', name: podinfo, version: 6.9.2}", r"chart.repo: .* is not https://HOST"),
    ("{repo: ftp://charts.example.com, name: podinfo, version: 6.9.2}", r"chart.repo: .* or an https repository"),
    ("{repo: oci://ghcr.io/team/podinfo, name: podinfo, version: 6.9.2}", r"apps.podinfo.chart.name: unknown key"),
    ("{repo: oci://ghcr.io/Team/podinfo, version: 6.9.2}", r"apps.podinfo.chart.repo: .* is not oci://"),
    ("{repo: oci://ghcr.io/team/podinfo}", r"apps.podinfo.chart.version: missing required field"),
    ("{repo: oci://ghcr.io/team/podinfo, version: 'v 1'}", r"apps.podinfo.chart.version: 'v 1' is not a chart version"),
    ("{repo: oci://ghcr.io/team/podinfo, version: 1.0.0, path: x}", r"apps.podinfo.chart.path: unknown key"),
])
def test_bad_remote_charts_name_the_key(chart, error):
    with pytest.raises(ConfigError, match=error):
        parse(chart)


def test_a_chart_of_an_https_repository_is_addressed_like_an_oci_one():
    source = parse("{repo: 'https://stefanprodan.github.io/podinfo/', name: podinfo, version: 6.9.2}").app("podinfo").chart
    assert (source.repo, source.version) == ("https://stefanprodan.github.io/podinfo/podinfo", "6.9.2")
    assert source.path == Path(".ship/charts/podinfo-6.9.2/podinfo")
    assert chartrepo.split(source.repo) == ("https://stefanprodan.github.io/podinfo", "podinfo")


INDEX = {"apiVersion": "v1", "entries": {"podinfo": [
    {"version": "6.9.3", "urls": ["podinfo-6.9.3.tgz"], "digest": "cd" * 32},
    {"version": "6.9.2", "urls": ["https://cdn.example.com/podinfo-6.9.2.tgz"], "digest": "ab" * 32}]}}


def test_the_index_names_each_versions_archive_and_sha256():
    assert chartrepo.index_entry(INDEX, "podinfo", "6.9.2", "x") == ("https://cdn.example.com/podinfo-6.9.2.tgz", DIGEST)
    assert chartrepo.index_entry(INDEX, "podinfo", "6.9.3", "x") == ("podinfo-6.9.3.tgz", "sha256:" + "cd" * 32)
    with pytest.raises(RegistryError, match="^x: no such chart version in the repository's index.yaml$"):
        chartrepo.index_entry(INDEX, "podinfo", "1.0.0", "x")
    with pytest.raises(RegistryError, match="no archive URL or sha256"):
        chartrepo.index_entry({"entries": {"podinfo": [{"version": "1.0.0", "urls": []}]}}, "podinfo", "1.0.0", "x")


def test_a_pinned_chart_reads_back():
    ref = ChartRef("oci://127.0.0.1:5443/team/charts/podinfo", "6.9.2", DIGEST)
    assert str(ref) == f"oci://127.0.0.1:5443/team/charts/podinfo:6.9.2@{DIGEST}"
    assert ChartRef.parse(str(ref)) == ref and ref.host == "127.0.0.1:5443" and ref.oci
    https = ChartRef("https://charts.example.com/podinfo", "6.9.2", DIGEST)
    assert ChartRef.parse(str(https)) == https and https.host == "charts.example.com" and not https.oci
    with pytest.raises(RegistryError, match="is not a pinned chart"):
        ChartRef.parse("oci://h/podinfo:6.9.2")
    assert charts.tag_of("1.0.0+build.1") == "1.0.0_build.1"


def test_the_chart_layer_of_a_helm_manifest():
    manifest = {"config": {"mediaType": charts.CHART_CONFIG},
                "layers": [{"mediaType": charts.CHART_LAYER, "digest": DIGEST}]}
    assert charts.chart_layer(manifest, "x") == DIGEST
    with pytest.raises(RegistryError, match="^x is not a Helm chart"):
        charts.chart_layer({"config": {"mediaType": "application/vnd.oci.image.config.v1+json"}}, "x")
    with pytest.raises(RegistryError, match="found 0"):
        charts.chart_layer({"config": {"mediaType": charts.CHART_CONFIG}, "layers": []}, "x")


def archive(entries: dict[str, bytes | None], symlink: str = "") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data or b""))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return out.getvalue()


def test_unpack_puts_the_chart_in_its_folder(tmp_path):
    dest = tmp_path / "podinfo-6.9.2"
    charts.unpack(archive({"podinfo/Chart.yaml": b"name: podinfo\n", "podinfo/templates/a.yaml": b"{}"}),
                  dest, "podinfo", "x")
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "podinfo/Chart.yaml", "podinfo/templates/a.yaml"]


@pytest.mark.parametrize("entries, symlink, error", [
    ({"podinfo/Chart.yaml": b"", "../evil": b""}, "", "holds '../evil'"),
    ({"podinfo/Chart.yaml": b"", "other/x": b""}, "", "holds 'other/x'"),
    ({"podinfo/Chart.yaml": b""}, "podinfo/link", "holds 'podinfo/link'"),
    ({"podinfo/values.yaml": b""}, "", "no podinfo/Chart.yaml"),
])
def test_unpack_refuses_anything_outside_the_chart(tmp_path, entries, symlink, error):
    with pytest.raises(RegistryError, match=f"^x: .*{error}"):
        charts.unpack(archive(entries, symlink), tmp_path / "c", "podinfo", "x")
    assert not (tmp_path / "c").exists() and not (tmp_path / "evil").exists()
