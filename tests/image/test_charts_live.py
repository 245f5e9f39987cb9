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
from pipeline.image import charts
from pipeline.image.credentials import Credential, Lookup
from pipeline.image.registry import Access, Registry
from pipeline.gitops.render import helm_command
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
        ref = charts.fetch(reg, source, tmp_path)
        assert ref.digest == "sha256:" + hashlib.sha256(archive).hexdigest()  # the .tgz helm packaged
        assert str(ref) == f"{repo}:6.9.2@{ref.digest}"
        chart = tmp_path / source.path
        original = ROOT / "examples/podinfo/charts/podinfo"
        # helm package rewrites Chart.yaml (its own order, the deprecated `engine` dropped); templates stay as they are
        packaged, ours = (yaml.safe_load((d / "Chart.yaml").read_text()) for d in (chart, original))
        assert packaged == {k: v for k, v in ours.items() if k != "engine"}
        assert (chart / "templates/deployment.yaml").read_text() == (original / "templates/deployment.yaml").read_text()
        assert (tmp_path / ".ship/.gitignore").read_text().endswith("*\n")
        assert charts.fetch(reg, source, tmp_path) == ref  # the cache holds that archive: not pulled again
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
