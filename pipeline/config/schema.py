"""Reads ship.yaml against a strict schema into the types of model.py.

Unknown keys, wrong types and missing fields are ConfigErrors that name the file, the line and
the dotted key (`ship.yaml:14: environments.prod.canary.router: expected one of gateway, nginx,
replicas`), by reader.py. Parsing is pure apart from reading SHIP_REGISTRY from the environment
it is given.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline import names
from pipeline.config.model import (CONFIG_FILE, REQUESTS_PER_ROUND, ROUTERS, TRAFFIC_PROVIDERS,
                                   URL_PLACEHOLDERS, App, CanaryPolicy, CanaryStep, ChartSource, Environment, GateOptions,
                                   HttpCheck, Policy, PrometheusCheck, RegistryOptions, ShipConfig, TrafficInput,
                                   promql_placeholders, remote_chart_path, unknown_placeholders)
from pipeline.config.reader import Reader as _Reader
from pipeline.errors import ConfigError
from pipeline.config import windows

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def parse_duration(value: Any) -> float:
    """Seconds from `30`, `30s`, `500ms`, `5m`, `1h`."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s or 5m")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError("a duration such as 30s or 5m")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]



def _name(value: str) -> str:
    if not names.valid_name(value):
        raise ValueError(names.NAME_RULE)
    return value


def _strings(value: list) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise ValueError("a list of strings")
    return tuple(value)


def _secret_keys(value: list) -> tuple[str, ...]:
    keys = _strings(value)
    for key in keys:
        if not names.valid_secret_key(key):
            raise ValueError("secret keys in UPPER_SNAKE_CASE")
    return keys


def _inside(value: str) -> str:
    if not names.inside_repository(value):
        raise ValueError(f"{names.PATH_RULE} (not {value!r})")
    return value


def _template(value: str) -> str:
    unknown = unknown_placeholders(value)
    if unknown:
        raise ValueError(f"a URL whose placeholders are among {', '.join('{' + p + '}' for p in URL_PLACEHOLDERS)} "
                         f"(not {{{unknown[0]}}})")
    return value


def _promql(value: str) -> str:
    unknown = [p for p in promql_placeholders(value) if p not in URL_PLACEHOLDERS]
    if unknown:
        raise ValueError(f"PromQL whose placeholders are among {', '.join('{' + p + '}' for p in URL_PLACEHOLDERS)} "
                         f"(not {{{unknown[0]}}})")
    return value


def _in(options: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return value

    return check


def _gates(r: _Reader | None) -> GateOptions:
    if r is None:
        return GateOptions()
    timeout = r.get("timeout", (str, int, float), None, parse_duration)
    gates = GateOptions(
        timeout=timeout,
        bake=r.get("bake", (str, int, float), 0.0, parse_duration),
        fail_fast=r.get("fail_fast", bool, True),
        max_restarts=r.get("max_restarts", int, 3),
        tolerance=r.get("tolerance", (str, int, float), 10.0, parse_duration),
    )
    r.done()
    return gates


def _canary(r: _Reader | None) -> CanaryPolicy | None:
    if r is None:
        return None
    default = CanaryPolicy()
    steps: list[CanaryStep] = []
    for i, raw in enumerate(r.get("steps", list, [])):
        s = _Reader(raw, r.source, f"{r.path}.steps[{i}]", r.data.line_of("steps"))
        weight = s.get("weight", int)
        if not 0 < weight <= 100:
            s.fail("expected a percentage between 1 and 100", "weight")
        steps.append(CanaryStep(weight, s.get("bake", (str, int, float), 30.0, parse_duration)))
        s.done()
    checks: list[HttpCheck] = []
    for i, raw in enumerate(r.get("http", list, [])):
        h = _Reader(raw, r.source, f"{r.path}.http[{i}]", r.data.line_of("http"))
        checks.append(
            HttpCheck(
                url=h.get("url", str, check=_template),
                expect_status=h.get("expect_status", int, 200),
                success_ratio=float(h.get("success_ratio", (int, float), 0.95)),
                max_latency_ms=float(h.get("max_latency_ms", (int, float), 1000.0)),
                requests=h.get("requests", int, REQUESTS_PER_ROUND),
            )
        )
        h.done()
    queries: list[PrometheusCheck] = []
    for i, raw in enumerate(r.get("prometheus", list, [])):
        p = _Reader(raw, r.source, f"{r.path}.prometheus[{i}]", r.data.line_of("prometheus"))
        queries.append(
            PrometheusCheck(url=p.get("url", str, check=_template), query=p.get("query", str),
                            max=p.get("max", (int, float), None), min=p.get("min", (int, float), None))
        )
        p.done()
    policy = CanaryPolicy(
        router=r.get("router", str, default.router, _in(ROUTERS)),
        steps=tuple(steps) or default.steps,
        interval=r.get("interval", (str, int, float), default.interval, parse_duration),
        host=r.get("host", str, default.host),
        path=r.get("path", str, default.path),
        gateway=r.get("gateway", str, default.gateway),
        ingress_class=r.get("ingress_class", str, default.ingress_class),
        http=tuple(checks),
        prometheus=tuple(queries),
        traffic=_traffic(r.child("traffic", None)),
        max_bake=r.get("max_bake", (str, int, float), None, parse_duration),
    )
    bakes = [s.bake for s in policy.steps]
    if policy.max_bake is not None and policy.max_bake < max(bakes):
        r.fail(f"expected at least the longest step's bake ({max(bakes):g}s)", "max_bake")
    r.done()
    return policy


def _traffic(t: _Reader | None) -> TrafficInput | None:
    """canary.traffic: users' requests through the gateway, from Prometheus (rollout/counters.py)."""
    if t is None:
        return None
    provider = t.get("provider", str, check=_in(TRAFFIC_PROVIDERS))
    own = provider == "prometheus"
    traffic = TrafficInput(
        provider=provider,
        prometheus=t.get("prometheus", str, check=_template),
        success_ratio=float(t.get("success_ratio", (int, float), 0.95)),
        max_latency_ms=None if own else float(t.get("max_latency_ms", (int, float), 1000.0)),
        requests=t.get("requests", str, ... if own else None, _promql),
        errors=t.get("errors", str, ... if own else None, _promql),
        top_up=t.get("top_up", str, None, _template),
        top_up_requests=t.get("top_up_requests", int, REQUESTS_PER_ROUND),
    )
    if not 0 < traffic.success_ratio <= 1:
        t.fail("expected a ratio between 0 (exclusive) and 1", "success_ratio")
    for key in ("requests", "errors"):
        if not own and key in t.data:
            t.fail(f"only for provider prometheus (your own counters); {provider}'s are built in", key)
    if own and "max_latency_ms" in t.data:
        t.fail("provider prometheus counts requests and errors only: no latency histogram to judge", "max_latency_ms")
    t.done()
    return traffic


def _policy(r: _Reader | None) -> Policy:
    if r is None:
        return Policy()
    freeze: list[windows.FreezeWindow] = []
    for i, raw in enumerate(r.get("freeze", list, [])):
        w = _Reader(raw, r.source, f"{r.path}.freeze[{i}]", r.data.line_of("freeze"))
        name = w.get("name", str, f"freeze[{i}]")
        timezone = w.get("timezone", str, "UTC", _zone)
        start = w.get("from", (str, dt.date), check=_bound(is_end=False))
        end = w.get("to", (str, dt.date), check=_bound(is_end=True))
        w.done()
        try:
            freeze.append(windows.make_window(name, start, end, timezone))
        except ValueError as exc:
            w.fail(f"expected {exc}", "to")
    policy = Policy(require_signature=r.get("require_signature", bool, False),
                    public_key=r.get("public_key", str, None), allow_older=r.get("allow_older", bool, False),
                    freeze=tuple(freeze))
    if policy.require_signature and not policy.public_key:
        r.fail("require_signature needs public_key: the cosign public key to verify with", "require_signature")
    r.done()
    return policy


def _bound(is_end: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        windows.parse_bound(value, is_end=is_end)
        return value

    return check


def _zone(value: str) -> str:
    windows.zone(value)
    return value


def _entries(parent: _Reader, key: str, what: str) -> Iterator[tuple[str, _Reader]]:
    """(name, reader) for each entry of the mapping `key`, its name checked; at least one."""
    r = parent.child(key)
    assert r is not None  # a required key: child() raised when it is missing
    seen = 0
    for name, raw, line in r.items():
        try:
            _name(name)
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
        path=Path(a.get("path", str, check=_inside)),
        image=a.get("image", str),
        dockerfile=a.get("dockerfile", str, "Dockerfile", _inside),
        build=a.get("build", list, (), _strings),
        base=a.get("base", str, "base", _inside),
        config=a.get("config", str, "config", _inside),
        secrets=a.get("secrets", list, (), _secret_keys),
        keep_configs=a.get("keep_configs", int, 5),
        chart=_chart(a.child("chart", None)),
        values=a.get("values", str, "values", _inside),
    )
    if app.keep_configs < 1:
        a.fail("expected at least 1", "keep_configs")
    if app.chart is not None and "base" in a.data:
        a.fail("an app from a chart has no kustomize base of its own (the chart is its base); remove base", "base")
    if app.chart is None and "values" in a.data:
        a.fail("values are the inputs of a chart: set chart too, or remove values", "values")
    return app


_CHART_REPO = re.compile(r"^oci://[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
_CHART_INDEX = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*/?$")
_CHART_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_CHART_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$")  # an OCI tag (helm writes + as _)


def _chart(r: _Reader | None) -> ChartSource | None:
    """`{path: DIR}` (a chart in the repository), `{repo: oci://HOST/PATH/NAME, version: V}` or
    `{repo: https://HOST/PATH, name: NAME, version: V}` (held as repo https://HOST/PATH/NAME)."""
    if r is None:
        return None
    if "repo" not in r.data:
        path = r.get("path", str, check=_inside)
        r.done()  # raises on a missing path, after unknown keys
        return ChartSource(path=Path(path))
    repo = r.get("repo", str)
    name = r.get("name", str, None) if not repo.startswith("oci://") else None
    version = r.get("version", str)
    r.done()
    if repo.startswith(("https://", "http://")):
        if not _CHART_INDEX.match(repo):
            r.fail(f"{repo!r} is not https://HOST[:PORT]/PATH (a chart repository with an index.yaml)", "repo")
        if name is None or not _CHART_NAME.match(name):
            r.fail("a chart of an https repository needs its name (the chart's name in the repository's index)", "name")
        repo = f"{repo.rstrip('/')}/{name}"
    elif not _CHART_REPO.match(repo):
        r.fail(f"{repo!r} is not oci://HOST[:PORT]/PATH/NAME (a chart in an OCI registry) or an https repository", "repo")
    if not _CHART_VERSION.match(version):
        r.fail(f"{version!r} is not a chart version", "version")
    return ChartSource(path=remote_chart_path(repo, version), repo=repo, version=version)


def _environment(name: str, e: _Reader) -> Environment:
    return Environment(
        name=name,
        namespace=e.get("namespace", str, check=_name),
        context=e.get("context", str, None),
        promotes_from=e.get("promotes_from", str, None),
        gates=_gates(e.child("gates", None)),
        canary=_canary(e.child("canary", None)),
        policy=_policy(e.child("policy", None)),
        pod_security=e.get("pod_security", str, "restricted", _in(names.POD_SECURITY_LEVELS)),
        pull_secret=e.get("pull_secret", bool, True),
    )


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
        options = RegistryOptions(insecure=r.get("insecure", bool, False), ca_file=r.get("ca_file", str, None))
        r.done()
    else:
        url = top.get("registry", str, ..., _registry_url) if not env_vars.get("SHIP_REGISTRY") else ""
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
                    f"{key} is read from {variable}, as secret {seen[variable].split('/')[1]} of app "
                    f"{seen[variable].split('/')[0]} is: rename one of them", "secrets")
            seen[variable] = f"{app.name}/{key}"


def promotion_cycle(envs: Mapping[str, Any], start: str) -> list[str] | None:
    """The environments from `start` back along promotes_from, when they come round to `start`."""
    path, current = [start], envs[start].promotes_from
    while current is not None and current in envs and current not in path:
        path.append(current)
        current = envs[current].promotes_from
    return [*path, current] if current == start else None


def parse(data: Any, root: Path, source: str = CONFIG_FILE, environ: dict[str, str] | None = None) -> ShipConfig:
    """A ShipConfig from loaded YAML; pure apart from reading SHIP_REGISTRY from `environ`."""
    env_vars: Mapping[str, str] = os.environ if environ is None else environ
    top = _Reader(data, source, "")
    registry, registry_options = _registry(top, env_vars)
    apps = {name: _app(name, a) for name, a in _entries(top, "apps", "app")}
    envs = {name: _environment(name, e) for name, e in _entries(top, "environments", "environment")}
    _distinct_secret_variables(top, apps)
    for env in envs.values():
        if env.promotes_from is not None and env.promotes_from not in envs:
            _Reader(top.data["environments"][env.name], source, f"environments.{env.name}").fail(
                f"unknown environment {env.promotes_from!r}", "promotes_from")
        if (cycle := promotion_cycle(envs, env.name)) is not None:
            _Reader(top.data["environments"][env.name], source, f"environments.{env.name}").fail(
                f"promotes_from makes a cycle ({' → '.join(cycle)}): promotions must lead from a first "
                "environment that promotes from none", "promotes_from")
        if len(apps) > 1 and env.canary and env.canary.router != "replicas" and "{app}" not in env.canary.host:
            _Reader(top.data["environments"][env.name]["canary"], source, f"environments.{env.name}.canary").fail(
                f"{env.canary.host!r} would route every app's traffic to one host; with several apps put {{app}} "
                "in it (e.g. {app}.example.com)", "host")
    takeover = top.get("takeover_managers", list, names.TAKEOVER_MANAGERS, _strings)
    ignore = top.get("ignore", list, [], _strings)
    top.done()
    return ShipConfig(root=root, registry=registry, apps=apps, environments=envs, source=source,
                      takeover_managers=tuple(takeover), registry_options=registry_options,
                      ignore=tuple(ignore))
