"""Talks to an OCI/Docker registry over HTTP: resolves a tag to the digest of its manifest.

The digest is computed here from the manifest bytes; the registry's Docker-Content-Digest
header is only a hint, and a disagreement is an error. A registry that is briefly down, rate
limits (429) or fails (5xx) is asked again as pipeline/retry.py decides. Read-only: never
pushes or deletes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import httpx

from pipeline import retry
from pipeline.errors import RegistryError
from pipeline.progress import Progress, quiet

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_PINNED = re.compile(r"^(?P<repo>[^@\s]+?):(?P<tag>[\w][\w.-]{0,127})@(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class ImageRef:
    """A pinned image reference: `registry/repo:tag@sha256:<digest>`."""

    repository: str  # includes the registry host: 127.0.0.1:5000/hellok8s
    tag: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.repository.split("/", 1)[1]

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        match = _PINNED.match(text.strip())
        if not match:
            raise RegistryError(f"{text!r} is not a pinned image reference (repo:tag@sha256:<64 hex>)")
        if "/" not in match["repo"]:
            raise RegistryError(f"{text!r} names no registry host (expected host[:port]/repo:tag@sha256:<64 hex>)")
        return cls(match["repo"], match["tag"], match["digest"])


class Registry:
    """A registry reached over plain HTTP on loopback, or HTTPS elsewhere."""

    def __init__(self, host: str, transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 retry_policy: retry.RetryPolicy | None = None, progress: Progress = quiet):
        self.host = host
        self.retry = retry_policy if retry_policy is not None else retry.policy_from_env()
        self.progress = progress
        scheme = "http" if host.split(":")[0] in ("127.0.0.1", "localhost", "::1") else "https"
        self._http = httpx.Client(base_url=f"{scheme}://{host}", transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def manifest_digest(self, path: str, reference: str) -> str | None:
        """sha256 of the manifest `path:reference` as the registry serves it; None when absent."""
        url = f"/v2/{path}/manifests/{reference}"

        def attempt() -> httpx.Response | httpx.HTTPError:
            try:
                return self._http.get(url, headers={"Accept": ", ".join(MANIFEST_TYPES)})
            except httpx.HTTPError as exc:
                return exc

        def told(outcome: retry.Outcome, attempts: int, wait: float) -> None:
            self.progress(f"registry {self.host}: GET {url}: {outcome.describe()}; retrying in {wait:.1f}s "
                          f"(attempt {attempts + 1})")

        resp, sent = retry.send(attempt, retry.http_failure, self.retry, True, on_retry=told)
        if isinstance(resp, httpx.HTTPError):
            raise RegistryError(f"registry {self.host} unreachable{sent.note()}: {resp}") from resp
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RegistryError(f"registry {self.host}: GET {url} answered {resp.status_code}{sent.note()}: "
                                f"{resp.text[:200]}")
        digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
        hint = resp.headers.get("Docker-Content-Digest")
        if hint and hint != digest:
            raise RegistryError(
                f"registry {self.host}: {path}:{reference} manifest hashes to {digest} but the registry says {hint}"
            )
        return digest

    def labels(self, path: str, digest: str) -> dict[str, str]:
        """The image's config labels (e.g. org.opencontainers.image.revision); {} when it has none.
        Every document read here is checked against the digest it was asked for: a label is only
        as trustworthy as the digest that names it."""
        manifest = self._json(f"/v2/{path}/manifests/{digest}", ", ".join(MANIFEST_TYPES), digest)
        if manifest.get("manifests"):  # an index: the labels of its first image
            first = str(manifest["manifests"][0]["digest"])
            manifest = self._json(f"/v2/{path}/manifests/{first}", ", ".join(MANIFEST_TYPES), first)
        config_digest = (manifest.get("config") or {}).get("digest")
        if not config_digest:
            return {}
        config = self._json(f"/v2/{path}/blobs/{config_digest}", "*/*", str(config_digest))
        return dict((config.get("config") or {}).get("Labels") or {})

    def _json(self, url: str, accept: str, digest: str) -> dict:
        try:
            resp = self._http.get(url, headers={"Accept": accept}, follow_redirects=True)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host}: GET {url}: {exc}") from exc
        if not digest.startswith("sha256:") or "sha256:" + hashlib.sha256(resp.content).hexdigest() != digest:
            raise RegistryError(f"registry {self.host}: GET {url}: the content does not hash to {digest}")
        try:
            return dict(resp.json())
        except ValueError as exc:
            raise RegistryError(f"registry {self.host}: GET {url}: not JSON: {exc}") from exc

    def resolve(self, repository: str, tag: str) -> ImageRef | None:
        """The pinned reference of `repository:tag`, or None when the tag does not exist."""
        path = repository.split("/", 1)[1]
        digest = self.manifest_digest(path, tag)
        return ImageRef(repository, tag, digest) if digest else None
