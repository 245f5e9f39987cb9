"""Charts from an https chart repository (Helm's classic kind): its index.yaml names each
version's archive and the archive's sha256.

    https://HOST/PATH/index.yaml ─► entries[NAME], the VERSION ─► urls[0], digest
                                 ─► the archive, its sha256 checked against the index's

A chart of such a repository is addressed like an OCI one, `https://HOST/PATH/NAME`, so a
release pins it the same way (charts.ChartRef). Anonymous: ship sends no credentials to a chart
repository. HTTPS only, except a repository on loopback (the lab's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline import yamlsafe
from pipeline.errors import RegistryError
from pipeline.image.charts import Archives, ChartRef, OciCharts, oci_parts
from pipeline.image.registry import Registry, is_loopback


def split(repo: str) -> tuple[str, str]:
    """`https://HOST/PATH/NAME` -> (the repository's URL `https://HOST/PATH`, NAME)."""
    base, _, name = repo.rstrip("/").rpartition("/")
    return base, name


def index_entry(index: Any, name: str, version: str, where: str) -> tuple[str, str]:
    """(the archive's URL as the index gives it, `sha256:…`) of NAME at VERSION. Pure."""
    entries = (index.get("entries") or {}) if isinstance(index, dict) else {}
    for entry in entries.get(name) or []:
        if isinstance(entry, dict) and str(entry.get("version")) == version:
            urls, digest = entry.get("urls") or [], str(entry.get("digest") or "")
            if not urls or len(digest) != 64:
                raise RegistryError(
                    f"{where}: the repository's index gives no archive URL or sha256 for it"
                )
            return str(urls[0]), f"sha256:{digest}"
    raise RegistryError(f"{where}: no such chart version in the repository's index.yaml")


@dataclass(frozen=True)
class IndexCharts:
    """Charts of https repositories, through `http` (the context's client)."""

    http: httpx.Client

    def _get(self, url: str, where: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and is_loopback(parts.hostname or "")
        ):
            raise RegistryError(f"{where}: {url}: a chart repository is read over https")
        try:
            resp = self.http.get(url, follow_redirects=True, timeout=60.0)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{where}: GET {url}: {exc}") from exc
        if resp.status_code != 200:
            raise RegistryError(f"{where}: GET {url} answered {resp.status_code}")
        return resp.content

    def _located(self, repo: str, version: str) -> tuple[ChartRef, str]:
        base, name = split(repo)
        where = f"{repo}:{version}"
        index = yamlsafe.loads(
            self._get(f"{base}/index.yaml", where).decode(), f"{base}/index.yaml"
        )
        url, digest = index_entry(index, name, version, where)
        return ChartRef(repo, version, digest), urljoin(f"{base}/", url)

    def resolve(self, repo: str, version: str) -> ChartRef:
        return self._located(repo, version)[0]

    def archive(self, ref: ChartRef) -> bytes:
        _, url = self._located(ref.repo, ref.version)
        data = self._get(url, f"{ref.repo}:{ref.version}")
        if "sha256:" + hashlib.sha256(data).hexdigest() != ref.digest:
            raise RegistryError(
                f"{ref.repo}:{ref.version}: {url} does not "
                f"hash to {ref.digest} (the index's sha256)"
            )
        return data


def archives_for(
    repo: str, registry: Callable[[str], Registry], http: Callable[[], httpx.Client]
) -> Archives:
    """Where `repo`'s archives come from: its OCI registry (with the registry's credentials), or
    its https repository."""
    if repo.startswith("oci://"):
        return OciCharts(registry(oci_parts(repo)[0]))
    return IndexCharts(http())
