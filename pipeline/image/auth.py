"""The OCI distribution auth handshake, as an httpx auth flow every registry request goes through.

A registry that wants credentials answers 401 with `WWW-Authenticate`:

  Basic realm=…                         → the request again with the credential (Basic)
  Bearer realm=R,service=S,scope=X      → a token from R (GET ?service=S&scope=X, Basic with the
                                          credential or anonymous; an identity token is
                                          exchanged by POST grant_type=refresh_token, as docker
                                          does), then the request again with `Bearer <token>`

Tokens are kept per (realm, service, scope) until their `expires_in` (60 s when not said, as the
spec defaults), and sent ahead on the next request for the same repository; a token the
registry refuses anyway is dropped and fetched once more. Parsing the challenge is pure.

Written here rather than taken from `oras` (PyPI): oras-py speaks `requests`, not httpx (whose
transports, retries and TLS settings ship uses), and reads neither `identitytoken` nor
`expires_in`. Never logs or raises with a secret: messages name the host, the repository and
where the credential came from.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from pipeline.errors import RegistryError
from pipeline.image.credentials import Credential, Lookup

# seconds, when a token service does not say (the distribution spec's default)
DEFAULT_EXPIRES_IN = 60.0
MARGIN = 5.0  # a token this close to expiring is fetched again rather than sent
_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_REPOSITORY = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)(?:/|$)")


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate`: the scheme (lowercase) and its parameters."""

    scheme: str
    realm: str = ""
    service: str = ""
    scope: str = ""


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="https://…/token",service="…",scope="repository:a/b:pull"` as a Challenge;
    None for an empty header or a scheme other than Basic and Bearer."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("basic", "bearer"):
        return None
    params = {
        m[1].lower(): (m[2].replace('\\"', '"') if m[2] or not m[3] else m[3])
        for m in _PARAM.finditer(rest)
    }
    return Challenge(
        scheme.lower(), params.get("realm", ""), params.get("service", ""), params.get("scope", "")
    )


def repository_of(path: str) -> str:
    """The repository a registry API path is about (`/v2/acme/shop/manifests/1` → acme/shop); "" for
    /v2/."""
    match = _REPOSITORY.match(path)
    return match["name"] if match else ""


def basic_header(credential: Credential) -> str:
    return (
        "Basic "
        + base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
    )


def refused(
    host: str, status: int, repository: str, lookup: Lookup, what: str = ""
) -> RegistryError:
    """The one line for credentials a registry or its token service refused."""
    subject = f"repository {repository}" if repository else "its API"
    return RegistryError(
        f"{host}: {status} for {subject}{what} ({lookup.describe()}; {lookup.hint()})"
    )


class RegistryAuth(httpx.Auth):
    """Answers a registry's challenges with the credential of `lookup()` (called on the first
    challenge, so a registry that asks for nothing never runs a credential helper)."""

    requires_response_body = True  # the token service's answer is read inside the flow

    def __init__(
        self, host: str, lookup: Callable[[], Lookup], clock: Callable[[], float] = time.monotonic
    ):
        self.host = host
        self._lookup = lookup
        self._clock = clock
        self._basic = False  # the registry asked for Basic: send it ahead from now on
        # (realm, service, scope) → token, expiry
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._scopes: dict[str, tuple[str, str, str]] = {}  # repository → the key of its last token
        # the last request's fresh token was refused (expired, or for another service)
        self.token_refused = False

    def found(self) -> Lookup:
        return self._lookup()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        repository = repository_of(request.url.path)
        self.token_refused = False
        ahead = self._ahead(repository)
        if ahead:
            request.headers["Authorization"] = ahead
        response = yield request
        if response.status_code != 401:
            return
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return
        lookup = self.found()
        if challenge.scheme == "basic":
            if (
                lookup.credential is None
                or lookup.credential.identity_token
                or (ahead or "").startswith("Basic ")
            ):
                return  # nothing (else) to send: the 401 stands
            self._basic = True
            request.headers["Authorization"] = basic_header(lookup.credential)
            yield request
            return
        key = (challenge.realm, challenge.service, challenge.scope)
        self._tokens.pop(key, None)  # refused, or never had one
        token = yield from self._fetch(challenge, lookup, repository)
        self._tokens[key] = token
        self._scopes[repository] = key
        request.headers["Authorization"] = f"Bearer {token[0]}"
        response = yield request
        # Anonymous tokens carry only what anyone may do: a 401 then means "log in", not a bad
        # token.
        self.token_refused = response.status_code == 401 and lookup.credential is not None

    def _ahead(self, repository: str) -> str | None:
        if self._basic:
            credential = self.found().credential
            return (
                basic_header(credential) if credential and not credential.identity_token else None
            )
        key = self._scopes.get(repository)
        if key and key in self._tokens:
            token, expiry = self._tokens[key]
            if self._clock() < expiry - MARGIN:
                return f"Bearer {token}"
        return None

    def _fetch(
        self, challenge: Challenge, lookup: Lookup, repository: str
    ) -> Generator[httpx.Request, httpx.Response, tuple[str, float]]:
        if not challenge.realm.startswith(("https://", "http://")):
            raise RegistryError(
                f"{self.host}: its token service realm {challenge.realm!r} is not a URL"
            )
        credential = lookup.credential
        scopes = challenge.scope.split(" ") if challenge.scope else []
        if credential is not None and credential.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credential.identity_token,
                "service": challenge.service,
                "scope": " ".join(scopes),
                "client_id": "ship",
            }
            token_request = httpx.Request("POST", challenge.realm, data=form)
        else:
            pairs: list[tuple[str, str | int | float | bool | None]] = [
                ("service", challenge.service)
            ]
            params = httpx.QueryParams(pairs + [("scope", s) for s in scopes])
            headers = {"Authorization": basic_header(credential)} if credential is not None else {}
            token_request = httpx.Request("GET", challenge.realm, params=params, headers=headers)
        answer = yield token_request
        if answer.status_code in (401, 403):
            raise refused(
                self.host, answer.status_code, repository, lookup, " at its token service"
            )
        if answer.status_code != 200:
            raise RegistryError(
                f"{self.host}: its token service answered {answer.status_code} for "
                f"repository {repository or '(none)'} ({lookup.describe()})"
            )
        try:
            body = answer.json()
            token = str(body.get("token") or body["access_token"])
            expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryError(
                f"{self.host}: its token service answered without a token"
            ) from None
        return token, self._clock() + expires_in
