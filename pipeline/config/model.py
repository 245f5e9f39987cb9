"""ship.yaml's domain types: apps, environments, gates, canary and release policies. Pure data.

Every field carries a comment and a default, so a reader sees the whole configuration here;
schema.py reads the file into these types.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import names
from pipeline.config.windows import FreezeWindow
from pipeline.errors import ConfigError

CONFIG_FILE = "ship.yaml"
ROUTERS = ("gateway", "nginx", "replicas")
URL_PLACEHOLDERS = ("namespace", "app", "service", "track")  # in analysis URLs; filled per track
# per track; what the canary judge needs over a 30 s bake (rollout/judge.py)
REQUESTS_PER_ROUND = 40
# whose metrics count users' requests (rollout/counters.py)
TRAFFIC_PROVIDERS = ("traefik", "nginx", "prometheus")


def unknown_placeholders(template: str) -> list[str]:
    """Placeholders in an analysis URL template that ship does not fill."""
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    return [f for f in fields if f not in URL_PLACEHOLDERS]


def promql_placeholders(template: str) -> list[str]:
    """Placeholders in a PromQL template: `{word}`; PromQL's own braces always hold a matcher."""
    return re.findall(r"\{(\w+)\}", template)


def fill_promql(template: str, context: dict[str, str]) -> str:
    """The PromQL template with ship's placeholders filled, its own braces left alone."""
    return re.sub(r"\{(\w+)\}", lambda m: context.get(m[1], m[0]), template)


@dataclass(frozen=True)
class GateOptions:
    """How ship decides a rollout is healthy."""

    timeout: float | None = None  # seconds; None: the Deployment's progressDeadlineSeconds
    bake: float = 0.0  # keep watching this long after healthy; fail if it degrades
    fail_fast: bool = True  # fail at once on CrashLoopBackOff / ImagePullBackOff pods
    max_restarts: int = 3  # container restarts tolerated before the pod gate fails
    tolerance: float = 10.0  # seconds a bad pod state may last before it fails the gate


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP probe run during canary analysis."""

    url: str  # template: {namespace}, {app}, {service}
    expect_status: int = 200
    success_ratio: float = 0.95
    max_latency_ms: float = 1000.0
    requests: int = REQUESTS_PER_ROUND  # per track (canary and stable) and round


@dataclass(frozen=True)
class PrometheusCheck:
    """A Prometheus instant query whose value must stay under (or over) a threshold."""

    url: str
    query: str
    max: float | None = None
    min: float | None = None


@dataclass(frozen=True)
class TrafficInput:
    """Users' requests, as the gateway counts them in Prometheus: each round, the increase of the
    canary's and the stable's counters over the same window goes into the canary judge."""

    # traefik, nginx (built-in series), or prometheus (your own `requests` and `errors`)
    provider: str
    # Prometheus's base URL; a cluster Service's URL is reached through the API server
    prometheus: str
    success_ratio: float = 0.95
    # p95, from the gateway's latency histogram; None (and provider prometheus): not judged
    max_latency_ms: float | None = 1000.0
    # provider prometheus: counters of every request, e.g. http_requests_total{service="{service}"}
    requests: str | None = None
    errors: str | None = None  # provider prometheus: counters of the failed requests (5xx)
    # URL template: when users sent the canary too few requests in a round, GET this for the rest
    top_up: str | None = None
    # per track and round: what users' requests are topped up to
    top_up_requests: int = REQUESTS_PER_ROUND


@dataclass(frozen=True)
class CanaryStep:
    weight: int  # percent of traffic (or of pods, for router: replicas)
    bake: float  # seconds of analysis at this weight


@dataclass(frozen=True)
class CanaryPolicy:
    """How a promotion into this environment runs a canary."""

    router: str = "gateway"
    steps: tuple[CanaryStep, ...] = (CanaryStep(10, 30.0),)
    interval: float = 5.0  # seconds between analysis rounds
    host: str = "hellok8s.local"
    path: str = "/"
    gateway: str = "ship-gateway"  # parentRef of the HTTPRoute: NAME or NAMESPACE/NAME
    ingress_class: str = "nginx"  # ingressClassName of the Ingresses (router: nginx)
    http: tuple[HttpCheck, ...] = ()
    prometheus: tuple[PrometheusCheck, ...] = ()
    traffic: TrafficInput | None = None  # judge the canary on users' requests through the gateway
    # a step still undecided at the end of its bake goes on up to this; None: fails then
    max_bake: float | None = None
    # Seconds the canary keeps serving after routing returns to the stable (after the gateway
    # reports the route's new generation), so the data plane catches up before its pods go.
    scale_down_delay: float = 5.0

    def urls(self) -> list[str]:
        """The Prometheus URL templates the analysis queries once per round (not per track)."""
        return [q.url for q in self.prometheus] + (
            [self.traffic.prometheus] if self.traffic else []
        )

    def inputs(self) -> list[str]:
        """What a canary here is judged on, in words (for ship policy and ship status)."""
        said = []
        if self.traffic:
            top_up = ", topped up by synthetic GETs" if self.traffic.top_up else ""
            said.append(
                "users' traffic through the gateway "
                f"({self.traffic.provider} metrics in Prometheus{top_up})"
            )
        said += [f"synthetic HTTP GETs of {c.url}" for c in self.http]
        said += [f"Prometheus query {q.query}" for q in self.prometheus]
        return said or ["rollout and pod health only: no analysis"]


@dataclass(frozen=True)
class Policy:
    """The rules a change into an environment must pass; `ship policy ENV` says which hold now.

    Approvals are not here: they are the required reviewers of the GitHub environment of the
    same name, which the workflow's job for this environment waits on."""

    # every pinned image signed with `public_key` (cosign), checked before writing
    require_signature: bool = False
    # cosign public key, relative to the repository root (it belongs in git)
    public_key: str | None = None
    # release images built before the current release's commit (else: --allow-older)
    allow_older: bool = False
    # windows refusing releases and promotions (rollbacks and aborts pass)
    freeze: tuple[FreezeWindow, ...] = ()


@dataclass(frozen=True)
class ChartSource:
    """A Helm chart an app's base is rendered from (`chart: {path: …}`, or a remote chart
    `chart: {repo: oci://HOST/PATH/NAME, version: V}`), through kustomize's `helmCharts`; the
    chart is used as it is, its only inputs are the app's values files."""

    # the chart's folder (with Chart.yaml), relative to the repository root; a remote chart's cache
    path: Path
    # oci://HOST/PATH/NAME of a remote chart (image/charts.py pulls it into `path`)
    repo: str | None = None
    version: str | None = None  # the remote chart's version: its tag in the registry

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def remote(self) -> bool:
        return self.repo is not None


# remote charts, pulled and checked, as NAME-VERSION/NAME (not in git)
CHART_CACHE = Path(".ship/charts")


def remote_chart_path(repo: str, version: str) -> Path:
    """Where a remote chart is unpacked in the repository: `.ship/charts/NAME-VERSION/NAME`."""
    name = repo.rstrip("/").rsplit("/", 1)[-1]
    return CHART_CACHE / f"{name}-{version}" / name


@dataclass(frozen=True)
class App:
    """An app: a build context, its image repository, kustomize base, config and secrets."""

    name: str
    path: Path  # relative to the repository root
    image: str  # repository name inside the registry
    dockerfile: str = "Dockerfile"
    build: tuple[str, ...] = ()  # shell commands run in `path` before the image build
    base: str = "base"  # kustomize base, relative to path
    config: str = "config"  # folder of <env>.env files, relative to path
    # keys of Secret <app>-secrets, values from SHIP_SECRET_<APP>_<KEY>
    secrets: tuple[str, ...] = ()
    keep_configs: int = 5  # versioned ConfigMaps kept in an overlay for rollbacks
    chart: ChartSource | None = None  # set: the base is this chart rendered with the app's values
    values: str = "values"  # VALUES.yaml (every environment) and VALUES/ENV.yaml, relative to path

    def values_files(self, env: str) -> tuple[Path, ...]:
        """The chart's values files for ENV, relative to the repository root, later ones winning;
        each is optional, so the caller keeps those that exist."""
        return self.path / f"{self.values}.yaml", self.path / self.values / f"{env}.yaml"

    @property
    def sources(self) -> tuple[str, ...]:
        """Where the app's source commit (its last change: code, base, config) is looked for: its
        folder, and its chart's when that lies elsewhere (a chart is its base)."""
        chart = (
            (str(self.chart.path),)
            if self.chart and not self.chart.path.is_relative_to(self.path)
            else ()
        )
        return (str(self.path), *chart)

    @property
    def config_name(self) -> str:
        return names.config_map_name(self.name)

    @property
    def secret_name(self) -> str:
        return names.secret_name(self.name)


@dataclass(frozen=True)
class RegistryOptions:
    """How ship reaches its registry, beside its address (`registry: {url: …, ca_file: …}`)."""

    insecure: bool = False  # plain HTTP or unverified TLS: a lab registry only; warned on every use
    ca_file: str | None = None  # a private CA (PEM), relative to the repository root or absolute


@dataclass(frozen=True)
class Environment:
    """An environment: a namespace on a kube context, its overlay, where it promotes from."""

    name: str
    namespace: str
    context: str | None = None
    promotes_from: str | None = None
    gates: GateOptions = field(default_factory=GateOptions)
    canary: CanaryPolicy | None = None
    policy: Policy = field(default_factory=Policy)
    # keep Secret ship-registry (from the run's registry credentials) in the namespace
    pull_secret: bool = True
    # Pod Security level labelled on the Namespace ship writes (names.POD_SECURITY_LEVELS)
    pod_security: str = "restricted"

    @property
    def folder(self) -> Path:
        """The environment's overlay: its Namespace and a kustomization listing its apps'
        folders."""
        return Path("environments") / self.name

    @property
    def label(self) -> str:
        """`ENV`, for messages."""
        return self.name


@dataclass(frozen=True)
class Slot:
    """One app in one environment: its own overlay folder, release record, ledger and canary.

    Its own type, so that an API on one app (a release, a ledger) and one on the whole
    environment (a sync, a publish) cannot be handed each other's value."""

    env: Environment
    app: str  # the app's name

    @property
    def overlay(self) -> Path:
        """The app's folder in the environment's overlay."""
        return self.env.folder / self.app

    @property
    def label(self) -> str:
        """`ENV/APP`, for messages."""
        return f"{self.env.name}/{self.app}"


@dataclass(frozen=True)
class ShipConfig:
    root: Path
    # host[:port][/path]: where images are pushed; a path is a repository prefix (ghcr.io/acme)
    registry: str
    apps: dict[str, App]
    environments: dict[str, Environment]
    source: str = CONFIG_FILE
    # Field managers whose fields a sync takes over and removes when git does not set them:
    # hand edits with kubectl (Flux's ssa does the same). ship.yaml: takeover_managers.
    # set from names.TAKEOVER_MANAGERS by default (schema.py)
    takeover_managers: tuple[str, ...] = ()
    # Globs (git pathspec glob, from the repository root) of files that cannot change an image or
    # manifests (READMEs, docs): ship build --changed and an app's source commit ignore them, and
    # the workflow's `paths` leaves them out. ship.yaml: ignore.
    ignore: tuple[str, ...] = ()
    registry_options: RegistryOptions = field(default_factory=RegistryOptions)

    @property
    def registry_host(self) -> str:
        return names.split_registry(self.registry)[0]

    def repository(self, app: App) -> str:
        """APP's image repository: `ghcr.io/acme/shop` for `registry: ghcr.io/acme`, image
        `shop`."""
        return f"{self.registry.strip().rstrip('/')}/{app.image}"

    def app(self, name: str | None) -> App:
        if name is None:
            if len(self.apps) == 1:
                return next(iter(self.apps.values()))
            raise ConfigError(f"{self.source}: several apps ({', '.join(self.apps)}); name one")
        try:
            return self.apps[name]
        except KeyError:
            raise ConfigError(
                f"unknown app {name!r} (ship.yaml has: {', '.join(self.apps)})"
            ) from None

    def env(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(
                f"unknown environment {name!r} (ship.yaml has: {', '.join(self.environments)})"
            ) from None
