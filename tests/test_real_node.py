"""Real pods on ship's real node (hack/real-node.sh): containerd runs the containers, the kubelet
runs the probes, Traefik routes by the HTTPRoute's weights, Prometheus scrapes the pods.

ship is driven through its CLI in a subprocess (`python -m pipeline`), in a throw-away copy of
this repository whose base carries a toleration and a nodeSelector for the real node, so every
release, rollback and canary here runs real processes.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, bare_and_clone, commit_all, unique_namespaces

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]
SECRET_VAR = "SHIP_SECRET_HELLOK8S_DB_PASSWORD"

# A kustomize patch in the app's base: every Deployment rendered from it (the canary too) lands
# on the real node, and a release that cannot become ready fails within 20s.
REAL_NODE_PATCH = """\
# Real pods: tolerate the real node's taint and select it (hack/real-node.sh).
apiVersion: apps/v1
kind: Deployment
metadata: {name: hellok8s}
spec:
  progressDeadlineSeconds: 20
  template:
    spec:
      nodeSelector: {ship.dev/real-node: "true"}
      tolerations: [{key: ship.dev/real-node, operator: Exists, effect: NoSchedule}]
"""


def ship(work: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=work, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, SECRET_VAR: "pw"})


def kubectl(*args: str) -> str:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=True).stdout


def kubectl_json(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json"))


def land_on_real_node(work: Path) -> None:
    base = work / "apps/hellok8s/base"
    (base / "real-node.yaml").write_text(REAL_NODE_PATCH)
    kz = base / "kustomization.yaml"
    kz.write_text(kz.read_text() + "\npatches:\n  - path: real-node.yaml\n")


def short_gates(work: Path) -> None:
    cfg = work / "ship.yaml"
    text = cfg.read_text()
    text = text.replace("gates: {timeout: 90s, bake: 5s}", "gates: {timeout: 90s}")
    text = text.replace("gates: {timeout: 120s, bake: 10s}", "gates: {timeout: 90s}")
    cfg.write_text(text)


def set_canary(work: Path, block: str) -> None:
    """Replace prod's canary policy in ship.yaml (prod is the file's last environment)."""
    cfg = work / "ship.yaml"
    text = cfg.read_text()
    text = text[:text.index("    canary:\n")] + "    canary:\n" + "".join(f"      {line}\n" for line in block.splitlines())
    cfg.write_text(text)


def set_config(work: Path, env: str, **values: str) -> None:
    path = work / f"apps/hellok8s/config/{env}.env"
    lines = [line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in values]
    path.write_text("\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n")


def running_pods(ns: str, selector: str = "app.kubernetes.io/name=hellok8s") -> list[dict]:
    pods = kubectl_json("-n", ns, "get", "pods", "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def delete_namespaces(namespaces) -> None:
    for ns in namespaces:
        subprocess.run(["kubectl", "delete", "namespace", ns, "--wait=false", "--ignore-not-found"],
                       capture_output=True)


def new_repo(tmp: Path, project: Path) -> tuple[Path, Path, dict[str, str]]:
    """This repository's ship.yaml and apps/ (from `project`, the commit the session's image was
    built from) with a bare remote, namespaces of its own, pods on the real node and short gates:
    (work, bare, {env: namespace})."""
    bare, work, repo = bare_and_clone(tmp, "repo")
    repo.git.fetch(str(project), "main")
    repo.git.reset("--hard", "FETCH_HEAD")
    for env in ("dev", "uat", "prod"):
        (work / "environments" / env).mkdir(parents=True)
        (work / "environments" / env / ".gitkeep").write_text("")
    suffix = uuid.uuid4().hex[:6]
    unique_namespaces(work / "ship.yaml", suffix)
    land_on_real_node(work)
    short_gates(work)
    repo.git.add("--all")
    repo.index.commit("initial: pods on the real node")
    repo.git.push("origin", "HEAD:main")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    return work, bare, {env: f"hellok8s-{env}-{suffix}" for env in ("dev", "uat", "prod")}


@pytest.fixture
def real_repo(real_node, local_parts, project_repo, tmp_path):
    work, bare, namespaces = new_repo(tmp_path, project_repo)
    yield work, bare, namespaces
    delete_namespaces(namespaces.values())


# ---------------------------------------------------------------------------------------- node
def test_the_real_node_runs_containerd_and_is_ready_beside_the_kwok_nodes(real_node):
    rows = [line.split() for line in kubectl("get", "nodes", "-o", "wide").splitlines()[1:]]
    real = [r for r in rows if any(c.startswith("containerd://") for c in r)]
    assert [(r[0], r[1]) for r in real] == [(real_node, "Ready")], rows
    assert len(rows) >= 4  # and the KWOK nodes
    node = kubectl_json("get", "node", real_node)
    assert {"key": "ship.dev/real-node", "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["metadata"]["labels"]["ship.dev/real-node"] == "true"
    assert "kwok.x-k8s.io/node" not in (node["metadata"].get("annotations") or {})  # kwok leaves it alone


# -------------------------------------------------------------------------------------- gates
def release(work: Path, image: str) -> subprocess.CompletedProcess:
    return ship(work, "release", "dev", "--image", image, "--output", "json")


def assert_serves(ns: str, real_node: str, config: str, message: str) -> None:
    """Every pod of `ns` runs on the real node from ConfigMap `config`, is ready, and answers
    GET / at its pod IP with `message`: the release that should run, runs."""
    pods = running_pods(ns)
    assert len(pods) == 3, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        assert pod["spec"]["nodeName"] == real_node
        assert pod["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == config
        assert all(c["ready"] for c in pod["status"]["containerStatuses"]), pod["status"]
        answer = httpx.get(f"http://{pod['status']['podIP']}:3000/", timeout=5)
        assert answer.status_code == 200 and f"Message: {message}," in answer.text, answer.text


@pytest.mark.parametrize("failure, caught_by", [
    ({"FAIL_MODE": "crash"}, "CrashLoopBackOff"),             # the container exits 1 at start
    ({"FAIL_MODE": "unready"}, "ProgressDeadlineExceeded"),   # /readyz answers 503
], ids=["exits", "unready"])
def test_a_failing_release_on_real_pods_is_rolled_back(real_repo, real_node, hellok8s_image, failure, caught_by):
    work, bare, namespaces = real_repo
    ns = namespaces["dev"]
    good = release(work, hellok8s_image)
    assert good.returncode == 0, good.stderr
    good = json.loads(good.stdout)["release"]
    assert_serves(ns, real_node, good["config"], "Hello from dev")
    # logs come from the kubelet, through the API server: the process really started.
    assert re.search(r"hellok8s \S+ starting on :3000 \(namespace=\"" + ns, kubectl("-n", ns, "logs", "deploy/hellok8s"))

    set_config(work, "dev", MESSAGE="a broken release", **failure)
    commit_all(work, f"dev: {failure}")
    bad = release(work, hellok8s_image)
    assert bad.returncode == 1, bad.stderr
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("GateFailed: dev: r") and caught_by in bad.stderr, bad.stderr
    assert last.endswith(f"rolled back to {good['id']}"), last
    live = kubectl_json("-n", ns, "get", "deployment", "hellok8s")
    assert live["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == good["config"]
    assert live["status"].get("readyReplicas") == 3
    assert_serves(ns, real_node, good["config"], "Hello from dev")


# ------------------------------------------------------------------------- gateway, Prometheus
@pytest.fixture(scope="module")
def held_canary(real_node, local_parts, hellok8s_image, project_repo, tmp_path_factory):
    """prod runs r1 as stable and r2 as a 10% canary, held, routed by the real gateway:
    (work, namespaces, r1, r2)."""
    assert "SHIP_GATEWAY" in local_parts and "SHIP_GATEWAY_URL" in local_parts, local_parts
    work, bare, namespaces = new_repo(tmp_path_factory.mktemp("held-canary"), project_repo)
    set_canary(work, f"router: gateway\ngateway: {local_parts['SHIP_GATEWAY']}\nhost: {host_for(namespaces['prod'])}\n"
                     "interval: 1s\nsteps:\n  - {weight: 10, bake: 2s}")
    commit_all(work, "prod: a canary routed by ship's gateway")
    try:
        for step in (["release", "dev", "--image", hellok8s_image], ["promote", "dev", "uat"], ["promote", "uat", "prod"]):
            out = ship(work, *step)
            assert out.returncode == 0, (step, out.stderr)
        r1 = kubectl_json("-n", namespaces["prod"], "get", "deployment", "hellok8s")["metadata"]["annotations"]["ship.dev/release"]
        set_config(work, "dev", MESSAGE="Hello again from dev")
        commit_all(work, "dev: a new greeting")
        for step in (["release", "dev", "--image", hellok8s_image], ["promote", "dev", "uat"],
                     ["promote", "uat", "prod", "--canary", "10", "--hold"]):
            out = ship(work, *step)
            assert out.returncode == 0, (step, out.stderr)
        assert "is held as a canary in prod" in out.stdout, out.stdout
        r2 = kubectl_json("-n", namespaces["prod"], "get", "deployment", "hellok8s-canary")["metadata"]["annotations"]["ship.dev/release"]
        yield work, namespaces, r1, r2
    finally:
        delete_namespaces(namespaces.values())


def host_for(ns: str) -> str:
    """The route's hostname: one per test, as every test's HTTPRoute attaches to the same Gateway
    (two routes for one hostname and path would take each other's traffic)."""
    return f"{ns}.example.com"


def route_accepted(ns: str) -> bool:
    route = kubectl_json("-n", ns, "get", "httproute", "hellok8s")
    conditions = {c["type"]: c["status"] for p in route.get("status", {}).get("parents", []) for c in p["conditions"]}
    return conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True"


def through_gateway(url: str, ns: str, n: int) -> list[httpx.Response]:
    with httpx.Client(base_url=url, headers={"Host": host_for(ns)}, timeout=5) as client:
        return [client.get("/") for _ in range(n)]


def wait_routed(url: str, ns: str, timeout: float = 60) -> None:
    """Traefik has the route: the HTTPRoute is accepted and 20 answers in a row are 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if route_accepted(ns) and all(r.status_code == 200 for r in through_gateway(url, ns, 20)):
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the gateway did not route {host_for(ns)} to {ns} within {timeout:.0f}s"
        time.sleep(0.5)


def test_the_gateway_splits_real_traffic_by_the_httproute_weights(held_canary, local_parts):
    work, namespaces, r1, r2 = held_canary
    ns = namespaces["prod"]
    route = kubectl_json("-n", ns, "get", "httproute", "hellok8s")
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == \
        [("hellok8s", 90), ("hellok8s-canary", 10)]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "ship-gateway", "namespace": "ship-system"}]
    wait_routed(local_parts["SHIP_GATEWAY_URL"], ns)
    n = 400
    answers = through_gateway(local_parts["SHIP_GATEWAY_URL"], ns, n)
    assert collections.Counter(a.status_code for a in answers) == {200: n}
    tracks = collections.Counter(a.headers["X-Track"] for a in answers)
    assert set(tracks) == {"stable", "canary"}, tracks
    # The header tells the truth: the body names the pod that answered.
    for a in answers:
        host = re.search(r"host: (\S+),", a.text).group(1)
        assert host.startswith("hellok8s-canary-") == (a.headers["X-Track"] == "canary"), (host, a.headers)
    canary_pods = {p["metadata"]["name"] for p in running_pods(ns, "ship.dev/track=canary")}
    assert {re.search(r"host: (\S+),", a.text).group(1) for a in answers if a.headers["X-Track"] == "canary"} <= canary_pods
    # Binomial(n, 10%): within 4 standard deviations (a 1 in 15,000 chance to fail by bad luck).
    sigma = math.sqrt(n * 0.1 * 0.9)
    print(f"{n} requests through {local_parts['SHIP_GATEWAY_URL']}: {dict(tracks)}; canary share "
          f"{tracks['canary'] / n:.1%} (expected 10% ± {4 * sigma / n:.1%})")
    assert abs(tracks["canary"] - n * 0.1) <= 4 * sigma, tracks


def prometheus_query(url: str, query: str) -> list[dict]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def test_prometheus_scrapes_both_tracks_of_the_real_pods(held_canary, local_parts):
    work, namespaces, r1, r2 = held_canary
    ns = namespaces["prod"]
    prom = local_parts["SHIP_PROMETHEUS_URL"]
    query = f'sum by (track, ship_dev_track) (hellok8s_http_requests_total{{namespace="{ns}",code="200"}})'
    wait_routed(local_parts["SHIP_GATEWAY_URL"], ns)
    deadline = time.monotonic() + 60
    while not {r["metric"].get("track") for r in prometheus_query(prom, query)} >= {"stable", "canary"}:
        assert time.monotonic() < deadline, prometheus_query(prom, query)
        time.sleep(1)
    before = {r["metric"]["track"]: float(r["value"][1]) for r in prometheus_query(prom, query)}
    answers = through_gateway(local_parts["SHIP_GATEWAY_URL"], ns, 200)
    served = collections.Counter(a.headers["X-Track"] for a in answers if a.status_code == 200)
    # Within a few scrapes (every 2s) the counters include every answer just served.
    deadline = time.monotonic() + 30
    while True:
        result = prometheus_query(prom, query)
        now = {r["metric"]["track"]: float(r["value"][1]) for r in result}
        if all(now.get(t, 0) - before.get(t, 0) >= served[t] for t in served):
            break
        assert time.monotonic() < deadline, (before, now, served)
        time.sleep(1)
    # The app's track and the pod's ship.dev/track label (kept as ship_dev_track) agree.
    assert {(r["metric"]["track"], r["metric"]["ship_dev_track"]) for r in result} == {("stable", "stable"),
                                                                                          ("canary", "canary")}
    series = prometheus_query(prom, f'hellok8s_http_requests_total{{namespace="{ns}",track="canary"}}')
    assert series and all(s["metric"]["pod"].startswith("hellok8s-canary-") for s in series), series
    assert {s["metric"]["job"] for s in series} == {"pods"}


def load(url: str, ns: str, stop: threading.Event, answers: list | None = None) -> None:
    """Steady traffic through the gateway (about 50 requests a second) until `stop`; each answer's
    (status, X-Track header or None when the gateway itself answered) appended to ANSWERS."""
    with httpx.Client(base_url=url, headers={"Host": host_for(ns)}, timeout=2) as client:
        while not stop.is_set():
            try:
                r = client.get("/")
                if answers is not None:
                    answers.append((r.status_code, r.headers.get("X-Track")))
            except httpx.HTTPError:
                pass
            stop.wait(0.02)


def test_a_canary_failing_in_part_is_caught_by_prometheus_analysis_of_real_traffic(real_node, local_parts,
                                                                                    hellok8s_image, project_repo,
                                                                                    tmp_path):
    """prod's next release answers 12% of requests with 500 (ERROR_RATE): real traffic through the
    gateway reaches it at 10%, Prometheus scrapes its errors, ship's analysis rejects it."""
    work, bare, namespaces = new_repo(tmp_path, project_repo)
    ns, prom, gateway = namespaces["prod"], local_parts["SHIP_PROMETHEUS_URL"], local_parts["SHIP_GATEWAY_URL"]
    try:
        set_canary(work, f"router: gateway\ngateway: {local_parts['SHIP_GATEWAY']}\nhost: {host_for(ns)}\n")
        commit_all(work, "prod: routed by ship's gateway")
        for step in (["release", "dev", "--image", hellok8s_image], ["promote", "dev", "uat"], ["promote", "uat", "prod"]):
            out = ship(work, *step)
            assert out.returncode == 0, (step, out.stderr)
        r1 = kubectl_json("-n", ns, "get", "deployment", "hellok8s")["metadata"]["annotations"]["ship.dev/release"]
        set_config(work, "dev", MESSAGE="Hello again from dev")
        set_config(work, "prod", ERROR_RATE="0.12")
        errors = (f'sum(rate(hellok8s_http_requests_total{{namespace="{ns}",track="canary",code=~"5.."}}[10s]))'
                  f' or vector(0)')
        query = f'({errors}) / sum(rate(hellok8s_http_requests_total{{namespace="{ns}",track="canary"}}[10s]))'
        set_canary(work, f"router: gateway\ngateway: {local_parts['SHIP_GATEWAY']}\nhost: {host_for(ns)}\ninterval: 2s\n"
                         "steps:\n  - {weight: 10, bake: 30s}\n"
                         f"prometheus:\n  - {{url: '{prom}', query: '{query}', max: 0.02}}")
        commit_all(work, "dev: a new greeting; prod: a release that fails in part")
        for step in (["release", "dev", "--image", hellok8s_image], ["promote", "dev", "uat"]):
            out = ship(work, *step)
            assert out.returncode == 0, (step, out.stderr)
        wait_routed(gateway, ns)
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(gateway, ns, stop), daemon=True)
        loader.start()
        try:
            out = ship(work, "promote", "uat", "prod")
        finally:
            stop.set()
            loader.join()
        assert out.returncode != 0, out.stderr
        failed = [line for line in out.stderr.splitlines() if "[FAILED]" in line]
        print("\n".join(failed[:1] + [line for line in out.stderr.splitlines() if "untouched" in line]))
        assert failed and all(line.split(": ")[1].startswith("prometheus (sum(rate(") for line in failed), out.stderr
        assert f"stable {r1} untouched" in out.stderr, out.stderr
        # Prometheus saw the canary's own 500s (none from stable, which has no ERROR_RATE); the
        # canary's pod is gone, so its series are stale now: look back.
        by_track = {r["metric"]["track"]: float(r["value"][1]) for r in prometheus_query(
            prom, f'sum by (track) (last_over_time(hellok8s_http_requests_total{{namespace="{ns}",code="500"}}[5m]))')}
        assert by_track.get("canary", 0) > 0 and by_track.get("stable", 0) == 0, by_track
        route = kubectl_json("-n", ns, "get", "httproute", "hellok8s")
        assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [("hellok8s", 100)]
        # Traefik follows the route within moments: then only stable pods answer.
        deadline = time.monotonic() + 30
        while True:
            seen = collections.Counter((a.status_code, a.headers["X-Track"]) for a in through_gateway(gateway, ns, 50))
            if set(seen) == {(200, "stable")}:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.5)
    finally:
        delete_namespaces(namespaces.values())


# ------------------------------------------------------------------------------ crash recovery
def test_cluster_up_restarts_a_killed_kubelet_and_pods_keep_running(real_node, real_repo, hellok8s_image):
    work, bare, namespaces = real_repo
    out = release(work, hellok8s_image)
    assert out.returncode == 0, out.stderr
    before = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0]["containerID"] for p in running_pods(namespaces["dev"])}
    assert len(before) == 3, before
    state = Path(os.environ.get("SHIP_STATE") or Path.home() / ".cache/ship/run")
    pid = int((state / "kubelet.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # a crash; cluster-up started this kubelet and recorded its pid
    up = subprocess.run([str(ROOT / "hack/cluster-up.sh")], capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stderr
    assert int((state / "kubelet.pid").read_text()) != pid
    node = kubectl_json("get", "node", real_node)
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True", node["status"]
    # The containers outlived their kubelet: same pods, same containers, still serving.
    after = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0]["containerID"] for p in running_pods(namespaces["dev"])}
    assert after == before, kubectl("-n", namespaces["dev"], "get", "pods", "-o", "wide")
    for p in running_pods(namespaces["dev"]):
        assert httpx.get(f"http://{p['status']['podIP']}:3000/healthz", timeout=5).status_code == 200
