"""Reads ship.yaml against a strict schema into the types of model.py.

Unknown keys, wrong types and missing fields are ConfigErrors that name the file, the line and
the dotted key (`ship.yaml:14: environments.prod.canary.router: expected one of gateway, nginx,
replicas`), by reader.py. Parsing is pure apart from reading SHIP_REGISTRY from the environment
it is given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline import names
from pipeline.config import checks, environments
from pipeline.config.model import (
    CONFIG_FILE,
    App,
    ChartSource,
    RegistryOptions,
    ShipConfig,
    remote_chart_path,
)
from pipeline.config.reader import Reader as _Reader
from pipeline.errors import ConfigError


def _entries(parent: _Reader, key: str, what: str) -> Iterator[tuple[str, _Reader]]:
    """(name, reader) for each entry of the mapping `key`, its name checked; at least one."""
    r = parent.child(key)
    assert r is not None  # a required key: child() raised when it is missing
    seen = 0
    for name, raw, line in r.items():
        try:
            checks.name(name)
        except ValueError as exc:
            r.fail(f"{what} name: expected {exc}", name)
        entry = _Reader(raw, parent.source, f"{key}.{name}", line)
        yield name, entry
        entry.done()
        seen += 1
    if not seen:
        r.fail(f"at least one {what} is needed")


def _app(name: str, a: _Reader) -> App:
    app = App(
        name=name,
        path=Path(a.get("path", str, check=checks.inside)),
        image=a.get("image", str),
        dockerfile=a.get("dockerfile", str, "Dockerfile", checks.inside),
        build=a.get("build", list, (), checks.strings),
        base=a.get("base", str, "base", checks.inside),
        config=a.get("config", str, "config", checks.inside),
        secrets=a.get("secrets", list, (), checks.secret_keys),
        keep_configs=a.get("keep_configs", int, 5),
        chart=_chart(a.child("chart", None)),
        values=a.get("values", str, "values", checks.inside),
    )
    if app.keep_configs < 1:
        a.fail("expected at least 1", "keep_configs")
    if app.chart is not None and "base" in a.data:
        a.fail(
            "an app from a chart has no kustomize base of "
            "its own (the chart is its base); remove base",
            "base",
        )
    if app.chart is None and "values" in a.data:
        a.fail("values are the inputs of a chart: set chart too, or remove values", "values")
    return app


_CHART_REPO = re.compile(r"^oci://[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
_CHART_INDEX = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*/?$")
_CHART_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
# an OCI tag (helm writes + as _)
_CHART_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$")


def _chart(r: _Reader | None) -> ChartSource | None:
    """`{path: DIR}` (a chart in the repository), `{repo: oci://HOST/PATH/NAME, version: V}` or
    `{repo: https://HOST/PATH, name: NAME, version: V}` (held as repo https://HOST/PATH/NAME)."""
    if r is None:
        return None
    if "repo" not in r.data:
        path = r.get("path", str, check=checks.inside)
        r.done()  # raises on a missing path, after unknown keys
        return ChartSource(path=Path(path))
    repo = r.get("repo", str)
    name = r.get("name", str, None) if not repo.startswith("oci://") else None
    version = r.get("version", str)
    r.done()
    if repo.startswith(("https://", "http://")):
        if not _CHART_INDEX.match(repo):
            r.fail(
                f"{repo!r} is not https://HOST[:PORT]/PATH (a chart repository with an index.yaml)",
                "repo",
            )
        if name is None or not _CHART_NAME.match(name):
            r.fail(
                "a chart of an https repository needs its name "
                "(the chart's name in the repository's index)",
                "name",
            )
        repo = f"{repo.rstrip('/')}/{name}"
    elif not _CHART_REPO.match(repo):
        r.fail(
            f"{repo!r} is not oci://HOST[:PORT]/PATH/NAME (a "
            "chart in an OCI registry) or an https repository",
            "repo",
        )
    if not _CHART_VERSION.match(version):
        r.fail(f"{version!r} is not a chart version", "version")
    return ChartSource(path=remote_chart_path(repo, version), repo=repo, version=version)


def _registry_url(value: str) -> str:
    names.split_registry(value)
    return value


def _registry(top: _Reader, env_vars: Mapping[str, str]) -> tuple[str, RegistryOptions]:
    """`registry: host[:port][/path]`, or the mapping {url, ca_file, insecure}; $SHIP_REGISTRY
    replaces the url (and is checked as it is)."""
    raw = top.data.get("registry")
    if isinstance(raw, dict):
        r = top.child("registry")
        assert r is not None
        url = r.get("url", str, check=_registry_url)
        options = RegistryOptions(
            insecure=r.get("insecure", bool, False), ca_file=r.get("ca_file", str, None)
        )
        r.done()
    else:
        url = (
            top.get("registry", str, ..., _registry_url)
            if not env_vars.get("SHIP_REGISTRY")
            else ""
        )
        options = RegistryOptions()
    override = env_vars.get("SHIP_REGISTRY")
    if override:
        try:
            names.split_registry(override)
        except ValueError as exc:
            raise ConfigError(f"$SHIP_REGISTRY: expected {exc}") from None
        url = override
    top.used.add("registry")
    return url, options


def _distinct_secret_variables(top: _Reader, apps: dict[str, App]) -> None:
    """Two apps' secrets may not share a variable (web + ADMIN_TOKEN and web-admin + TOKEN are
    both SHIP_SECRET_WEB_ADMIN_TOKEN): one app would get the other's value."""
    seen: dict[str, str] = {}
    for app in apps.values():
        for key in app.secrets:
            variable = names.secret_variable(app.name, key)
            if variable in seen and seen[variable] != app.name:
                _Reader(top.data["apps"][app.name], top.source, f"apps.{app.name}").fail(
                    f"{key} is read from {variable}, as secret "
                    f"{seen[variable].split('/')[1]} of app "
                    f"{seen[variable].split('/')[0]} is: rename one of them",
                    "secrets",
                )
            seen[variable] = f"{app.name}/{key}"


def promotion_cycle(envs: Mapping[str, Any], start: str) -> list[str] | None:
    """The environments from `start` back along promotes_from, when they come round to `start`."""
    path, current = [start], envs[start].promotes_from
    while current is not None and current in envs and current not in path:
        path.append(current)
        current = envs[current].promotes_from
    return [*path, current] if current == start else None


def parse(
    data: Any, root: Path, source: str = CONFIG_FILE, environ: dict[str, str] | None = None
) -> ShipConfig:
    """A ShipConfig from loaded YAML; pure apart from reading SHIP_REGISTRY from `environ`."""
    env_vars: Mapping[str, str] = os.environ if environ is None else environ
    top = _Reader(data, source, "")
    registry, registry_options = _registry(top, env_vars)
    apps = {name: _app(name, a) for name, a in _entries(top, "apps", "app")}
    envs = {
        name: environments.environment(name, e)
        for name, e in _entries(top, "environments", "environment")
    }
    _distinct_secret_variables(top, apps)
    for env in envs.values():
        if env.promotes_from is not None and env.promotes_from not in envs:
            _Reader(top.data["environments"][env.name], source, f"environments.{env.name}").fail(
                f"unknown environment {env.promotes_from!r}", "promotes_from"
            )
        if (cycle := promotion_cycle(envs, env.name)) is not None:
            _Reader(top.data["environments"][env.name], source, f"environments.{env.name}").fail(
                f"promotes_from makes a cycle ({' → '.join(cycle)}): "
                "promotions must lead from a first "
                "environment that promotes from none",
                "promotes_from",
            )
        if (
            len(apps) > 1
            and env.canary
            and env.canary.router != "replicas"
            and "{app}" not in env.canary.host
        ):
            _Reader(
                top.data["environments"][env.name]["canary"],
                source,
                f"environments.{env.name}.canary",
            ).fail(
                f"{env.canary.host!r} would route every app's "
                f"traffic to one host; with several apps put {{app}} "
                "in it (e.g. {app}.example.com)",
                "host",
            )
    takeover = top.get("takeover_managers", list, names.TAKEOVER_MANAGERS, checks.strings)
    ignore = top.get("ignore", list, [], checks.strings)
    top.done()
    return ShipConfig(
        root=root,
        registry=registry,
        apps=apps,
        environments=envs,
        source=source,
        takeover_managers=tuple(takeover),
        registry_options=registry_options,
        ignore=tuple(ignore),
    )
