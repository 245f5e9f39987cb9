"""Where ship finds the credentials of a registry: one lookup for every part that talks to it.

The registry client's auth handshake (auth.py), the build engine's push (`auth_config`), cosign
(a docker config written for it) and the pull secrets a sync puts in each namespace all take
the credential found here, so one login serves them all. First found wins:

  1. $SHIP_REGISTRY_USERNAME / $SHIP_REGISTRY_PASSWORD, for ship's own registry (ship.yaml's
     `registry:` host) only, so they never travel to another host;
  2. the docker config ($DOCKER_CONFIG/config.json, else ~/.docker/config.json): a
     `credHelpers` entry for the host, its `auths` entry (`auth`, `identitytoken`), then
     `credsStore`; helpers speak docker's protocol (`docker-credential-NAME get`, the server on
     stdin, JSON on stdout);
  3. for ghcr.io, $GITHUB_TOKEN (what a GitHub Actions job has).

None found means anonymous. A Credential's repr and every message name the source, never the
secret. Reads files and runs helpers; never writes anything.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import RegistryError

USERNAME_VARIABLE = "SHIP_REGISTRY_USERNAME"
PASSWORD_VARIABLE = "SHIP_REGISTRY_PASSWORD"
GITHUB_TOKEN = "GITHUB_TOKEN"
GITHUB_REGISTRY = "ghcr.io"
HELPER_TIMEOUT = 60.0
# Docker Hub goes by several names; its docker config key is the v1 index URL.
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_TOKEN_USER = "<token>"  # a helper's Username for an identity token (docker's convention)


@dataclass(frozen=True)
class Credential:
    """A registry login. `identity_token` is an OAuth2 refresh token (docker config's
    `identitytoken`), exchanged at the token service; otherwise username and password."""

    # where it came from, for messages: `$SHIP_REGISTRY_USERNAME/PASSWORD`, `~/.docker/config.json`
    source: str
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def auth_config(self) -> dict[str, str]:
        """The docker SDK's `auth_config` for a push."""
        if self.identity_token:
            return {"identitytoken": self.identity_token}
        return {"username": self.username, "password": self.password}

    def config_entry(self) -> dict[str, str]:
        """An `auths` entry of a docker config (cosign's, a pull secret's .dockerconfigjson)."""
        if self.identity_token:
            return {"identitytoken": self.identity_token}
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"username": self.username, "password": self.password, "auth": basic}


@dataclass(frozen=True)
class Lookup:
    """The outcome of looking for HOST's credential: what was found, or where ship looked."""

    host: str
    credential: Credential | None
    searched: tuple[str, ...]

    def describe(self) -> str:
        if self.credential is not None:
            return f"credentials from {self.credential.source}"
        return f"no credentials (looked in {', '.join(self.searched)})"

    def hint(self) -> str:
        return f"run docker login {self.host} or set {USERNAME_VARIABLE}/{PASSWORD_VARIABLE}"


def canonical_host(key: str) -> str:
    """The host[:port] a docker config key names (`https://ghcr.io`,
    `https://index.docker.io/v1/`)."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB else host


def docker_config_path(environ: Mapping[str, str]) -> Path:
    folder = environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def _shown(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home) :] if str(path).startswith(home + os.sep) else str(path)


def _entry(auths: Mapping[str, object], host: str) -> dict | None:
    for key, value in auths.items():
        if canonical_host(key) == canonical_host(host) and isinstance(value, dict):
            return value
    return None


def from_entry(entry: Mapping[str, object], source: str) -> Credential | None:
    """The credential of an `auths` entry: `identitytoken`, else `auth` (base64 user:password),
    else `username`/`password`; None for an empty entry (a credsStore keeps the secret)."""
    user = str(entry.get("username") or "")
    if entry.get("identitytoken"):
        return Credential(source, user, identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, sep, password = (
                base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
            )
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"{source}: its `auth` is not base64 of user:password") from None
        return Credential(source, user, password) if sep else None
    if user and entry.get("password"):
        return Credential(source, user, str(entry["password"]))
    return None


Runner = Callable[..., subprocess.CompletedProcess]


def from_helper(
    helper: str, host: str, source: str, run: Runner = subprocess.run
) -> Credential | None:
    """Ask `docker-credential-HELPER get` for HOST; None when it has nothing for it."""
    binary = f"docker-credential-{helper}"
    try:
        proc = run(
            [binary, "get"], input=host, capture_output=True, text=True, timeout=HELPER_TIMEOUT
        )
    except FileNotFoundError:
        raise RegistryError(
            f"{host}: {source} names credential helper {binary}, which is not on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(
            f"{host}: credential helper {binary} did not answer within {HELPER_TIMEOUT:.0f}s"
        ) from None
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        # Its output may echo what it was given; the exit code and the helper's name are enough.
        raise RegistryError(f"{host}: credential helper {binary} failed (exit {proc.returncode})")
    try:
        answer = json.loads(proc.stdout)
        user, secret = str(answer.get("Username") or ""), str(answer["Secret"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RegistryError(
            f"{host}: credential helper {binary} answered something other than its JSON"
        ) from None
    if user == _TOKEN_USER:
        return Credential(f"{binary} ({source})", identity_token=secret)
    return Credential(f"{binary} ({source})", user, secret)


def from_docker_config(
    host: str, environ: Mapping[str, str], run: Runner = subprocess.run
) -> Credential | None:
    path = docker_config_path(environ)
    if not path.is_file():
        return None
    shown = _shown(path)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(
            f"{shown}: not a readable docker config: {exc.__class__.__name__}"
        ) from None
    if not isinstance(config, dict):
        raise RegistryError(f"{shown}: not a docker config (a JSON object)")
    helpers = {canonical_host(k): v for k, v in (config.get("credHelpers") or {}).items()}
    if helpers.get(canonical_host(host)):
        return from_helper(str(helpers[canonical_host(host)]), host, f"credHelpers in {shown}", run)
    entry = _entry(config.get("auths") or {}, host)
    found = from_entry(entry, shown) if entry else None
    if found is None and config.get("credsStore"):
        server = "https://index.docker.io/v1/" if canonical_host(host) == "docker.io" else host
        found = from_helper(str(config["credsStore"]), server, f"credsStore in {shown}", run)
    return found


class Credentials:
    """The credential of each registry host, looked up once per run. `own_host` is ship's registry
    (ship.yaml's `registry:` host), the only one $SHIP_REGISTRY_USERNAME/PASSWORD are sent to."""

    def __init__(
        self,
        own_host: str | None = None,
        environ: Mapping[str, str] | None = None,
        run: Runner = subprocess.run,
    ):
        self.own_host = own_host
        self._environ = environ
        self._run = run
        self._found: dict[str, Lookup] = {}

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def lookup(self, host: str) -> Lookup:
        if host not in self._found:
            self._found[host] = self._look(host)
        return self._found[host]

    def _look(self, host: str) -> Lookup:
        env = self.environ
        searched = []
        if self.own_host is None or canonical_host(host) == canonical_host(self.own_host):
            searched.append(f"${USERNAME_VARIABLE}/{PASSWORD_VARIABLE}")
            if env.get(USERNAME_VARIABLE) or env.get(PASSWORD_VARIABLE):
                if not (env.get(USERNAME_VARIABLE) and env.get(PASSWORD_VARIABLE)):
                    raise RegistryError(
                        f"{host}: set both {USERNAME_VARIABLE} and {PASSWORD_VARIABLE}, or neither"
                    )
                source = f"${USERNAME_VARIABLE}/{PASSWORD_VARIABLE}"
                return Lookup(
                    host,
                    Credential(source, env[USERNAME_VARIABLE], env[PASSWORD_VARIABLE]),
                    tuple(searched),
                )
        searched.append(_shown(docker_config_path(env)))
        found = from_docker_config(host, env, self._run)
        if found is None and canonical_host(host) == GITHUB_REGISTRY:
            searched.append(f"${GITHUB_TOKEN}")
            if env.get(GITHUB_TOKEN):
                found = Credential(
                    f"${GITHUB_TOKEN}",
                    env.get("GITHUB_ACTOR") or "github-actions",
                    env[GITHUB_TOKEN],
                )
        return Lookup(host, found, tuple(searched))
