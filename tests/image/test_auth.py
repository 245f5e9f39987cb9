"""The registry auth handshake and TLS choices, fast: WWW-Authenticate parsing is pure, and the flow
runs against an in-process registry (httpx.MockTransport) that pins the exact requests. The same
flow against the lab's real token-auth and Basic registries: tests/image/test_private_registry_live.py."""

import base64
import hashlib
from pathlib import Path

import httpx
import pytest

from pipeline import config, yamlsafe
from pipeline.errors import ConfigError, RegistryError
from pipeline.image.auth import Challenge, parse_challenge, repository_of
from pipeline.image.credentials import Credential, Lookup
from pipeline.image.registry import Registry, access_for
from pipeline.names import split_registry
from pipeline.retry import RetryPolicy

MANIFEST = b'{"schemaVersion":2}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
SECRET = "pa55-word"
REALM = "https://auth.example.com/token"


def test_parse_bearer_challenge():
    header = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/shop:pull"'
    assert parse_challenge(header) == Challenge("bearer", "https://ghcr.io/token", "ghcr.io", "repository:acme/shop:pull")
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge("basic", "Registry Realm")
    assert parse_challenge('bearer realm=https://x/t,service=x') == Challenge("bearer", "https://x/t", "x")
    assert parse_challenge("Negotiate abc") is None and parse_challenge("") is None


def test_repository_of():
    assert repository_of("/v2/acme/shop/manifests/1") == "acme/shop"
    assert repository_of("/v2/a/blobs/sha256:1") == "a"
    assert repository_of("/v2/") == ""


@pytest.mark.parametrize("value,split", [("ghcr.io/acme", ("ghcr.io", "acme")), ("127.0.0.1:15000", ("127.0.0.1:15000", "")),
                                         ("registry.example.com:5000/team/sub", ("registry.example.com:5000", "team/sub"))])
def test_split_registry(value, split):
    assert split_registry(value) == split


@pytest.mark.parametrize("value", ["https://ghcr.io/acme", "GHCR.io", "ghcr.io/Acme", "host:port/x"])
def test_split_registry_refuses(value):
    with pytest.raises(ValueError):
        split_registry(value)


REST = "apps: {shop: {path: shop, image: shop}}\nenvironments: {dev: {namespace: shop-dev}}\n"


def parse(registry: str, root: Path, environ: dict | None = None):
    return config.parse(yamlsafe.loads(f"registry: {registry}\n{REST}", "ship.yaml"), root, "ship.yaml", environ or {})


def test_registry_with_a_path_in_ship_yaml(tmp_path):
    cfg = parse("ghcr.io/acme", tmp_path)
    assert (cfg.registry_host, cfg.repository(cfg.app("shop"))) == ("ghcr.io", "ghcr.io/acme/shop")
    with pytest.raises(ConfigError, match=r"^ship.yaml:1: registry: expected host\[:port\]\[/path\] without a scheme"):
        parse("https://ghcr.io/acme", tmp_path)
    with pytest.raises(ConfigError, match=r"^\$SHIP_REGISTRY: expected host\[:port\]\[/path\], a lowercase host"):
        parse("ghcr.io/acme", tmp_path, {"SHIP_REGISTRY": "GHCR.io"})


def test_registry_mapping_and_insecure_variable(tmp_path):
    cfg = parse("{url: 'reg.corp:5000/team', ca_file: certs/ca.pem}", tmp_path)
    assert access_for(cfg, "reg.corp:5000", {}).ca_file == str(tmp_path / "certs/ca.pem")
    assert access_for(cfg, "other:5000", {"SHIP_INSECURE_REGISTRIES": "other:5000"}).insecure
    assert not access_for(cfg, "reg.corp:5000", {}).insecure


class FakeRegistry:
    """A token-auth registry and its token service in one handler, recording what it was sent."""

    def __init__(self, basic: bool = False, expires_in: int = 300):
        self.basic, self.expires_in = basic, expires_in
        self.seen: list[tuple[str, str, str]] = []  # (method, url, Authorization)
        self.tokens_issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url), request.headers.get("Authorization", "")))
        good = "Basic " + base64.b64encode(f"ann:{SECRET}".encode()).decode()
        if request.url.host == "auth.example.com":
            if request.headers.get("Authorization") not in (None, good):
                return httpx.Response(401)
            self.tokens_issued += 1
            return httpx.Response(200, json={"access_token": f"tok{self.tokens_issued}", "expires_in": self.expires_in})
        wanted = good if self.basic else f"Bearer tok{self.tokens_issued}"
        if self.tokens_issued == 0 and not self.basic or request.headers.get("Authorization") != wanted:
            challenge = ('Basic realm="r"' if self.basic else
                         f'Bearer realm="{REALM}",service="reg",scope="repository:acme/shop:pull"')
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, content=MANIFEST)


def registry(fake: FakeRegistry, credential: Credential | None) -> Registry:
    lookup = Lookup("reg.example.com", credential, ("$SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD",))
    return Registry("reg.example.com", transport=httpx.MockTransport(fake), lookup=lambda: lookup,
                    retry_policy=RetryPolicy(total=0))


ANN = Credential("~/.docker/config.json", "ann", SECRET)


def test_bearer_handshake_then_token_reused():
    fake = FakeRegistry()
    reg = registry(fake, ANN)
    assert reg.manifest_digest("acme/shop", "1") == DIGEST
    token_get = fake.seen[2]
    assert token_get[1] == f"{REALM}?service=reg&scope=repository%3Aacme%2Fshop%3Apull" and token_get[2].startswith("Basic ")
    assert fake.seen[3][2] == "Bearer tok1"
    fake.seen.clear()
    assert reg.manifest_digest("acme/shop", "2") == DIGEST
    assert [s[2] for s in fake.seen] == ["Bearer tok1"]  # sent ahead: no second handshake


def test_expired_token_is_fetched_again():
    clock = [0.0]
    fake = FakeRegistry(expires_in=30)
    reg = registry(fake, ANN)
    reg._auth._clock = lambda: clock[0]
    reg.manifest_digest("acme/shop", "1")
    clock[0] = 60.0
    reg.manifest_digest("acme/shop", "1")
    assert fake.tokens_issued == 2


def test_basic_challenge():
    fake = FakeRegistry(basic=True)
    assert registry(fake, ANN).manifest_digest("acme/shop", "1") == DIGEST
    assert fake.seen[-1][2].startswith("Basic ")


def test_wrong_password_is_one_line_without_the_secret():
    fake = FakeRegistry()
    with pytest.raises(RegistryError) as err:
        registry(fake, Credential("~/.docker/config.json", "ann", "wrong-" + SECRET)).manifest_digest("acme/shop", "1")
    assert str(err.value) == ("reg.example.com: 401 for repository acme/shop at its token service (credentials from "
                              "~/.docker/config.json; run docker login reg.example.com or set "
                              "SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD)")
    assert SECRET not in str(err.value)


def test_anonymous_token_request_has_no_authorization():
    fake = FakeRegistry()
    registry(fake, None).manifest_digest("acme/shop", "1")
    assert fake.seen[2][2] == ""


def test_loopback_falls_back_to_http_only_when_tls_is_not_spoken(tmp_path):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL] record layer failure")
        return httpx.Response(200, content=MANIFEST)

    assert Registry("127.0.0.1:5000", transport=httpx.MockTransport(handler)).base == "http://127.0.0.1:5000"

    def untrusted(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate")

    with pytest.raises(RegistryError, match="its TLS certificate is not trusted; give its CA with `ca_file:`"):
        _ = Registry("127.0.0.1:5000", transport=httpx.MockTransport(untrusted)).base
    remote = Registry("reg.example.com", transport=httpx.MockTransport(handler))
    assert remote.base == "https://reg.example.com"  # never plain HTTP off loopback unless marked insecure


def test_bad_ca_file_is_one_line(tmp_path: Path):
    (tmp_path / "ca.pem").write_text("not a certificate")
    from pipeline.image.registry import Access
    with pytest.raises(RegistryError, match="ca_file .*ca.pem: not a readable PEM certificate"):
        Access(ca_file=str(tmp_path / "ca.pem")).verify()


def test_docker_hub_images_are_resolved_at_its_api_host():
    assert Registry("docker.io").base == "https://registry-1.docker.io"
