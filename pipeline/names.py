"""Every name ship gives to things, in one place: labels, annotations, suffixes, secret
variables, the name rules for apps and environments, and the trailers of ship's commits.

A label or trailer spelled in two modules drifts apart; here it is spelled once. Pure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# ── labels and annotations on the objects ship applies ────────────────────────────────────────
MANAGED_BY = "app.kubernetes.io/managed-by"  # = "ship" on every object ship owns
MANAGER = "ship"  # the value of MANAGED_BY, and ship's server-side apply field manager
ENV_LABEL = "ship.dev/environment"  # which environment owns the object
APP_LABEL = "ship.dev/app"  # which app of the environment owns the object
TRACK = "ship.dev/track"  # stable | canary, on pods (and selectors) while a router splits traffic
CONFIG_OF = "ship.dev/config-of"  # on versioned ConfigMaps: the app they configure
LOCK_LABEL = "ship.dev/lock"  # on the environment's Lease
APP_NAME = "app.kubernetes.io/name"
PART_OF = "app.kubernetes.io/part-of"
RELEASE = "ship.dev/release"  # annotation: the release id a workload or pod runs
APPLIED_HASH = "ship.dev/applied-hash"  # annotation: hash of what ship last applied
CANARY_WEIGHT = "ship.dev/canary-weight"  # annotation on the canary workload
HOOK = "ship.dev/hook"  # annotation on a Job of a base: pre-release | post-release (kube/hooks.py)
CHANGE_CAUSE = "kubernetes.io/change-cause"  # shown by `kubectl rollout history`
# image label: the source commit, for `ship release --image`
REVISION_LABEL = "org.opencontainers.image.revision"

# kubectl's field managers, and "before-first-apply" (fields set before any server-side apply):
# a sync takes their fields over and removes those git does not set (kube/fields.py); ship.yaml's
# `takeover_managers` defaults to them.
TAKEOVER_MANAGERS = (
    "kubectl",
    "kubectl-edit",
    "kubectl-client-side-apply",
    "kubectl-set",
    "kubectl-patch",
    "kubectl-label",
    "kubectl-annotate",
    "kubectl-scale",
    "before-first-apply",
)

POD_SECURITY = "pod-security.kubernetes.io"  # Pod Security admission's labels on a Namespace
# none: ship sets no such labels
POD_SECURITY_LEVELS = ("restricted", "baseline", "privileged", "none")


def pod_security_labels(level: str) -> dict[str, str]:
    """The labels holding a Namespace's pods to Pod Security `level` (enforced, warned, audited)."""
    if level in ("", "none"):
        return {}
    return {f"{POD_SECURITY}/{mode}": level for mode in ("enforce", "warn", "audit")} | {
        f"{POD_SECURITY}/enforce-version": "latest"
    }


STABLE, CANARY = "stable", "canary"
CANARY_SUFFIX = "-canary"
# kustomize labelSelector keeping the canary out of stable patches
NOT_CANARY = f"{TRACK}!={CANARY}"
LEASE_PREFIX = "ship-lock-"


def canary_name(name: str) -> str:
    return f"{name}{CANARY_SUFFIX}"


def is_canary(name: str) -> bool:
    return name.endswith(CANARY_SUFFIX)


def env_selector(env: str) -> str:
    """The label selector of every object an environment owns."""
    return f"{ENV_LABEL}={env}"


def config_map_name(app: str) -> str:
    """The ConfigMap name an app's base refers to; each release gets `<this>-<release id>`."""
    return f"{app}-config"


def secret_name(app: str) -> str:
    return f"{app}-secrets"


# The image pull secret (kubernetes.io/dockerconfigjson) a sync keeps in each environment's
# namespace from the registry credentials of the run, and the pod specs name in imagePullSecrets;
# one name, so the deployer's Role can allow exactly it (kube/rbac.py).
PULL_SECRET = "ship-registry"

FREEZE_FILE = "freeze.yaml"  # in an environment's folder: the manual freeze `ship freeze` writes


# the cosign private key for `ship build`: a file path, or the PEM itself
SIGNING_KEY_VARIABLE = "SHIP_COSIGN_KEY"
SIGNING_PASSWORD_VARIABLE = "COSIGN_PASSWORD"  # its password, read by cosign itself


def secret_variable(app: str, key: str) -> str:
    """The environment variable holding secret KEY of APP at sync time: SHIP_SECRET_<APP>_<KEY>."""
    return f"SHIP_SECRET_{re.sub(r'[^A-Z0-9]', '_', app.upper())}_{key}"


# ── name rules ───────────────────────────────────────────────────────────────────────────────
NAME_MAX = 40  # app and environment names: leaves room in 63 for suffixes such as -config-r…-canary
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
NAME_RULE = f"a lowercase DNS label (a-z, 0-9, '-'), at most {NAME_MAX} characters"


def valid_name(value: str) -> bool:
    """An app, environment or namespace name ship accepts."""
    return bool(_NAME.match(value)) and len(value) <= NAME_MAX


def valid_secret_key(value: str) -> bool:
    return bool(_SECRET_KEY.match(value))


def inside_repository(path: str) -> bool:
    """A relative path that stays inside the repository (no absolute path, no `..` out of it)."""
    normal = os.path.normpath(path)
    return not os.path.isabs(path) and normal != ".." and not normal.startswith(".." + os.sep)


PATH_RULE = "a relative path inside the repository"
_HOST = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?)(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(?::\d{1,5})?$|^\[::1\](?::\d{1,5})?$"
)
_PATH_PART = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def split_registry(value: str) -> tuple[str, str]:
    """`ghcr.io/acme` → (`ghcr.io`, `acme`): ship.yaml's `registry:` as host[:port] and a
    repository prefix ("" when none). ValueError says what is wrong."""
    if "://" in value:
        raise ValueError(f"host[:port][/path] without a scheme (not {value!r})")
    host, _, prefix = value.strip().strip("/").partition("/")
    if not _HOST.match(host):
        raise ValueError(f"host[:port][/path], a lowercase host name (not {value!r})")
    if prefix and not all(_PATH_PART.match(part) for part in prefix.split("/")):
        raise ValueError(f"host[:port][/path] with a lowercase path (not {value!r})")
    return host, prefix


# a ConfigMap holds at most 1 MiB; an app's config file may not be larger
MAX_CONFIG_BYTES = 1024 * 1024


# ── commit trailers ──────────────────────────────────────────────────────────────────────────
TRAILER_PREFIX = "Ship-"
# Fields of governance trailers (Ship-<field>: value): who went through which control, and why.
# the freeze a --override-freeze went through: its window or commit
OVERRIDE_FREEZE = "Override-Freeze"
OVERRIDE_REASON = "Override-Reason"
OVERRIDE_BY = "Override-By"
FREEZE_REASON = "Freeze-Reason"  # on `ship freeze` commits
FREEZE_UNTIL = "Freeze-Until"
SIGNATURE = "Signature"  # how the release's image was verified: `cosign, key keys/cosign.pub`
ALLOW_OLDER = "Allow-Older"  # `yes` on a release made with --allow-older


TEXT_MAX = 300  # characters of a reason, an actor or a title ship records
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text_problem(value: str, limit: int = TEXT_MAX) -> str | None:
    """Why `value` may not be recorded (in a commit, a ledger, a summary), or None: a line break or
    another control character could forge a trailer, a heading or a workflow command."""
    if _CONTROL.search(value):
        return "holds a line break or another control character"
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit}"
    return None


def one_line(value: object, limit: int = TEXT_MAX) -> str:
    """Text from elsewhere (a pod's termination message, a condition's) made safe to print in a
    CI log: one line, no control characters, no `::` or `##[` a runner would read as a workflow
    command (`::add-mask::`, `::error::`), cut to `limit` characters."""
    text = _CONTROL.sub(" ", str(value)).replace("::", ": :").replace("##[", "# #[")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(value: str, what: str, limit: int = TEXT_MAX) -> str:
    """`value`, when it may be recorded; ConfigError naming `what` (e.g. `--reason`) when not."""
    from pipeline.errors import ConfigError

    problem = text_problem(value, limit)
    if problem:
        raise ConfigError(f"{what} {problem}; nothing recorded")
    return value


def commit_message(title: str, action: str, fields: Mapping[str, str | None]) -> str:
    """`title`, a blank line, then `Ship-Action: action` and one `Ship-<Field>: value` per field
    that has a value, so `git log --grep Ship-Release: r…` finds every commit about a release.
    A title or value that could break out of its line is refused (ConfigError)."""
    check_text(title, "the commit title", 2 * TEXT_MAX)
    lines = [f"{TRAILER_PREFIX}Action: {action}"]
    for key, value in fields.items():
        if value:
            lines.append(
                f"{TRAILER_PREFIX}{key}: "
                f"{check_text(str(value), f'{TRAILER_PREFIX}{key}', 2 * TEXT_MAX)}"
            )
    return f"{title}\n\n" + "\n".join(lines) + "\n"


_TRAILER = re.compile(r"^(?P<key>[A-Za-z0-9][A-Za-z0-9-]*): (?P<value>.*)$")


def trailers(message: str) -> dict[str, str]:
    """The Ship- trailers of a commit message, by field name without the prefix: read from its
    final paragraph only, and only when every line of it is a trailer and no key repeats (ship
    writes each once; anything else is not a block ship wrote, so none of it is believed)."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return {}
    out: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        match = _TRAILER.match(line.rstrip())
        if not match:
            return {}
        key = match["key"]
        if key.startswith(TRAILER_PREFIX):
            if key[len(TRAILER_PREFIX) :] in out:
                return {}
            out[key[len(TRAILER_PREFIX) :]] = match["value"].strip()
    return out
