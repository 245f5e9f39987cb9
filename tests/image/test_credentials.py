"""Where ship finds registry credentials: env, docker config auths, helpers, GITHUB_TOKEN. Fast:
files in tmp_path and a real `docker-credential-…` script on PATH speaking docker's protocol."""

import base64
import json
import os
import stat

import pytest

from pipeline.errors import RegistryError
from pipeline.image.credentials import Credential, Credentials, canonical_host

SECRET = "s3cr3t-value"


def config(tmp_path, body: dict) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(body))
    return {"DOCKER_CONFIG": str(tmp_path)}


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def helper(tmp_path, name: str, body: str) -> str:
    """A docker-credential-NAME script on a PATH of its own; returns that PATH."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / f"docker-credential-{name}"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{folder}:{os.environ['PATH']}"


@pytest.mark.parametrize("key,host", [("https://ghcr.io", "ghcr.io"), ("https://index.docker.io/v1/", "docker.io"),
                                      ("registry.example.com:5000", "registry.example.com:5000"), ("GHCR.IO/", "ghcr.io")])
def test_canonical_host(key, host):
    assert canonical_host(key) == host


def test_env_variables_win_for_ships_own_registry_only(tmp_path):
    env = {**config(tmp_path, {"auths": {"ghcr.io": {"auth": auth("cfg", "cfgpass")}}}),
           "SHIP_REGISTRY_USERNAME": "ci", "SHIP_REGISTRY_PASSWORD": SECRET}
    creds = Credentials("ghcr.io", env)
    assert creds.lookup("ghcr.io").credential == Credential("$SHIP_REGISTRY_USERNAME/SHIP_REGISTRY_PASSWORD", "ci", SECRET)
    assert creds.lookup("quay.io").credential is None  # never sent to another host
    assert creds.lookup("quay.io").describe() == f"no credentials (looked in {tmp_path}/config.json)"


def test_half_set_env_variables_are_an_error(tmp_path):
    with pytest.raises(RegistryError, match="set both SHIP_REGISTRY_USERNAME and SHIP_REGISTRY_PASSWORD"):
        Credentials("ghcr.io", {"SHIP_REGISTRY_USERNAME": "ci"}).lookup("ghcr.io")


def test_docker_config_auth_and_identitytoken(tmp_path):
    env = config(tmp_path, {"auths": {"https://ghcr.io": {"auth": auth("ann", SECRET)},
                                      "registry.example.com": {"identitytoken": "rt.ann.1"}}})
    creds = Credentials("ghcr.io", env)
    assert creds.lookup("ghcr.io").credential == Credential(f"{tmp_path}/config.json", "ann", SECRET)
    token = creds.lookup("registry.example.com").credential
    assert token is not None and token.identity_token == "rt.ann.1"
    assert token.auth_config() == {"identitytoken": "rt.ann.1"}


def test_secrets_never_in_repr_or_messages(tmp_path):
    found = Credentials("ghcr.io", config(tmp_path, {"auths": {"ghcr.io": {"auth": auth("ann", SECRET)}}})).lookup("ghcr.io")
    assert SECRET not in repr(found) and SECRET not in found.describe()


def test_credential_helper_protocol(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", helper(tmp_path, "lab", 'read server; printf \'{"ServerURL":"%s","Username":"bot","Secret":"%s"}\' '
                                                       f'"$server" "{SECRET}-for-$server"'))
    env = config(tmp_path, {"credHelpers": {"123.dkr.ecr.eu-west-1.amazonaws.com": "lab"}})
    found = Credentials("x", env).lookup("123.dkr.ecr.eu-west-1.amazonaws.com")
    assert found.credential is not None
    assert (found.credential.username, found.credential.password) == ("bot", f"{SECRET}-for-123.dkr.ecr.eu-west-1.amazonaws.com")
    assert found.describe() == f"credentials from docker-credential-lab (credHelpers in {tmp_path}/config.json)"


def test_creds_store_and_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", helper(tmp_path, "store", 'echo "credentials not found in native keychain"; exit 1'))
    env = config(tmp_path, {"auths": {"ghcr.io": {}}, "credsStore": "store"})
    assert Credentials("ghcr.io", env).lookup("ghcr.io").credential is None


def test_helper_missing_or_failing_is_one_line(tmp_path, monkeypatch):
    env = config(tmp_path, {"credsStore": "nowhere-xyz"})
    with pytest.raises(RegistryError, match="docker-credential-nowhere-xyz, which is not on PATH"):
        Credentials("ghcr.io", env).lookup("ghcr.io")
    monkeypatch.setenv("PATH", helper(tmp_path, "broken", f'echo "{SECRET}"; exit 3'))
    env = config(tmp_path, {"credsStore": "broken"})
    with pytest.raises(RegistryError) as err:
        Credentials("ghcr.io", env).lookup("ghcr.io")
    assert "failed (exit 3)" in str(err.value) and SECRET not in str(err.value)


def test_github_token_for_ghcr_only_when_nothing_else(tmp_path):
    env = {"DOCKER_CONFIG": str(tmp_path), "GITHUB_TOKEN": SECRET, "GITHUB_ACTOR": "octocat"}
    found = Credentials("ghcr.io/acme", env).lookup("ghcr.io")
    assert found.credential == Credential("$GITHUB_TOKEN", "octocat", SECRET)
    assert Credentials("ghcr.io", env).lookup("quay.io").credential is None


def test_bad_docker_config_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RegistryError, match="config.json: not a readable docker config"):
        Credentials("ghcr.io", {"DOCKER_CONFIG": str(tmp_path)}).lookup("ghcr.io")
