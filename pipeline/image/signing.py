"""Signs image digests and checks their signatures with cosign, offline, with a key pair.

The signature is stored in the registry beside the image, where cosign puts it (the tag
`sha256-<digest>.sig` of the same repository). No transparency log is written or read: the
trust is the public key in git. A registry on loopback may be spoken to over plain HTTP, as
registry.py does. cosign reads the docker config for its login: ship hands it one of its own (a
temporary DOCKER_CONFIG holding only the credential credentials.py found for the image's host),
so the credential that served the push serves the signature, wherever it came from; and a
private CA (`ca_file:`) as SSL_CERT_FILE, beside the system's. The only module that runs cosign;
it never writes to git.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import names
from pipeline.errors import SignatureError
from pipeline.image.credentials import Credentials
from pipeline.image.registry import Access, is_loopback
from pipeline.imageref import ImageRef

SYSTEM_CAS = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
_CACHED = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / "bin/cosign"
TIMEOUT = 120.0


def cosign_binary() -> str:
    found = (
        os.environ.get("SHIP_COSIGN")
        or shutil.which("cosign")
        or (str(_CACHED) if _CACHED.exists() else None)
    )
    if not found:
        raise SignatureError("cosign is not installed: run `make binaries`, or put cosign on PATH")
    return found


def signing_key(given: str | None = None) -> str | None:
    """The private key for cosign: `given` (a path), else $SHIP_COSIGN_KEY as a path or as the PEM
    itself (a CI secret, handed over as env://, never written to disk); None when neither."""
    value = given or os.environ.get(names.SIGNING_KEY_VARIABLE, "")
    if not value.strip():
        return None
    if "-----BEGIN" in value:
        return f"env://{names.SIGNING_KEY_VARIABLE}"
    if not Path(value).is_file():
        raise SignatureError(f"signing key {value}: no such file")
    return value


def _transport_flags(ref: ImageRef, access: Access) -> list[str]:
    if access.insecure:
        return ["--allow-http-registry", "--allow-insecure-registry"]
    return ["--allow-http-registry"] if is_loopback(ref.registry) else []


def _problem(output: str) -> str:
    """cosign's reason, one line: its last `Error:` line without the prefix."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    text = (errors or lines or ["cosign failed"])[-1].removeprefix("Error:").strip()
    return text.split(": main.go:")[0]


class Cosign:
    """cosign as ship uses it: sign a digest with a key; verify a digest against a public key."""

    def __init__(
        self,
        binary: str | None = None,
        run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
        credentials: Credentials | None = None,
        access: Callable[[str], Access] = lambda host: Access(),
    ):
        self._binary, self._run = binary, run
        self._credentials, self._access = credentials, access

    @contextmanager
    def _environment(self, ref: ImageRef) -> Iterator[dict[str, str]]:
        """cosign's environment for REF's registry: ship's credential in a docker config of its own
        (removed afterwards), and the registry's private CA added to the trusted ones."""
        env = {**os.environ}
        # an unset password would make cosign prompt
        env.setdefault(names.SIGNING_PASSWORD_VARIABLE, "")
        found = self._credentials.lookup(ref.registry).credential if self._credentials else None
        ca_file = self._access(ref.registry).ca_file
        if found is None and not ca_file:
            yield env
            return
        # 0700: only this user reads it
        with tempfile.TemporaryDirectory(prefix="ship-cosign-") as folder:
            if found is not None:
                config = Path(folder) / "config.json"
                config.touch(mode=0o600)
                config.write_text(json.dumps({"auths": {ref.registry: found.config_entry()}}))
                env["DOCKER_CONFIG"] = folder
            if ca_file:
                # Go's SSL_CERT_FILE replaces the system's CAs: hand it both.
                trusted = [
                    p
                    for p in (os.environ.get("SSL_CERT_FILE"), *SYSTEM_CAS)
                    if p and os.path.isfile(p)
                ][:1]
                bundle = Path(folder) / "ca.pem"
                bundle.write_text("".join(Path(p).read_text() + "\n" for p in [*trusted, ca_file]))
                env["SSL_CERT_FILE"] = str(bundle)
            yield env

    def _cosign(self, ref: ImageRef, *args: str) -> subprocess.CompletedProcess:
        flags = _transport_flags(ref, self._access(ref.registry))
        with self._environment(ref) as env:
            try:
                return self._run(
                    [self._binary or cosign_binary(), *args[:1], *flags, *args[1:]],
                    capture_output=True,
                    text=True,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    timeout=TIMEOUT,
                )
            except subprocess.TimeoutExpired as exc:
                raise SignatureError(
                    f"cosign {args[0]} did not finish within {TIMEOUT:.0f}s"
                ) from exc

    def sign(self, ref: ImageRef, key: str) -> None:
        """Sign `ref`'s digest; the signature goes to the registry beside it."""
        proc = self._cosign(
            ref,
            "sign",
            "--yes",
            "--key",
            key,
            "--tlog-upload=false",
            f"{ref.repository}@{ref.digest}",
        )
        if proc.returncode != 0:
            raise SignatureError(
                f"{ref}: cosign could not sign it: {_problem(proc.stderr + proc.stdout)}"
            )

    def verify(self, ref: ImageRef, public_key: Path) -> str | None:
        """None when `ref`'s digest carries a signature made with the key of `public_key`; else why
        not."""
        if not public_key.is_file():
            raise SignatureError(f"{public_key}: public key not found")
        proc = self._cosign(
            ref,
            "verify",
            "--key",
            str(public_key),
            "--insecure-ignore-tlog",
            f"{ref.repository}@{ref.digest}",
        )
        return None if proc.returncode == 0 else _problem(proc.stderr + proc.stdout)
