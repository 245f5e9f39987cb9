"""The one error hierarchy of ship. Every failure a user can cause or meet is a ShipError.

    ShipError                      base: the CLI prints "<Type>: <message>" and exits non-zero
    ├── ConfigError                ship.yaml (or another input file) is wrong: names file, line, key
    ├── GitError                   the repository or its remote refused something
    ├── BuildError                 the build engine failed to build or push an image
    ├── RegistryError              the registry answered wrongly, or a digest does not match
    ├── RenderError                kustomize could not render an overlay
    ├── ValidationError            rendered objects break ship's rules (namespace, ownership)
    ├── ClusterError               the Kubernetes API refused or failed a request
    │   ├── ApiError               the API server refused a request (carries its status and Status)
    │   │   └── ProxyError         … a service-proxy request, which the Service never saw
    │   ├── DryRunError            the server-side dry-run rejected one or more objects
    │   └── ConflictError          another field manager or owner holds the object or fields
    ├── SecretError                a required secret value is missing
    ├── GateFailed                 a health gate failed (carries the gate result)
    ├── PromotionError             a promotion is not allowed (edge, health, rejected or older
                                   release)
    ├── FrozenError                the environment is frozen (a window, or `ship freeze`): exit 75
    ├── SignatureError             an image is unsigned, or not signed with the environment's key
    └── LockError                  another ship run holds the environment lock

Exceptions of the kubernetes client, GitPython, docker and httpx are wrapped where they are
caught, with `raise ... from exc`, so a message always names the object involved.
Anything that is not a ShipError reaching the CLI is a bug and shows its traceback.
"""

from __future__ import annotations

from typing import Any


class ShipError(Exception):
    """Base of every error ship reports to its user as one line."""

    exit_code = 1

    def __str__(self) -> str:  # one line, whatever the cause carried
        return " ".join(super().__str__().split("\n")).strip()


class ConfigError(ShipError):
    """A configuration or input file is invalid."""


class GitError(ShipError):
    """A git operation failed."""


class BuildError(ShipError):
    """Building or pushing an image failed."""


class RegistryError(ShipError):
    """The registry failed, or a digest could not be verified."""


class RenderError(ShipError):
    """kustomize failed to render an overlay."""


class ValidationError(ShipError):
    """Rendered objects break ship's rules."""


class ClusterError(ShipError):
    """The Kubernetes API refused or failed a request."""


class ApiError(ClusterError):
    """A refused API request, with the HTTP status and the API server's Status object."""

    def __init__(self, message: str, status: int, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def causes(self) -> list[dict[str, Any]]:
        return (self.body.get("details") or {}).get("causes") or []


class ProxyError(ApiError):
    """The API server answered a service-proxy request itself: the Service did not."""

    @property
    def unanswered(self) -> str:
        """Why the Service did not answer, in a word or two."""
        if self.status == 403:
            return "forbidden"
        if self.status == 404:
            return "not found"
        return (
            "no endpoint answered" if self.status == 503 else self.reason or f"HTTP {self.status}"
        )


class DryRunError(ClusterError):
    """The server-side dry-run rejected one or more objects; none were applied."""


class ConflictError(ClusterError):
    """Another owner or field manager holds the object or some of its fields."""


class SecretError(ShipError):
    """A required secret value is missing."""


class GateFailed(ShipError):
    """A health gate failed."""

    def __init__(self, message: str, result: object | None = None):
        super().__init__(message)
        self.result = result


class PromotionError(ShipError):
    """A promotion is not allowed."""


class FrozenError(ShipError):
    """The environment is frozen: nothing is released or promoted into it without an override.

    Its own exit code, so a pipeline can tell "held by a freeze" from a failure: 75 is
    sysexits' EX_TEMPFAIL, "try again later"."""

    exit_code = 75


class SignatureError(ShipError):
    """An image's signature is missing, made with another key, or could not be checked."""


class LockError(ShipError):
    """Another ship run holds the environment's lock."""
