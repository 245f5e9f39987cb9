"""Signs image digests and checks their signatures with cosign, offline, with a key pair.

The signature is stored in the registry beside the image, where cosign puts it (the tag
`sha256-<digest>.sig` of the same repository). No transparency log is written or read: the
trust is the public key in git. A registry on loopback is spoken to over plain HTTP, as
registry.py does. The only module that runs cosign; it never writes to git.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pipeline import names
from pipeline.errors import SignatureError
from pipeline.image.registry import ImageRef

_CACHED = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / "bin/cosign"
TIMEOUT = 120.0


def cosign_binary() -> str:
    found = os.environ.get("SHIP_COSIGN") or shutil.which("cosign") or (str(_CACHED) if _CACHED.exists() else None)
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


def _plain_http(ref: ImageRef) -> list[str]:
    return ["--allow-http-registry"] if ref.registry.split(":")[0] in ("127.0.0.1", "localhost", "::1") else []


def _problem(output: str) -> str:
    """cosign's reason, one line: its last `Error:` line without the prefix."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    text = (errors or lines or ["cosign failed"])[-1].removeprefix("Error:").strip()
    return text.split(": main.go:")[0]


class Cosign:
    """cosign as ship uses it: sign a digest with a key; verify a digest against a public key."""

    def __init__(self, binary: str | None = None, run: Callable[..., subprocess.CompletedProcess] = subprocess.run):
        self._binary, self._run = binary, run

    def _cosign(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ}
        env.setdefault(names.SIGNING_PASSWORD_VARIABLE, "")  # an unset password would make cosign prompt
        try:
            return self._run([self._binary or cosign_binary(), *args], capture_output=True, text=True, env=env,
                             stdin=subprocess.DEVNULL, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise SignatureError(f"cosign {args[0]} did not finish within {TIMEOUT:.0f}s") from exc

    def sign(self, ref: ImageRef, key: str) -> None:
        """Sign `ref`'s digest; the signature goes to the registry beside it."""
        proc = self._cosign("sign", "--yes", "--key", key, "--tlog-upload=false", *_plain_http(ref),
                            f"{ref.repository}@{ref.digest}")
        if proc.returncode != 0:
            raise SignatureError(f"{ref}: cosign could not sign it: {_problem(proc.stderr + proc.stdout)}")

    def verify(self, ref: ImageRef, public_key: Path) -> str | None:
        """None when `ref`'s digest carries a signature made with the key of `public_key`; else why not."""
        if not public_key.is_file():
            raise SignatureError(f"{public_key}: public key not found")
        proc = self._cosign("verify", "--key", str(public_key), "--insecure-ignore-tlog", *_plain_http(ref),
                            f"{ref.repository}@{ref.digest}")
        return None if proc.returncode == 0 else _problem(proc.stderr + proc.stdout)
