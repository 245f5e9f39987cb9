"""Canary promotion on the local cluster: `ship promote uat prod --canary 10` for each router,
steps, --hold/--resume, abort (by hand, on never-ready pods, on failed HTTP and Prometheus
analysis against real hellok8s processes and a real Prometheus), a crash mid-canary, the lock."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import git
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import commit_all, free_port, start_hellok8s
from tests.rollout.test_multiapp_live import pods_refused

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]
SHIP = [sys.executable, "-m", "pipeline"]


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def kubectl_json(ns: str, *what: str) -> dict:
    out = subprocess.run(["kubectl", "-n", ns, "get", *what, "-o", "json"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def exists(ns: str, *what: str) -> bool:
    return bool(kubectl_json(ns, *what))


def subjects(bare: Path) -> list[str]:
    return git.Repo(bare).git.log("--format=%s", "main").splitlines()


def history(env: str) -> dict[str, tuple[str, str]]:
    out = ship("history", env, "--output", "json")
    return {r["id"]: (r["outcome"], r["reason"]) for r in json.loads(out.stdout)["releases"]}


def set_canary(work: Path, block: str) -> None:
    """Replace prod's canary policy in ship.yaml (prod is the file's last environment)."""
    cfg = work / "ship.yaml"
    text = cfg.read_text()
    text = text.replace("gates: {timeout: 120s, bake: 10s}", "gates: {timeout: 30s}")
    text = text.replace("gates: {timeout: 90s, bake: 5s}", "gates: {timeout: 30s}")
    text = text[:text.index("    canary:\n")] + "    canary:\n" + "".join(f"      {line}\n" for line in block.splitlines())
    cfg.write_text(text)


@pytest.fixture
def prod_stable(env_repo, hellok8s_image, monkeypatch, request):
    """prod on a stable release r1; uat one release ahead (r2, a config change); returns
    (work, bare, namespaces, r1, r2) and a function to change prod's canary policy. The router
    (gateway unless parametrized) is set before r1, as a router takes effect with a release."""
    work, bare, namespaces = env_repo
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "pw")
    router = getattr(request, "param", "gateway")
    set_canary(work, f"router: {router}\nhost: hellok8s.example.com\ninterval: 1s\nsteps:\n  - {{weight: 10, bake: 2s}}")
    commit_all(work, "short gates for tests")
    assert ship("release", "dev", "--image", hellok8s_image).exit_code == 0
    assert ship("promote", "dev", "uat").exit_code == 0
    first = ship("promote", "uat", "prod", "--output", "json")
    assert first.exit_code == 0, first.output
    r1 = json.loads(first.stdout)["release"]["id"]
    env = work / "apps/hellok8s/config/dev.env"
    env.write_text(env.read_text().replace("Hello from dev", "Hello again from dev"))
    commit_all(work, "dev: a new greeting")
    out = ship("release", "dev", "--image", hellok8s_image, "--output", "json")
    assert out.exit_code == 0, out.output
    r2 = json.loads(out.stdout)["release"]["id"]
    assert ship("promote", "dev", "uat").exit_code == 0

    def policy(block: str) -> None:
        set_canary(work, block)
        commit_all(work, "prod canary policy for this test")

    return work, bare, namespaces, r1, r2, policy


def stable_release(ns: str) -> str:
    return kubectl_json(ns, "deployment", "hellok8s")["metadata"]["annotations"]["ship.dev/release"]


def test_gateway_canary_holds_then_resumes_to_full_promotion(prod_stable):
    work, bare, namespaces, r1, r2, _ = prod_stable
    ns = namespaces["prod"]
    held = ship("promote", "uat", "prod", "--canary", "10", "--hold")
    assert held.exit_code == 0, held.output
    assert "is held as a canary in prod" in held.stdout
    route = kubectl_json(ns, "httproute", "hellok8s")
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == \
        [("hellok8s", 90), ("hellok8s-canary", 10)]
    assert route["spec"]["hostnames"] == ["hellok8s.example.com"]
    canary = kubectl_json(ns, "deployment", "hellok8s-canary")
    assert canary["spec"]["replicas"] == 1  # ceil(10% of 3)
    assert canary["metadata"]["annotations"]["ship.dev/release"] == r2
    assert canary["spec"]["selector"]["matchLabels"]["ship.dev/track"] == "canary"
    assert kubectl_json(ns, "service", "hellok8s")["spec"]["selector"]["ship.dev/track"] == "stable"
    assert kubectl_json(ns, "service", "hellok8s-canary")["spec"]["selector"]["ship.dev/track"] == "canary"
    assert stable_release(ns) == r1
    status = ship("status", "prod")
    assert f"prod: {r1} stable, {r2} canary 10% (step 1/1, held for a decision)" in status.stdout
    assert history("prod")[r2][0] == "canary"
    assert f"canary(prod): hellok8s@{r2} held at 10% after analysis passed" in subjects(bare)

    done = ship("promote", "uat", "prod", "--resume")
    assert done.exit_code == 0, done.output
    assert f"promoted hellok8s@{r2} to prod after its canary passed" in done.stdout
    route = kubectl_json(ns, "httproute", "hellok8s")
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [("hellok8s", 100)]
    assert not exists(ns, "deployment", "hellok8s-canary") or \
        kubectl_json(ns, "deployment", "hellok8s-canary")["metadata"].get("deletionTimestamp")
    assert not exists(ns, "service", "hellok8s-canary")
    assert stable_release(ns) == r2
    assert f"promote(prod): hellok8s@{r2} after canary 10% passed" in subjects(bare)
    assert history("prod")[r2] == ("healthy", "canary 10% passed")
    assert not (work / "environments/prod/hellok8s/canary.yaml").exists()
    assert "canary" not in ship("status", "prod", "--output", "json").stdout.split('"canary":')[1].split(",")[0]


def test_steps_run_in_order_and_each_weight_reaches_the_api_server(prod_stable):
    work, bare, namespaces, r1, r2, policy = prod_stable
    policy("router: gateway\ninterval: 1s\nsteps:\n  - {weight: 10, bake: 1s}\n  - {weight: 50, bake: 1s}")
    out = ship("promote", "uat", "prod", "--output", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["outcome"] == "promoted"
    assert [s["live_weights"] for s in data["steps"]] == [{"hellok8s": 90, "hellok8s-canary": 10},
                                                           {"hellok8s": 50, "hellok8s-canary": 50}]
    assert all(s["gate"]["passed"] for s in data["steps"])
    log = subjects(bare)
    assert log.index(f"promote(prod): hellok8s@{r2} after canary 10% → 50% passed") < \
        log.index(f"canary(prod): hellok8s@{r2} at 50% (step 2/2, from uat)") < \
        log.index(f"canary(prod): hellok8s@{r2} at 10% (step 1/2, from uat)")
    assert stable_release(namespaces["prod"]) == r2


@pytest.mark.parametrize("prod_stable", ["nginx"], indirect=True)
def test_nginx_canary_is_a_second_ingress_with_the_canary_weight(prod_stable):
    work, bare, namespaces, r1, r2, policy = prod_stable
    ns = namespaces["prod"]
    policy("router: nginx\nhost: hellok8s.example.com\ninterval: 1s\nsteps:\n  - {weight: 10, bake: 1s}")
    assert exists(ns, "ingress", "hellok8s") and not exists(ns, "httproute", "hellok8s")
    assert ship("promote", "uat", "prod", "--canary", "10", "--hold").exit_code == 0
    stable = kubectl_json(ns, "ingress", "hellok8s")
    canary = kubectl_json(ns, "ingress", "hellok8s-canary")
    assert stable["spec"]["rules"][0]["host"] == canary["spec"]["rules"][0]["host"] == "hellok8s.example.com"
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "10"
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "hellok8s-canary"
    assert ship("promote", "uat", "prod", "--resume").exit_code == 0
    assert exists(ns, "ingress", "hellok8s") and not exists(ns, "ingress", "hellok8s-canary")
    assert stable_release(ns) == r2


@pytest.mark.parametrize("prod_stable", ["replicas"], indirect=True)
def test_replicas_canary_shares_the_stable_service_by_pod_count(prod_stable):
    work, bare, namespaces, r1, r2, policy = prod_stable
    ns = namespaces["prod"]
    policy("router: replicas\ninterval: 1s\nsteps:\n  - {weight: 50, bake: 1s}")
    assert ship("promote", "uat", "prod", "--hold").exit_code == 0
    assert kubectl_json(ns, "deployment", "hellok8s-canary")["spec"]["replicas"] == 2  # ceil(50% of 3)
    selector = kubectl_json(ns, "service", "hellok8s")["spec"]["selector"]
    assert "ship.dev/track" not in selector  # the stable Service sends traffic to canary pods too
    pods = kubectl_json(ns, "pods", "-l", ",".join(f"{k}={v}" for k, v in selector.items()))["items"]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert sorted(p["metadata"]["annotations"]["ship.dev/release"] for p in running) == sorted([r1] * 3 + [r2] * 2)
    assert not exists(ns, "httproute", "hellok8s")
    assert ship("promote", "uat", "prod", "--resume").exit_code == 0
    assert stable_release(ns) == r2


def test_never_ready_canary_aborts_and_leaves_stable_untouched(prod_stable):
    work, bare, namespaces, r1, r2, policy = prod_stable
    ns = namespaces["prod"]
    policy("router: gateway\ninterval: 1s\nsteps:\n  - {weight: 10, bake: 8s}")
    before = kubectl_json(ns, "deployment", "hellok8s")
    # The API server refuses r2's pods: the canary never gets one. (A live patch of the canary
    # would not do: its warm-up and its step each apply it, and ship takes back kubectl's fields.)
    with pods_refused(ns, "hellok8s", r2):
        out = ship("promote", "uat", "prod")
    assert out.exit_code != 0
    assert re.search(r"GateFailed: prod: canary 10% failed: Deployment/\S+/hellok8s-canary", out.stderr), out.stderr
    assert "warming up" in out.stderr and not any(s.startswith("canary(prod)") for s in subjects(bare))
    assert f"stable {r1} untouched, {r2} rejected" in out.stderr
    after = kubectl_json(ns, "deployment", "hellok8s")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert stable_release(ns) == r1
    route = kubectl_json(ns, "httproute", "hellok8s")
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [("hellok8s", 100)]
    assert history("prod")[r2][0] == "rejected"
    assert any(s.startswith(f"abort(prod): hellok8s@{r2} canary at 10%: canary 10% failed") for s in subjects(bare))
    again = ship("promote", "uat", "prod")
    assert again.exit_code == 1 and f"PromotionError: hellok8s@{r2} was rejected in prod" in again.stderr


def test_hold_then_abort_by_hand(prod_stable):
    work, bare, namespaces, r1, r2, _ = prod_stable
    ns = namespaces["prod"]
    assert ship("promote", "uat", "prod", "--hold").exit_code == 0
    out = ship("abort", "prod", "--reason", "latency looks off")
    assert out.exit_code == 0, out.output
    assert f"aborted the canary of {r2} in prod: latency looks off" in out.stdout
    assert "weight 0: live weights: hellok8s 100%, hellok8s-canary 0%" in out.stderr
    assert not exists(ns, "service", "hellok8s-canary") and stable_release(ns) == r1
    assert history("prod")[r2] == ("rejected", "latency looks off")
    # The abort leaves prod in sync: the canary's ConfigMap went with its Deployment.
    diff = ship("diff", "prod")
    assert diff.exit_code == 0, diff.output
    assert ship("abort", "prod").exit_code == 1  # nothing left to abort


def analysed(policy, check: str) -> None:
    policy("router: gateway\ninterval: 1s\nsteps:\n  - {weight: 10, bake: 4s}\n" + check)


@pytest.mark.parametrize("fail_mode", ["", "errors"])
def test_http_analysis_against_a_real_hellok8s(prod_stable, hellok8s_binary, fail_mode):
    work, bare, namespaces, r1, r2, policy = prod_stable
    port = free_port()
    with start_hellok8s(hellok8s_binary, port, fail_mode):
        analysed(policy, f"http:\n  - {{url: 'http://127.0.0.1:{port}/', requests: 10, success_ratio: 0.9, "
                         "max_latency_ms: 500}")
        out = ship("promote", "uat", "prod")
    if not fail_mode:
        assert out.exit_code == 0, out.output
        # The same URL serves both tracks here, so the stable's tally equals the canary's.
        assert re.search(r"analysis round \d+: http GET http://127.0.0.1:\d+/: canary 0/\d+ errors \(0.0%\) vs stable "
                         r"0/\d+ .*\[ok\]", out.stderr), out.stderr
        assert stable_release(namespaces["prod"]) == r2
    else:
        assert out.exit_code != 0
        assert "canary 10/10 errors (100.0%)" in out.stderr and "[FAIL]" in out.stderr
        assert stable_release(namespaces["prod"]) == r1 and history("prod")[r2][0] == "rejected"


@pytest.mark.parametrize("fail_mode", ["", "errors"])
def test_prometheus_analysis_against_a_real_prometheus(prod_stable, hellok8s_binary, prometheus_server, fail_mode):
    work, bare, namespaces, r1, r2, policy = prod_stable
    port = free_port()
    with start_hellok8s(hellok8s_binary, port, fail_mode):
        prom = prometheus_server([f"127.0.0.1:{port}"])
        stop = threading.Event()
        load = threading.Thread(target=_load, args=(f"http://127.0.0.1:{port}/", stop), daemon=True)
        load.start()
        query = ('(sum(rate(hellok8s_http_requests_total{code=~"5.."}[5s])) or vector(0))'
                 ' / sum(rate(hellok8s_http_requests_total[5s]))')
        analysed(policy, f"prometheus:\n  - {{url: '{prom}', query: '{query}', max: 0.05}}")
        try:
            out = ship("promote", "uat", "prod")
        finally:
            stop.set()
    if not fail_mode:
        assert out.exit_code == 0, out.output
        assert re.search(r"prometheus .*: 0 vs ≤ 0.05 \[ok\]", out.stderr), out.stderr
        assert stable_release(namespaces["prod"]) == r2
    else:
        assert out.exit_code != 0
        # Most answers are 500s; the rest (Prometheus's own scrapes of /metrics count too) keep it
        # a little under 1 (0.895 was seen), far over the 0.05 limit either way.
        assert re.search(r"prometheus .*: (0\.[5-9]\d*|1) vs ≤ 0.05 \[FAILED\]", out.stderr), out.stderr
        assert stable_release(namespaces["prod"]) == r1


def _load(url: str, stop: threading.Event) -> None:
    import httpx

    with httpx.Client() as client:
        while not stop.is_set():
            try:
                client.get(url, timeout=2)
            except httpx.HTTPError:
                pass
            stop.wait(0.05)


def test_a_crash_mid_canary_is_reported_and_a_rerun_finishes_it(prod_stable):
    work, bare, namespaces, r1, r2, policy = prod_stable
    ns = namespaces["prod"]
    policy("router: gateway\ninterval: 1s\nsteps:\n  - {weight: 10, bake: 6s}")
    proc = subprocess.Popen([*SHIP, "promote", "uat", "prod"], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "baking" not in (line := proc.stderr.readline()):
        assert line or proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    status = ship("status", "prod")
    assert f"prod: {r1} stable, {r2} canary 10% (step 1/1)" in status.stdout, status.output
    again = ship("promote", "uat", "prod")  # continues the canary as git recorded it
    assert again.exit_code == 0, again.output
    assert "is already in progress in prod; continuing it" in again.stderr
    assert "took over prod's lock" in again.stderr
    assert stable_release(ns) == r2 and not exists(ns, "service", "hellok8s-canary")


def test_a_promote_waits_for_prods_lock(prod_stable):
    from pipeline.kube.client import Cluster
    from pipeline.kube.lock import EnvironmentLock, LockOptions

    work, bare, namespaces, r1, r2, policy = prod_stable
    cluster = Cluster()
    held = EnvironmentLock(cluster, "prod", namespaces["prod"], LockOptions(duration=15))
    held.acquire()
    try:
        proc = subprocess.Popen([*SHIP, "promote", "uat", "prod", "--canary", "10"], cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        assert proc.poll() is None
    finally:
        held.release()
        cluster.close()
    out, errs = proc.communicate(timeout=120)
    assert proc.returncode == 0, errs
    assert f"waiting for prod's lock, held by {held.holder}" in errs
    assert stable_release(namespaces["prod"]) == r2
