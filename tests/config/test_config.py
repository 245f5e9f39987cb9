"""ship.yaml schema: good files load into dataclasses, bad ones name file, line and key."""

from pathlib import Path

import pytest

from pipeline import config, yamlsafe
from pipeline.config import Slot
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
registry: 127.0.0.1:5000
apps:
  web:
    path: apps/web
    image: web
    secrets: [DB_PASSWORD]
environments:
  dev:
    namespace: web-dev
  prod:
    namespace: web-prod
    promotes_from: dev
    gates: {timeout: 2m, bake: 30s}
    canary:
      router: nginx
      steps: [{weight: 10, bake: 1m}, {weight: 50, bake: 30s}]
"""


def parse(text: str, environ=None):
    return config.parse(yamlsafe.loads(text, "ship.yaml"), Path("/repo"), "ship.yaml", environ or {})


def test_repository_ship_yaml_loads():
    cfg = config.load(ROOT, environ={})
    assert cfg.app("hellok8s").secrets == ("DB_PASSWORD",)
    assert [e.promotes_from for e in cfg.environments.values()] == [None, "dev", "uat"]


def test_good_file_parses_into_dataclasses():
    cfg = parse(GOOD)
    assert cfg.registry == "127.0.0.1:5000"
    assert cfg.app(None).name == "web"
    prod = cfg.env("prod")
    assert prod.gates.timeout == 120 and prod.gates.bake == 30
    assert prod.canary.router == "nginx"
    assert [(s.weight, s.bake) for s in prod.canary.steps] == [(10, 60), (50, 30)]
    assert cfg.env("dev").canary is None


def test_registry_from_environment_wins():
    assert parse(GOOD, {"SHIP_REGISTRY": "127.0.0.1:9"}).registry == "127.0.0.1:9"


@pytest.mark.parametrize(
    "edit, message",
    [
        (("    image: web\n", "    imag: web\n"), "ship.yaml:5: apps.web.imag: unknown key (did you mean 'image'?)"),
        (("    image: web\n", ""), "ship.yaml:4: apps.web.image: missing required field"),
        (("namespace: web-dev", "namespace: 7"), "ship.yaml:9: environments.dev.namespace: expected a string, got a number"),
        (("router: nginx", "router: istio"), "ship.yaml:15: environments.prod.canary.router: expected one of gateway, nginx, replicas"),
        (("promotes_from: dev", "promotes_from: qa"), "ship.yaml:12: environments.prod.promotes_from: unknown environment 'qa'"),
        (("bake: 30s}", "bake: soon}"), "ship.yaml:13: environments.prod.gates.bake: expected a duration such as 30s or 5m"),
        (("weight: 10,", "weight: 120,"), "ship.yaml:16: environments.prod.canary.steps[0].weight: expected a percentage between 1 and 100"),
        (("  dev:\n", "  Dev_1:\n"), "ship.yaml:8: environments.Dev_1: environment name: expected a lowercase DNS label"),
        (("secrets: [DB_PASSWORD]", "secrets: [db-password]"), "ship.yaml:6: apps.web.secrets: expected secret keys in UPPER_SNAKE_CASE"),
        (("path: apps/web", "path: ../../etc"), "ship.yaml:4: apps.web.path: expected a relative path inside the repository (not '../../etc')"),
        (("path: apps/web", "path: /etc"), "ship.yaml:4: apps.web.path: expected a relative path inside the repository (not '/etc')"),
        (("    image: web\n", "    image: web\n    base: ../../../x\n"), "apps.web.base: expected a relative path inside the repository"),
        (("  web:\n", "  " + "w" * 41 + ":\n"), "app name: expected a lowercase DNS label (a-z, 0-9, '-'), at most 40 characters"),
    ],
)
def test_bad_files_name_file_line_and_key(edit, message):
    with pytest.raises(ConfigError) as err:
        parse(GOOD.replace(*edit))
    assert message in str(err.value)


def test_duplicate_keys_are_rejected():
    with pytest.raises(ConfigError, match=r"ship.yaml:6: duplicate key 'path' \(first at line 4\)"):
        parse(GOOD.replace("    image: web\n", "    image: web\n    path: again\n"))


def test_unknown_app_and_environment_name_what_exists():
    cfg = parse(GOOD)
    with pytest.raises(ConfigError, match=r"unknown app 'api' \(ship.yaml has: web\)"):
        cfg.app("api")
    with pytest.raises(ConfigError, match=r"unknown environment 'qa' \(ship.yaml has: dev, prod\)"):
        cfg.env("qa")


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: 1\na: 2\n", "f.yaml:2: duplicate key 'a'"),
        ("x: !!python/object/apply:os.system ['true']\n", "f.yaml:1: could not determine a constructor"),
        ("x: !custom 1\n", "f.yaml:1: could not determine a constructor for the tag '!custom'"),
        ("a: [1\n", "f.yaml:2:"),
        ("\n".join(f"l{i}: &l{i} [" + ",".join([f"*l{i-1}"] * 9) + "]" for i in range(1, 8)).replace("*l0", "0") + "\n",
         "too many nodes after expanding aliases"),
    ],
)
def test_yaml_loading_is_safe(text, message):
    with pytest.raises(ConfigError) as err:
        yamlsafe.loads(text, "f.yaml")
    assert message in str(err.value)


def test_yaml_size_cap():
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        yamlsafe.loads("a: '" + "x" * (5 * 1024 * 1024) + "'", "big.yaml")


def test_durations():
    assert config.parse_duration("500ms") == 0.5
    assert config.parse_duration("5m") == 300
    assert config.parse_duration(7) == 7
    with pytest.raises(ValueError):
        config.parse_duration("five")


POLICY = GOOD + """\
    policy:
      require_signature: true
      public_key: keys/cosign.pub
      allow_older: true
      freeze:
        - {name: weekend, from: "Fri 16:00", to: "Mon 08:00", timezone: Europe/Berlin}
        - {from: 2026-12-20, to: 2027-01-04}
"""


def test_a_policy_section_loads_with_its_freeze_windows():
    policy = parse(POLICY).env("prod").policy
    assert policy.require_signature and policy.public_key == "keys/cosign.pub" and policy.allow_older
    assert [w.describe() for w in policy.freeze] == ["window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin)",
                                                     "window 'freeze[1]' (2026-12-20 – 2027-01-04 UTC)"]
    dev = parse(POLICY).env("dev").policy
    assert not dev.require_signature and not dev.allow_older and dev.freeze == ()


@pytest.mark.parametrize("old, new, error", [
    ('timezone: Europe/Berlin}', 'timezone: Europe/Berln}',
     "ship.yaml:22: environments.prod.policy.freeze[0].timezone: expected an IANA time zone such as Europe/Berlin"),
    ('to: "Mon 08:00"', 'to: "Mon 8"',
     "ship.yaml:22: environments.prod.policy.freeze[0].to: expected a weekday and time such as 'Fri 16:00'"),
    ('to: 2027-01-04', 'to: 2026-01-04', "ship.yaml:23: environments.prod.policy.freeze[1].to: expected an end after the start"),
    ("      public_key: keys/cosign.pub\n", "", "ship.yaml:18: environments.prod.policy.require_signature: require_signature "
     "needs public_key"),
    ("allow_older: true", "allow_older: yes please", "ship.yaml:20: environments.prod.policy.allow_older: expected true or false"),
    ('{name: weekend, from:', '{name: weekend, form:', "ship.yaml:22: environments.prod.policy.freeze[0].form: unknown key (did you mean 'from'?)"),
])
def test_policy_errors_name_file_line_and_key(old, new, error):
    with pytest.raises(ConfigError) as exc:
        parse(POLICY.replace(old, new))
    assert str(exc.value).startswith(error)


def test_several_apps_behind_one_routed_host_are_refused_and_app_in_the_host_splits_them():
    two = GOOD.replace("apps:\n", "apps:\n  api: {path: apps/api, image: api}\n")
    with pytest.raises(ConfigError, match=r"ship.yaml:\d+: environments.prod.canary.host: 'hellok8s.local' would route "
                                          r"every app's traffic to one host; with several apps put \{app\} in it"):
        parse(two)
    cfg = parse(two.replace("router: nginx", 'router: nginx\n      host: "{app}.example.com"'))
    prod = cfg.env("prod")
    assert prod.canary.host == "{app}.example.com" and Slot(prod, "api").overlay == Path("environments/prod/api")
    assert Slot(prod, "api").env == prod and Slot(prod, "api").env.folder == prod.folder
    parse(two.replace("router: nginx", "router: replicas"))  # no host to share


TRAFFIC = GOOD + """\
      max_bake: 5m
      traffic:
        provider: traefik
        prometheus: http://prometheus.monitoring.svc:9090
        top_up: 'http://{service}.{namespace}.svc:3000/'
"""


def test_a_traffic_input_loads_and_says_what_the_canary_is_judged_on():
    canary = parse(TRAFFIC).env("prod").canary
    assert canary.max_bake == 300
    assert canary.scale_down_delay == 5.0  # the default drain (rollout/handover.py)
    assert parse(TRAFFIC.replace("max_bake: 5m", "max_bake: 5m\n      scale_down_delay: 30s")).env("prod").canary \
        .scale_down_delay == 30
    assert canary.traffic == config.TrafficInput("traefik", "http://prometheus.monitoring.svc:9090",
                                                 top_up="http://{service}.{namespace}.svc:3000/")
    assert canary.inputs() == ["users' traffic through the gateway (traefik metrics in Prometheus, topped up by "
                               "synthetic GETs)"]
    own = parse(TRAFFIC.replace("provider: traefik", "provider: prometheus\n        requests: "
                                "'http_requests_total{namespace=\"{namespace}\",service=\"{service}\"}'\n        errors: "
                                "'http_requests_total{service=\"{service}\",code=~\"5..\"}'")).env("prod").canary.traffic
    assert own.max_latency_ms is None and own.requests.startswith("http_requests_total{namespace=")
    assert parse(GOOD).env("prod").canary.inputs() == ["rollout and pod health only: no analysis"]


@pytest.mark.parametrize("old, new, error", [
    ("provider: traefik", "provider: istio", "environments.prod.canary.traffic.provider: expected one of traefik, nginx, "
                                             "prometheus"),
    ("provider: traefik", "provider: prometheus", "environments.prod.canary.traffic.requests: missing required field"),
    ("provider: traefik", "provider: traefik\n        requests: 'x'",
     "environments.prod.canary.traffic.requests: only for provider prometheus (your own counters); traefik's are built in"),
    ("max_bake: 5m", "max_bake: 10s", "environments.prod.canary.max_bake: expected at least the longest step's bake (60s)"),
    ("max_bake: 5m", "max_bake: 5m\n      scale_down_delay: soon", "environments.prod.canary.scale_down_delay: "),
    ("top_up: 'http://{service}", "top_up: 'http://{pod}", "canary.traffic.top_up: expected a URL whose placeholders"),
    ("provider: traefik", "provider: prometheus\n        requests: 'r{pod=\"{pod}\"}'\n        errors: 'e'",
     "canary.traffic.requests: expected PromQL whose placeholders are among {namespace}, {app}, {service}, {track} "
     "(not {pod})"),
])
def test_traffic_errors_name_file_line_and_key(old, new, error):
    with pytest.raises(ConfigError) as err:
        parse(TRAFFIC.replace(old, new))
    assert error in str(err.value)
