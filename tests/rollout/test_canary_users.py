"""A prod canary judged on its real users alone: users (tests/users.py) send requests through the
lab's Traefik to real pods on the real node; Traefik counts them per backend Service; the lab's
Prometheus scrapes Traefik; ship reads the increase of the canary's and the stable's counters
every round and judges them with the sequential judge. No synthetic probe, no query by hand:
`canary.traffic: {provider: traefik, prometheus: URL}`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from pipeline.config import TrafficInput
from pipeline.rollout import counters
from tests.conftest import ROOT, commit_all, free_port, wait_http
from tests.test_real_node import (
    SECRET_VAR,
    delete_namespaces,
    host_for,
    kubectl_json,
    new_repo,
    prometheus_query,
    set_canary,
    set_config,
    ship,
    through_gateway,
    wait_routed,
)
from tests.users import Users

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]


def policy(parts: dict, ns: str, prometheus: str, bake: str = "30s", max_bake: str = "120s", extra: str = "") -> str:
    return (f"router: gateway\ngateway: {parts['SHIP_GATEWAY']}\nhost: {host_for(ns)}\ninterval: 3s\n"
            f"max_bake: {max_bake}\nsteps:\n  - {{weight: 10, bake: {bake}}}\n"
            f"traffic:\n  provider: traefik\n  prometheus: {prometheus}\n{extra}")


def stable_service(ns: str) -> str:
    """Traefik's (v3.6) name for an HTTPRoute's backend: NAMESPACE-NAME-http-PORT@kubernetesgateway."""
    return f"{ns}-hellok8s-http-3000@kubernetesgateway"


def prod_beside_next(work, namespaces, parts, image, canary: str, r1: dict, r2: dict) -> str:
    """prod runs r1 (prod config `r1`) routed by the gateway; r2 (prod config `r2`) waits in uat.
    Returns r1's id."""
    ns = namespaces["prod"]
    set_canary(work, canary)
    set_config(work, "prod", **r1)
    commit_all(work, "prod: a canary judged on users' traffic")
    for step in (["release", "dev", "--image", image], ["promote", "dev", "uat"], ["promote", "uat", "prod"]):
        out = ship(work, *step)
        assert out.returncode == 0, (step, out.stderr)
    set_config(work, "dev", MESSAGE="Hello again from dev")
    set_config(work, "prod", **r2)
    commit_all(work, "the next release")
    for step in (["release", "dev", "--image", image], ["promote", "dev", "uat"]):
        out = ship(work, *step)
        assert out.returncode == 0, (step, out.stderr)
    wait_routed(parts["SHIP_GATEWAY_URL"], ns)
    return kubectl_json("-n", ns, "get", "deployment", "hellok8s")["metadata"]["annotations"]["ship.dev/release"]


def wait_counted(prometheus: str, service: str, timeout: float = 60) -> None:
    """Prometheus holds Traefik's counter for `service` (users' requests reached it and were scraped)."""
    deadline = time.monotonic() + timeout
    while not prometheus_query(prometheus, f'traefik_service_requests_total{{service="{service}"}}'):
        assert time.monotonic() < deadline, f"no traefik_service_requests_total for {service} within {timeout:.0f}s"
        time.sleep(1)


def rounds_of(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in out.stderr.splitlines() if "analysis round" in line]


def assert_aborted(out, ns: str, r1: str, gateway: str) -> None:
    assert out.returncode != 0, out.stderr
    assert f"stable {r1} untouched" in out.stderr, out.stderr
    route = kubectl_json("-n", ns, "get", "httproute", "hellok8s")
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [("hellok8s", 100)]
    deadline = time.monotonic() + 30  # Traefik follows the route within moments
    while {a.headers.get("X-Track") for a in through_gateway(gateway, ns, 10)} != {"stable"}:
        assert time.monotonic() < deadline, "the gateway still sends users to the canary"
        time.sleep(0.5)


# name: (prod config of r1, of r2, users/s, what the last round says, aborted)
CASES = {
    "12% errors for users, no synthetic probe: aborted": (
        {"ERROR_RATE": "0.02"}, {"ERROR_RATE": "0.12"}, 25, r"canary \d+/\d+ errors .*\[FAIL\]", True),
    "2% beside 2%: promoted": ({"ERROR_RATE": "0.02"}, {"ERROR_RATE": "0.02"}, 25, r"\[PASS\]", False),
    "slow for users (the gateway's histogram): aborted": (
        {}, {"FAIL_MODE": "slow", "SLOW_MS": "1500"}, 25, r"p95 (≤ 2500ms|> 1000ms) vs ≤ 1000ms.*too slow", True),
    "1 request/s: extended, then failed naming the counts": (
        {}, {}, 1, r"too few requests: the canary was sent \d+ \(a pass needs at least \d+", True),
}


@pytest.mark.parametrize("name", CASES)
def test_a_canary_judged_on_users_through_the_gateway(name, real_node, local_parts, hellok8s_image, project_repo,
                                                       tmp_path):
    r1_config, r2_config, rate, last_words, aborted = CASES[name]
    work, _, namespaces = new_repo(tmp_path, project_repo)
    ns, gateway, prom = namespaces["prod"], local_parts["SHIP_GATEWAY_URL"], local_parts["SHIP_PROMETHEUS_URL"]
    max_bake = "45s" if rate == 1 else "120s"
    try:
        r1 = prod_beside_next(work, namespaces, local_parts, hellok8s_image,
                              policy(local_parts, ns, prom, max_bake=max_bake), r1_config, r2_config)
        with Users(gateway, host_for(ns), rate=rate, seconds=400) as users:
            wait_counted(prom, stable_service(ns))
            out = ship(work, "promote", "uat", "prod", timeout=600)
        rounds = rounds_of(out)
        print(f"{name}: users {users.by_track()}\n" + "\n".join(rounds[:1] + rounds[-2:]))
        assert rounds and all("users' traffic through the gateway (traefik counters in Prometheus)" in r for r in rounds)
        assert "counting from now" in rounds[0], rounds[0]
        assert re.search(last_words, rounds[-1]), rounds[-1]
        assert not any("http GET" in r for r in rounds)  # the synthetic probe is off: users alone
        if aborted:
            assert_aborted(out, ns, r1, gateway)
            assert "[PASS]" not in rounds[-1]
        else:
            assert out.returncode == 0, out.stderr
            assert "promoted" in out.stdout and "after its canary passed" in out.stdout, out.stdout
        if rate == 1:
            assert "still undecided: analysing on, up to 45s" in out.stderr, out.stderr
            assert "too few requests" in out.stderr.strip().splitlines()[-1]
    finally:
        delete_namespaces(namespaces.values())


def test_the_lab_prometheus_counts_users_per_gateway_backend(real_node, local_parts, hellok8s_image, project_repo,
                                                             tmp_path):
    """The service label ship reads is the one Traefik writes: NAMESPACE-NAME-http-PORT@kubernetesgateway,
    by code, with a latency histogram; ship's selector finds it."""
    work, _, namespaces = new_repo(tmp_path, project_repo)
    ns, gateway, prom = namespaces["prod"], local_parts["SHIP_GATEWAY_URL"], local_parts["SHIP_PROMETHEUS_URL"]
    try:
        set_canary(work, policy(local_parts, ns, prom))
        commit_all(work, "prod: routed by the gateway")
        for step in (["release", "dev", "--image", hellok8s_image], ["promote", "dev", "uat"], ["promote", "uat", "prod"]):
            assert ship(work, *step).returncode == 0, step
        wait_routed(gateway, ns)
        with Users(gateway, host_for(ns), rate=10, limit=50) as users:
            users.wait()
        wait_counted(prom, stable_service(ns))
        assert users.sent == 50
        series = prometheus_query(prom, f'traefik_service_requests_total{{service="{stable_service(ns)}"}}')
        assert {s["metric"]["code"] for s in series} == {"200"}
        deadline = time.monotonic() + 30  # the last answers within a scrape or two
        while sum(float(s["value"][1]) for s in series) < 50:
            assert time.monotonic() < deadline, series
            time.sleep(1)
            series = prometheus_query(prom, f'traefik_service_requests_total{{service="{stable_service(ns)}"}}')
        buckets = prometheus_query(prom, f'traefik_service_request_duration_seconds_bucket{{service="{stable_service(ns)}"}}')
        assert {"1", "+Inf"} <= {b["metric"]["le"] for b in buckets}
        track = {"namespace": ns, "app": "hellok8s", "track": "stable", "service": "hellok8s", "port": "3000"}
        selected = prometheus_query(prom, counters.selectors(TrafficInput("traefik", prom), track).requests)
        assert {s["metric"]["service"] for s in selected} == {stable_service(ns)}
    finally:
        delete_namespaces(namespaces.values())


def start_ship(work, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=work, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, SECRET_VAR: "pw"})


def lines_until(proc: subprocess.Popen, words: str) -> list[str]:
    """stderr lines of a running ship up to the first one holding `words`."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f"ship ended before {words!r}:\n{''.join(seen)}")


class OwnPrometheus:
    """A Prometheus of this test's own, scraping the lab's Traefik, to stop mid-bake (the lab's
    Prometheus is shared: never stopped)."""

    def __init__(self, folder, traefik_metrics: str):
        self.port = free_port()
        config = folder / "prometheus.yml"
        config.write_text("global: {scrape_interval: 2s, evaluation_interval: 2s}\nscrape_configs:\n"
                          f"  - job_name: traefik\n    static_configs: [{{targets: ['{traefik_metrics}']}}]\n")
        self.proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(f"{self.url}/-/ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def test_prometheus_stopped_mid_bake_is_undecided_then_failed(real_node, local_parts, hellok8s_image, project_repo,
                                                              tmp_path):
    work, _, namespaces = new_repo(tmp_path, project_repo)
    ns, gateway = namespaces["prod"], local_parts["SHIP_GATEWAY_URL"]
    own = OwnPrometheus(tmp_path, httpx.URL(local_parts["SHIP_GATEWAY_METRICS_URL"]).netloc.decode())
    try:
        r1 = prod_beside_next(work, namespaces, local_parts, hellok8s_image,
                              policy(local_parts, ns, own.url, bake="40s", max_bake="60s"), {}, {})
        with Users(gateway, host_for(ns), rate=10, seconds=400) as users:
            wait_counted(own.url, stable_service(ns))
            promote = start_ship(work, "promote", "uat", "prod")
            early = lines_until(promote, "analysis round 3:")
            own.stop()  # Prometheus goes away in the middle of the bake
            _, rest = promote.communicate(timeout=600)
            err_text = "".join(early) + rest
        print(f"users {users.by_track()}\n" + "\n".join(line for line in err_text.splitlines() if "analysis round" in line)[-2000:])
        assert promote.returncode != 0, err_text
        assert f"Prometheus at {own.url} did not answer (no answer)" in err_text
        last = err_text.strip().splitlines()[-1]
        assert "Inconclusive" in last and "did not answer" in last, last
        assert f"stable {r1} untouched" in last, last
    finally:
        own.stop()
        delete_namespaces(namespaces.values())


class OwnGateway:
    """A Traefik of this test's own (the lab's is shared: never stopped), routing users by a file
    of its own to the stable's pods and, once written, the canary's, 90/10; its metrics on an
    admin port, its services named stable@file and canary@file."""

    def __init__(self, folder, host: str):
        version = re.search(r"TRAEFIK_VERSION:-(\S+)}", (ROOT / "hack/versions.env").read_text())[1]
        binary = Path(os.environ.get("SHIP_CACHE", Path.home() / ".cache/ship")) / "bin" / f"traefik-{version}"
        if not binary.exists():
            pytest.skip(f"no {binary} (make binaries builds it)")
        self.web, self.admin, self.host = free_port(), free_port(), host
        self.dynamic = folder / "dynamic"
        self.dynamic.mkdir()
        self.proc = subprocess.Popen(
            [str(binary), "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
             f"--entryPoints.web.address=127.0.0.1:{self.web}", f"--entryPoints.traefik.address=127.0.0.1:{self.admin}",
             "--ping=true", "--ping.entryPoint=traefik", "--metrics.prometheus=true",
             "--metrics.prometheus.entryPoint=traefik", f"--providers.file.directory={self.dynamic}",
             "--providers.file.watch=true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url, self.metrics = f"http://127.0.0.1:{self.web}", f"127.0.0.1:{self.admin}"
        wait_http(f"http://127.0.0.1:{self.admin}/ping")

    def route(self, stable: list[str], canary: list[str]) -> None:
        """Users to the stable pods' IPs, and 10% to the canary's when there are any."""
        def servers(ips):
            return {"loadBalancer": {"servers": [{"url": f"http://{ip}:3000"} for ip in ips]}}
        services = {"stable": servers(stable)}
        if canary:
            services["canary"] = servers(canary)
            services["split"] = {"weighted": {"services": [{"name": "stable", "weight": 90},
                                                           {"name": "canary", "weight": 10}]}}
        router = {"rule": f"Host(`{self.host}`)", "entryPoints": ["web"], "service": "split" if canary else "stable"}
        (self.dynamic / "users.yaml").write_text(yaml.safe_dump({"http": {"routers": {"users": router},
                                                                          "services": services}}))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def pod_ips(ns: str, track: str) -> list[str]:
    pods = kubectl_json("-n", ns, "get", "pods", "-l", f"ship.dev/track={track}")["items"]
    return [p["status"]["podIP"] for p in pods if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
            and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]


def test_the_gateway_stopped_mid_bake_leaves_no_canary_samples_and_fails(real_node, local_parts, hellok8s_image,
                                                                         project_repo, tmp_path):
    """Users go through a gateway of this test's own; it stops in the middle of the bake: users
    get errors, Prometheus loses the gateway's series, the canary gets no samples: the step is
    undecided, then fails, and the stable is untouched."""
    work, _, namespaces = new_repo(tmp_path, project_repo)
    ns = namespaces["prod"]
    gateway = OwnGateway(tmp_path, host_for(ns))
    own = OwnPrometheus(tmp_path, gateway.metrics)
    counters = "traefik_service_requests_total{service=\"{track}@file\""
    extra = (f"  requests: '{counters}}}'\n  errors: '{counters},code=~\"5..\"}}'\n")
    canary = policy(local_parts, ns, own.url, bake="30s", max_bake="45s", extra=extra).replace("provider: traefik",
                                                                                               "provider: prometheus")
    try:
        r1 = prod_beside_next(work, namespaces, local_parts, hellok8s_image, canary, {}, {})
        gateway.route(pod_ips(ns, "stable"), [])
        with Users(gateway.url, host_for(ns), rate=10, seconds=400) as users:
            wait_counted(own.url, "stable@file")
            promote = start_ship(work, "promote", "uat", "prod")
            early = lines_until(promote, "analysing hellok8s-canary")
            deadline = time.monotonic() + 120
            while not pod_ips(ns, "canary"):
                assert time.monotonic() < deadline, "no ready canary pod within 120s"
                time.sleep(1)
            gateway.route(pod_ips(ns, "stable"), pod_ips(ns, "canary"))
            early += lines_until(promote, "analysis round 4:")
            gateway.stop()  # the gateway goes away in the middle of the bake
            _, rest = promote.communicate(timeout=600)
            err_text = "".join(early) + rest
        rounds = [line for line in err_text.splitlines() if "analysis round" in line]
        print(f"users {users.by_track()}\n" + "\n".join(rounds[-2:]))
        assert users.by_track()[""][1] > 0  # users met the stopped gateway: errors nobody counted
        assert promote.returncode != 0, err_text
        assert "the gateway's series for the canary and the stable are gone" in err_text, rounds
        last = err_text.strip().splitlines()[-1]
        assert "too few requests" in last and f"stable {r1} untouched" in last, last
    finally:
        gateway.stop()
        own.stop()
        delete_namespaces(namespaces.values())
