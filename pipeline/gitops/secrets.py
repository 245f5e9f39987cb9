"""Secret values for an environment, from the environment variables of the run that syncs.

`SHIP_SECRET_<APP>_<KEY>` (GitHub Actions fills these from its secrets) gives the value of KEY
in Secret `<app>-secrets`; a key not set there (or set empty, as GitHub Actions passes a secret
nobody set) keeps the value already in the cluster. The values live only in memory: never on
disk, never in git, and `<redacted>` wherever shown.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from pipeline import names
from pipeline.config import App, Environment
from pipeline.errors import SecretError


def variable(app: App, key: str) -> str:
    return names.secret_variable(app.name, key)


def secret_for(
    app: App, env: Environment, live: dict | None, environ: dict[str, str] | None = None
) -> dict | None:
    """Secret `<app>-secrets` as ship should apply it, or SecretError naming what to set."""
    if not app.secrets:
        return None
    env_vars: Mapping[str, str] = os.environ if environ is None else environ
    live_data = (live or {}).get("data") or {}
    values: dict[str, str] = {}
    missing = []
    for key in app.secrets:
        name = variable(app, key)
        if env_vars.get(name):  # empty is unset: GitHub Actions passes a secret nobody set as ""
            values[key] = env_vars[name]
        elif key in live_data:
            try:
                values[key] = base64.b64decode(live_data[key], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise SecretError(
                    f"{env.name}: the cluster's {app.secret_name}/{key} is not UTF-8 text; "
                    f"set {name} to replace it"
                ) from None
        else:
            missing.append(name)
    if missing:
        raise SecretError(
            f"{env.name}: secret "
            f"{', '.join(k for k in app.secrets if variable(app, k) in missing)} of "
            f"{app.name} is not set and not in the cluster: set {', '.join(missing)}"
        )
    return secret_object(app.secret_name, env.namespace, values, {names.APP_NAME: app.name})


def secret_object(
    name: str, namespace: str, values: dict[str, str], labels: dict[str, str]
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())},
    }
