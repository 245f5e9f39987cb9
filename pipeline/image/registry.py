"""Talks to an OCI/Docker registry over HTTP(S): resolves a tag to the digest of its manifest.

The digest is computed here from the manifest bytes; the registry's Docker-Content-Digest
header is only a hint, and a disagreement is an error. A registry that is briefly down, rate
limits (429) or fails (5xx) is asked again as pipeline/retry.py decides. Every request goes
through the auth handshake (auth.py) with the credential credentials.py finds.

HTTPS with verified certificates everywhere: a private CA comes from `ca_file` (ship.yaml) or
$SSL_CERT_FILE. Plain HTTP only for a registry on loopback that does not speak TLS, or one marked
insecure (ship.yaml, $SHIP_INSECURE_REGISTRIES), which is also spoken to over unverified TLS, with
a warning. Read-only: never pushes or deletes.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from pipeline import retry
from pipeline.config import ShipConfig
from pipeline.errors import RegistryError
from pipeline.image.auth import RegistryAuth, refused, repository_of
from pipeline.image.credentials import Credentials, Lookup
from pipeline.imageref import ImageRef
from pipeline.progress import Progress, quiet

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
DOCKER_HUB_API = "registry-1.docker.io"  # images say docker.io; its registry API answers here
TIMEOUT = 30.0  # seconds per request; a slower answer is retried like a lost one


def is_loopback(host: str) -> bool:
    return (
        host.rsplit(":", 1)[0] in LOOPBACK if not host.startswith("[") else host.startswith("[::1]")
    )


@dataclass(frozen=True)
class Access:
    """How ship reaches one registry host over the network."""

    insecure: bool = False  # plain HTTP, or TLS without verification: only where the user said so
    # a private CA (PEM) trusted beside the system's; $SSL_CERT_FILE works too
    ca_file: str | None = None

    def verify(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = httpx.create_ssl_context()  # the system's CAs, or $SSL_CERT_FILE
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError(
                    f"ca_file {self.ca_file}: not a readable PEM certificate "
                    f"({exc.__class__.__name__})"
                ) from None
        return context


# comma-separated hosts spoken to without TLS verification
INSECURE_VARIABLE = "SHIP_INSECURE_REGISTRIES"


def access_for(cfg: ShipConfig, host: str, environ: Mapping[str, str] | None = None) -> Access:
    """HOST's Access: ship.yaml's `registry:` options for ship's own registry (a relative
    `ca_file` from the repository root), and $SHIP_INSECURE_REGISTRIES for any host."""
    env = os.environ if environ is None else environ
    listed = {h.strip() for h in env.get(INSECURE_VARIABLE, "").split(",") if h.strip()}
    own = host == cfg.registry_host
    ca_file = cfg.registry_options.ca_file if own else None
    if ca_file and not os.path.isabs(ca_file):
        ca_file = str(cfg.root / ca_file)
    return Access(
        insecure=host in listed or (own and cfg.registry_options.insecure), ca_file=ca_file
    )


def _untrusted(exc: BaseException) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
        exc.__context__ or exc.__cause__, ssl.SSLCertVerificationError
    )


class Registry:
    """A registry host, over HTTPS (HTTP only on loopback or when marked insecure), authenticated
    with the credential `lookup` gives (anonymous by default)."""

    def __init__(
        self,
        host: str,
        *,
        transport: httpx.BaseTransport | None = None,
        retry_policy: retry.RetryPolicy | None = None,
        progress: Progress = quiet,
        lookup: Callable[[], Lookup] | None = None,
        access: Access = Access(),
    ):
        """`transport`: where requests go instead of the network (httpx.MockTransport in unit
        tests)."""
        self.host = host
        self.retry = retry_policy if retry_policy is not None else retry.policy_from_env()
        self.progress = progress
        self.access = access
        self.lookup = lookup or (lambda: Credentials(host).lookup(host))
        self._auth = RegistryAuth(host, self.lookup)
        self._http = httpx.Client(
            transport=transport, timeout=TIMEOUT, verify=access.verify(), auth=self._auth
        )
        self._base: str | None = None
        if access.insecure:
            progress(f"warning: registry {host} is marked insecure: plain HTTP or unverified TLS")

    def close(self) -> None:
        self._http.close()

    @property
    def base(self) -> str:
        """https://HOST, or http://HOST for a loopback or insecure registry that does not speak TLS
        (asked once: GET /v2/ over HTTPS). An untrusted certificate is an error, never a reason for
        HTTP."""
        if self._base is None:
            if self.host in ("docker.io", "index.docker.io"):
                self._base = f"https://{DOCKER_HUB_API}"
                return self._base
            plain_ok = self.access.insecure or is_loopback(self.host)
            try:
                # the scheme only: no handshake
                self._http.get(f"https://{self.host}/v2/", auth=None)
                self._base = f"https://{self.host}"
            except httpx.ConnectError as exc:
                if _untrusted(exc):
                    raise RegistryError(
                        f"registry {self.host}: its TLS certificate is "
                        "not trusted; give its CA with `ca_file:` under "
                        "`registry:` in ship.yaml or $SSL_CERT_FILE (or mark it insecure)"
                    ) from None
                if not plain_ok:
                    return f"https://{self.host}"  # unreachable: the request itself reports it
                refused_outright = "refused" in str(exc).lower()
                if refused_outright:
                    return f"http://{self.host}"  # down: decide when it answers
                self._base = f"http://{self.host}"
            except httpx.HTTPError:
                return f"https://{self.host}" if not plain_ok else f"http://{self.host}"
        return self._base

    def _refused(self, status: int, url: str) -> RegistryError:
        what = (
            ": it refused the token its token service gave (expired?)"
            if self._auth.token_refused
            else ""
        )
        return refused(self.host, status, repository_of(url), self.lookup(), what)

    def manifest_digest(self, path: str, reference: str) -> str | None:
        """sha256 of the manifest `path:reference` as the registry serves it; None when absent."""
        url = f"/v2/{path}/manifests/{reference}"

        def attempt() -> httpx.Response | httpx.HTTPError:
            try:
                return self._http.get(
                    self.base + url, headers={"Accept": ", ".join(MANIFEST_TYPES)}
                )
            except httpx.HTTPError as exc:
                return exc

        def told(outcome: retry.Outcome, attempts: int, wait: float) -> None:
            self.progress(
                f"registry {self.host}: GET {url}: {outcome.describe()}; retrying in {wait:.1f}s "
                f"(attempt {attempts + 1})"
            )

        resp, sent = retry.send(
            attempt, retry.http_failure, self.retry, is_idempotent=True, on_retry=told
        )
        if isinstance(resp, httpx.HTTPError):
            raise RegistryError(f"registry {self.host} unreachable{sent.note()}: {resp}") from resp
        if resp.status_code == 404:
            return None
        if resp.status_code in (401, 403):
            raise self._refused(resp.status_code, url)
        if resp.status_code != 200:
            raise RegistryError(
                f"registry {self.host}: GET {url} answered {resp.status_code}{sent.note()}: "
                f"{resp.text[:200]}"
            )
        digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
        hint = resp.headers.get("Docker-Content-Digest")
        if hint and hint != digest:
            raise RegistryError(
                f"registry {self.host}: {path}:{reference} manifest "
                f"hashes to {digest} but the registry says {hint}"
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
            resp = self._http.get(
                self.base + url, headers={"Accept": accept}, follow_redirects=True
            )
            if resp.status_code in (401, 403):
                raise self._refused(resp.status_code, url)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host}: GET {url}: {exc}") from exc
        if (
            not digest.startswith("sha256:")
            or "sha256:" + hashlib.sha256(resp.content).hexdigest() != digest
        ):
            raise RegistryError(
                f"registry {self.host}: GET {url}: the content does not hash to {digest}"
            )
        try:
            return dict(resp.json())
        except ValueError as exc:
            raise RegistryError(f"registry {self.host}: GET {url}: not JSON: {exc}") from exc

    def manifest(self, path: str, reference: str) -> tuple[str, dict] | None:
        """The manifest `path:reference` and its digest (computed here); None when absent."""
        digest = self.manifest_digest(path, reference)
        if digest is None:
            return None
        return digest, self._json(
            f"/v2/{path}/manifests/{digest}", ", ".join(MANIFEST_TYPES), digest
        )

    def blob(self, path: str, digest: str) -> bytes:
        """The blob `digest` of `path`, checked against its digest."""
        url = f"/v2/{path}/blobs/{digest}"
        try:
            resp = self._http.get(self.base + url, follow_redirects=True)
            if resp.status_code in (401, 403):
                raise self._refused(resp.status_code, url)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host}: GET {url}: {exc}") from exc
        if "sha256:" + hashlib.sha256(resp.content).hexdigest() != digest:
            raise RegistryError(
                f"registry {self.host}: GET {url}: the content does not hash to {digest}"
            )
        return resp.content

    def resolve(self, repository: str, tag: str) -> ImageRef | None:
        """The pinned reference of `repository:tag`, or None when the tag does not exist."""
        path = repository.split("/", 1)[1] if "/" in repository else repository
        digest = self.manifest_digest(path, tag)
        return ImageRef(repository, tag, digest) if digest else None
