"""Remote Helm charts, pinned like images: `chart: {repo: oci://HOST/PATH/NAME, version: V}`.

    PATH/NAME:V ─► manifest ─► its chart layer (the .tgz `helm push` uploaded) ─► blob, hash checked
               ─► unpacked into the repository's chart cache, .ship/charts/NAME-V/NAME

The chart archive's sha256 is the layer's digest (what `helm pull` prints as Digest); a release
records `oci://HOST/PATH/NAME:V@sha256:…` (ChartRef) and `ship verify` asks the registry again
whether version V still is that archive. The registry is spoken to as for images (registry.py),
with the same credentials (credentials.py, auth.py). Unpacking never writes outside the cache
folder: the archive is checked entry by entry (only files and folders, under NAME/).
"""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.config.model import ChartSource
from pipeline.errors import RegistryError
from pipeline.image.registry import Registry

CHART_CONFIG = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
DIGEST_FILE = ".digest"  # beside the unpacked chart in its cache folder: the archive it came from
_PINNED = re.compile(
    r"^(?P<repo>(?:oci|https?)://\S+?):(?P<version>[^:@/\s]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class ChartRef:
    """A pinned chart: `oci://HOST/PATH/NAME:VERSION@sha256:…` (the archive's digest); for a
    chart of an https repository, `https://HOST/PATH/NAME:VERSION@sha256:…` (its index is
    `https://HOST/PATH/index.yaml`)."""

    repo: str  # oci://HOST/PATH/NAME or https://HOST/PATH/NAME
    version: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repo}:{self.version}@{self.digest}"

    @classmethod
    def parse(cls, text: str) -> ChartRef:
        match = _PINNED.match(text)
        if not match:
            raise RegistryError(
                f"{text!r} is not a pinned chart (oci|https://HOST/PATH/NAME:VERSION@sha256:…)"
            )
        return cls(match["repo"], match["version"], match["digest"])

    @property
    def host(self) -> str:
        return self.repo.split("://", 1)[1].split("/", 1)[0]

    @property
    def oci(self) -> bool:
        return self.repo.startswith("oci://")


def oci_parts(repo: str) -> tuple[str, str]:
    """`oci://HOST/PATH/NAME` -> (HOST, PATH/NAME)."""
    host, _, path = repo.removeprefix("oci://").partition("/")
    return host, path


def tag_of(version: str) -> str:
    return version.replace("+", "_")  # OCI tags have no '+': helm push writes it as '_'


def chart_layer(manifest: dict, where: str) -> str:
    """The digest of the chart archive in a Helm chart's OCI manifest."""
    if (manifest.get("config") or {}).get("mediaType") != CHART_CONFIG:
        raise RegistryError(f"{where} is not a Helm chart (its config is not {CHART_CONFIG})")
    layers = [
        layer for layer in manifest.get("layers") or [] if layer.get("mediaType") == CHART_LAYER
    ]
    if len(layers) != 1:
        raise RegistryError(
            f"{where}: expected one chart archive layer ({CHART_LAYER}), found {len(layers)}"
        )
    return str(layers[0]["digest"])


def resolve(registry: Registry, repo: str, version: str) -> ChartRef:
    """Which archive `repo` version `version` is in the registry now."""
    _, path = oci_parts(repo)
    found = registry.manifest(path, tag_of(version))
    if found is None:
        raise RegistryError(f"{repo}:{version}: no such chart version in the registry")
    return ChartRef(repo, version, chart_layer(found[1], f"{repo}:{version}"))


def pull(registry: Registry, repo: str, version: str) -> tuple[ChartRef, bytes]:
    """The pinned reference and the archive of `repo` version `version`, its hash checked."""
    ref = resolve(registry, repo, version)
    return ref, registry.blob(oci_parts(repo)[1], ref.digest)


def unpack(archive: bytes, dest: Path, name: str, where: str) -> None:
    """Unpack a chart archive (NAME/… inside) into `dest`/NAME, refusing any other entry."""
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                parts = Path(member.name).parts
                if (
                    not parts
                    or parts[0] != name
                    or ".." in parts
                    or Path(member.name).is_absolute()
                    or not (member.isfile() or member.isdir())
                ):
                    raise RegistryError(
                        f"{where}: the chart archive holds "
                        f"{member.name!r}, outside {name}/ or not a file"
                    )
            tar.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"{where}: the chart archive does not unpack: {exc}") from exc
    if not (staging / name / "Chart.yaml").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"{where}: the chart archive has no {name}/Chart.yaml")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


class Archives(Protocol):
    """Where chart archives come from: an OCI registry (OciCharts) or an https repository's
    index.yaml (chartrepo.IndexCharts)."""

    def resolve(self, repo: str, version: str) -> ChartRef: ...

    def archive(self, ref: ChartRef) -> bytes: ...  # its sha256 checked against ref.digest


@dataclass(frozen=True)
class OciCharts:
    """Charts in an OCI registry, as `helm push` stores them."""

    registry: Registry

    def resolve(self, repo: str, version: str) -> ChartRef:
        return resolve(self.registry, repo, version)

    def archive(self, ref: ChartRef) -> bytes:
        return self.registry.blob(oci_parts(ref.repo)[1], ref.digest)


def fetch(found: Archives, source: ChartSource, root: Path) -> ChartRef:
    """Make `source`'s chart present, unpacked, at root/source.path, from `found`
    (chartrepo.archives_for); pulled again only when the cache holds no archive or another one
    than its source now serves for that version."""
    assert source.repo is not None and source.version is not None
    where = f"{source.repo}:{source.version}"
    folder = root / source.path.parent  # .ship/charts/NAME-VERSION
    ref = found.resolve(source.repo, source.version)
    stamp = folder / DIGEST_FILE
    if (
        stamp.is_file()
        and stamp.read_text().strip() == ref.digest
        and (root / source.path / "Chart.yaml").is_file()
    ):
        return ref
    folder.parent.mkdir(parents=True, exist_ok=True)
    # .ship/.gitignore: a cache git never sees
    ignore = root / source.path.parents[2] / ".gitignore"
    if not ignore.is_file():
        ignore.write_text("# ship's cache of remote charts (image/charts.py): never committed\n*\n")
    unpack(found.archive(ref), folder, source.path.name, where)
    stamp.write_text(ref.digest + "\n")
    return ref
