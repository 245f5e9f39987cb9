#!/usr/bin/env python3
"""The lab's token issuer: the `realm` of the private registry's `auth: token`.

A registry with token auth answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`;
the client asks this issuer for a token and the registry itself verifies it: an RS256 JWT whose
`x5c` header carries this issuer's certificate, which the registry trusts (`rootcertbundle`).
No existing issuer builds here (cesanta/docker_auth is not on the Go module proxy), so this
implements the Docker token protocol as registries document it, with the standard library and
openssl (it runs before ship's virtualenv exists):

  GET  /token?service=S&scope=repository:NAME:pull,push   Basic auth, or anonymous
  POST /token  grant_type=password (username, password; access_type=offline gives a
               refresh_token) or grant_type=refresh_token (an identity token, as
               `docker login` stores it): the OAuth2 form docker and go-containerregistry use

Who may do what: every user of the users file may pull and push anything; anonymous clients
may pull repositories under `public/`. User NAME-expired (same password as NAME) gets tokens
that expired two minutes ago while saying `expires_in: 300`, so clients meet a registry that
refuses its token. Wrong credentials get 401. Never logs a password or a token.

  token_issuer.py --listen 127.0.0.1:15445 --cert issuer.crt --key issuer.key \
      --tls-cert server.crt --tls-key server.key --users users.json --issuer I
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIFETIME = 300
EXPIRED = "-expired"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        with open(args.cert) as f:
            pem = f.read()
        der = ssl.PEM_cert_to_DER_cert(pem)
        self.x5c = [base64.b64encode(der).decode()]
        with open(args.users) as f:
            self.users: dict[str, str] = json.load(f)
        with open(args.key, "rb") as f:
            self.secret = hashlib.sha256(f.read()).digest()  # for refresh tokens: stable across restarts

    def user(self, name: str, password: str) -> str | None:
        """The account NAME, when PASSWORD is its password; None otherwise."""
        base = name[: -len(EXPIRED)] if name.endswith(EXPIRED) else name
        known = self.users.get(base)
        return name if known is not None and hmac.compare_digest(known, password) else None

    def refresh_token(self, name: str) -> str:
        return f"rt.{name}.{hmac.new(self.secret, name.encode(), 'sha256').hexdigest()}"

    def from_refresh_token(self, token: str) -> str | None:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "rt":
            return None
        return parts[1] if hmac.compare_digest(self.refresh_token(parts[1]), token) else None

    def access(self, account: str | None, scopes: list[str]) -> list[dict]:
        granted = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            wanted = [a for a in actions.split(",") if a]
            allowed = wanted if account else [a for a in wanted if a == "pull" and name.startswith("public/")]
            if allowed:
                granted.append({"type": "repository", "name": name, "actions": allowed})
        return granted

    def token(self, account: str | None, service: str, scopes: list[str]) -> dict:
        now = int(time.time())
        expired = bool(account and account.endswith(EXPIRED))
        exp = now - 120 if expired else now + LIFETIME
        claims = {"iss": self.args.issuer, "sub": account or "", "aud": service, "exp": exp,
                  "nbf": now - 240 if expired else now - 10, "iat": now - 240 if expired else now,
                  "jti": b64url(os.urandom(12)), "access": self.access(account, scopes)}
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.args.key], input=signing_input.encode(),
                                   capture_output=True, check=True).stdout
        token = f"{signing_input}.{b64url(signature)}"
        return {"token": token, "access_token": token, "expires_in": LIFETIME,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


class Handler(BaseHTTPRequestHandler):
    issuer: Issuer

    def log_message(self, format: str, *args: object) -> None:  # the request line carries no secret
        print(f"{self.address_string()} {format % args}", flush=True)

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="ship lab token issuer"')
        self.end_headers()
        self.wfile.write(data)

    def _basic(self) -> tuple[bool, str | None]:
        """(whether credentials were sent, the account they prove or None)."""
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return False, None
        try:
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return True, None
        return True, self.issuer.user(name, password)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self._answer(404, {"error": "not found"})
        query = urllib.parse.parse_qs(url.query)
        sent, account = self._basic()
        if sent and account is None:
            return self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "wrong username or password"}]})
        service = (query.get("service") or [""])[0]
        self._answer(200, self.issuer.token(account, service, query.get("scope", [])))

    def do_POST(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/token":
            return self._answer(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        field = lambda key: (form.get(key) or [""])[0]  # noqa: E731
        grant = field("grant_type")
        if grant == "password":
            account = self.issuer.user(field("username"), field("password"))
        elif grant == "refresh_token":
            account = self.issuer.from_refresh_token(field("refresh_token"))
        else:
            return self._answer(400, {"error": "unsupported_grant_type"})
        if account is None:
            return self._answer(401, {"error": "invalid_grant"})
        scopes = [s for s in field("scope").split(" ") if s]
        body = self.issuer.token(account, field("service"), scopes)
        if grant == "password" and field("access_type") == "offline":
            body["refresh_token"] = self.issuer.refresh_token(account)
        self._answer(200, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("--listen", "--cert", "--key", "--tls-cert", "--tls-key", "--users", "--issuer"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Handler.issuer = Issuer(args)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"token issuer on https://{args.listen}/token", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
