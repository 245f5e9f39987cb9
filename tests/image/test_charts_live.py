"""Remote charts against the lab's private registry (TLS from the lab's CA, token auth): podinfo's
chart, packaged and pushed by the real `helm`, is resolved, pulled with ship's registry client and
credentials, checked against the archive's sha256 and unpacked as helm packaged it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from pipeline.config.model import ChartSource, remote_chart_path
from pipeline.errors import RegistryError
from pipeline.gitops.render import helm_command
from pipeline.image import charts
from pipeline.image.credentials import Credential, Lookup
from pipeline.image.registry import Access, Registry
from tests.conftest import ROOT
from tests.image.test_private_registry_live import login, private  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.registry, pytest.mark.binaries]


def helm(tmp_path: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "HELM_REGISTRY_CONFIG": str(tmp_path / "helm-registry.json"),
           "HELM_CACHE_HOME": str(tmp_path / "helm-cache"), "HELM_CONFIG_HOME": str(tmp_path / "helm-config")}
    proc = subprocess.run([str(helm_command()), *args], capture_output=True, text=True, env=env, input=stdin, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def pushed(private, tmp_path_factory):  # noqa: F811
    """podinfo's chart pushed with helm to oci://PRIVATE/team-X/charts: (repo, archive bytes)."""
    tmp = tmp_path_factory.mktemp("helm")
    host, ca = private["SHIP_PRIVATE_REGISTRY"], private["SHIP_PRIVATE_REGISTRY_CA"]
    helm(tmp, "package", str(ROOT / "examples/podinfo/charts/podinfo"), "-d", str(tmp))
    helm(tmp, "registry", "login", host, "-u", private["SHIP_PRIVATE_REGISTRY_USERNAME"], "--password-stdin",
         "--ca-file", ca, stdin=private["SHIP_PRIVATE_REGISTRY_PASSWORD"])
    where = f"oci://{host}/team-{uuid.uuid4().hex[:6]}/charts"
    helm(tmp, "push", str(tmp / "podinfo-6.9.2.tgz"), where, "--ca-file", ca)
    return f"{where}/podinfo", (tmp / "podinfo-6.9.2.tgz").read_bytes()


def registry(private, lookup=None) -> Registry:  # noqa: F811
    return Registry(private["SHIP_PRIVATE_REGISTRY"], lookup=lookup or (lambda: login(private)),
                    access=Access(ca_file=private["SHIP_PRIVATE_REGISTRY_CA"]))


def test_a_pushed_chart_is_pulled_pinned_to_its_archive_and_unpacked(private, pushed, tmp_path):  # noqa: F811
    repo, archive = pushed
    reg = registry(private)
    try:
        source = ChartSource(path=remote_chart_path(repo, "6.9.2"), repo=repo, version="6.9.2")
        ref = charts.fetch(charts.OciCharts(reg), source, tmp_path)
        assert ref.digest == "sha256:" + hashlib.sha256(archive).hexdigest()  # the .tgz helm packaged
        assert str(ref) == f"{repo}:6.9.2@{ref.digest}"
        chart = tmp_path / source.path
        original = ROOT / "examples/podinfo/charts/podinfo"
        # helm package rewrites Chart.yaml (its own order, the deprecated `engine` dropped); templates stay as they are
        packaged, ours = (yaml.safe_load((d / "Chart.yaml").read_text()) for d in (chart, original))
        assert packaged == {k: v for k, v in ours.items() if k != "engine"}
        assert (chart / "templates/deployment.yaml").read_text() == (original / "templates/deployment.yaml").read_text()
        assert (tmp_path / ".ship/.gitignore").read_text().endswith("*\n")
        assert charts.fetch(charts.OciCharts(reg), source, tmp_path) == ref  # the cache holds that archive: not pulled again
        assert charts.resolve(reg, repo, "6.9.2") == ref  # what `ship verify` asks again
        with pytest.raises(RegistryError, match=rf"^{repo}:9.9.9: no such chart version in the registry$"):
            charts.resolve(reg, repo, "9.9.9")
    finally:
        reg.close()


def test_a_wrong_password_is_one_line_naming_the_registry(private, pushed):  # noqa: F811
    repo, _ = pushed
    wrong = Lookup(private["SHIP_PRIVATE_REGISTRY"], Credential("test", "ship", "not-the-password"), ())
    reg = registry(private, lambda: wrong)
    try:
        with pytest.raises(RegistryError) as caught:
            charts.resolve(reg, repo, "6.9.2")
        assert private["SHIP_PRIVATE_REGISTRY"] in str(caught.value) and "\n" not in str(caught.value)
    finally:
        reg.close()


def test_a_release_pins_the_remote_chart_and_verify_rechecks_it(private, pushed, tmp_path):  # noqa: F811
    """An app from a chart in the private registry: its release (rendered by the real kustomize and
    helm, on the in-memory cluster) records the archive pinned; verify passes, and fails once
    another archive is pushed over the same version."""
    import git

    from pipeline import config
    from pipeline.commands import deploy, inspect
    from pipeline.context import Context
    from pipeline.gitops.git import GitRepo
    from pipeline.gitops.workspace import Workspace
    from tests.fakes import FakeCluster, FakeRegistry, FakeSigner

    repo_url, archive = pushed
    digest = "sha256:" + "d" * 64
    image = f"127.0.0.1:15000/podinfo:1111111@{digest}"
    files = {"ship.yaml": f"registry: 127.0.0.1:15000\napps:\n  podinfo:\n    path: apps/podinfo\n    image: podinfo\n"
                          f"    chart: {{repo: '{repo_url}', version: 6.9.2}}\n"
                          "environments:\n  dev: {namespace: pi-dev, gates: {timeout: 5s}}\n",
             "apps/podinfo/values.yaml": "ui: {message: hello}\n", "environments/dev/.gitkeep": ""}
    work = tmp_path / "work"
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    clone = git.Repo.init(work, initial_branch="main")
    clone.git.add("--all")
    clone.git.commit("-m", "podinfo from a remote chart", "--author", "t <t@e>")
    images = FakeRegistry({("podinfo", "1111111"): digest}, revision=clone.head.commit.hexsha)
    charts_registry = registry(private)
    cfg = config.load(work, environ={})
    ctx = Context(cfg, Workspace(cfg.root, GitRepo(cfg.root)), connect=lambda _env: FakeCluster(),
                  open_registry=lambda host: charts_registry if host == private["SHIP_PRIVATE_REGISTRY"] else images,
                  open_signer=FakeSigner, progress=lambda _line: None)
    try:
        rel = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(image,))).release
        pinned = f"{repo_url}:6.9.2@sha256:{hashlib.sha256(archive).hexdigest()}"
        assert (rel.chart, rel.chart_source) == ("podinfo-6.9.2", pinned)
        assert clone.git.status("--porcelain") == ""  # the chart cache is not in git
        assert f"Ship-Chart-Source: {pinned}" in clone.git.log("--format=%B", "-3")  # the release commit's trailer
        checked = inspect.verify(ctx, "dev")
        assert checked.failure is None and f"ok  {pinned}" in checked.text().splitlines()

        # someone pushes another archive over 6.9.2: verify says so, as for a moved image tag
        changed = tmp_path / "changed"
        changed.mkdir()
        helm(changed, "create", str(changed / "podinfo"))
        chart_yaml = changed / "podinfo/Chart.yaml"
        chart_yaml.write_text(chart_yaml.read_text().replace("version: 0.1.0", "version: 6.9.2"))
        helm(changed, "package", str(changed / "podinfo"), "-d", str(changed))
        helm(changed, "registry", "login", private["SHIP_PRIVATE_REGISTRY"], "-u", private["SHIP_PRIVATE_REGISTRY_USERNAME"],
             "--password-stdin", "--ca-file", private["SHIP_PRIVATE_REGISTRY_CA"], stdin=private["SHIP_PRIVATE_REGISTRY_PASSWORD"])
        helm(changed, "push", str(changed / "podinfo-6.9.2.tgz"), repo_url.rsplit("/", 1)[0],
             "--ca-file", private["SHIP_PRIVATE_REGISTRY_CA"])
        moved = inspect.verify(ctx, "dev")
        assert str(moved.failure).startswith(f"dev: {pinned}: version 6.9.2 now is archive sha256:"), moved.text()
    finally:
        ctx.close()
        charts_registry.close()


@pytest.fixture
def chart_repository(tmp_path):
    """An https-style chart repository on loopback: podinfo's chart packaged and indexed by the
    real helm (`helm repo index`), served by a plain HTTP server: its URL."""
    import functools
    import http.server
    import threading

    served = tmp_path / "repo"
    served.mkdir()
    helm(tmp_path, "package", str(ROOT / "examples/podinfo/charts/podinfo"), "-d", str(served))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served)))
    url = f"http://127.0.0.1:{server.server_address[1]}/charts"
    (served / "charts").mkdir()
    (served / "podinfo-6.9.2.tgz").rename(served / "charts/podinfo-6.9.2.tgz")
    helm(tmp_path, "repo", "index", str(served / "charts"), "--url", url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url, served / "charts"
    server.shutdown()


def test_a_chart_of_an_https_repository_is_pinned_by_its_index_sha256(chart_repository, tmp_path):
    import httpx

    from pipeline import config, yamlsafe
    from pipeline.image import chartrepo

    url, folder = chart_repository
    cfg = config.parse(yamlsafe.loads(
        f"registry: 127.0.0.1:15000\napps:\n  podinfo:\n    path: apps/podinfo\n    image: podinfo\n"
        f"    chart: {{repo: '{url}', name: podinfo, version: 6.9.2}}\nenvironments:\n  dev: {{namespace: pi-dev}}\n",
        "ship.yaml"), tmp_path, "ship.yaml", {})
    source = cfg.app("podinfo").chart
    archive = (folder / "podinfo-6.9.2.tgz").read_bytes()
    with httpx.Client() as client:
        archives = chartrepo.archives_for(source.repo, lambda _host: None, lambda: client)
        ref = charts.fetch(archives, source, tmp_path)
        assert str(ref) == f"{url}/podinfo:6.9.2@sha256:{hashlib.sha256(archive).hexdigest()}"
        assert (tmp_path / source.path / "templates/deployment.yaml").read_text() == \
            (ROOT / "examples/podinfo/charts/podinfo/templates/deployment.yaml").read_text()
        # the archive replaced behind the index's back: refused, naming the version and the sha256
        (folder / "podinfo-6.9.2.tgz").write_bytes(archive + b"\0")
        with pytest.raises(RegistryError, match=rf"^{url}/podinfo:6.9.2: .*does not hash to {ref.digest} "):
            archives.archive(ref)
        with pytest.raises(RegistryError, match="no such chart version in the repository's index.yaml"):
            archives.resolve(source.repo, "9.9.9")
