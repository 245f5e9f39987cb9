"""podinfo, an app nobody here wrote, released by ship from its own Helm chart (unmodified) on real
pods: its binary built from its Go module, its image by ship's own build, its chart's only inputs
the values files. One story, in sequence (each step needs the one before, and the machine is
small): dev → a gate rolls back `faults.unready` → a values-only change rolls the pods → a chart
bump is a new release and `rollback` returns to the chart and values before it → uat → prod → a
healthy 10% canary behind the real gateway, judged on podinfo's own /metrics through the lab's
Prometheus and by the HTTP judge, is promoted → drift on the chart's output is found and synced
away → `faults.error` in prod's values gets the next
canary aborted, the stable untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import httpx
import pytest

from pipeline.commands.inspect import DRIFT
from tests.conftest import ROOT, bare_and_clone, commit_all
from tests.test_real_node import delete_namespaces, host_for, kubectl_json, running_pods, ship

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]

SHIP_YAML = """\
registry: 127.0.0.1:15000
apps:
  podinfo:
    path: apps/podinfo
    image: podinfo
    build:
      - mkdir -p bin && cp "${{SHIP_CACHE:-$HOME/.cache/ship}}/bin/podinfo" "${{SHIP_CACHE:-$HOME/.cache/ship}}/bin/podcli" bin/
    chart: {{path: examples/podinfo/charts/podinfo}}
environments:
  dev: {{namespace: {dev}, gates: {{timeout: 60s}}}}
  uat: {{namespace: {uat}, promotes_from: dev, gates: {{timeout: 90s}}}}
  prod:
    namespace: {prod}
    promotes_from: uat
    gates: {{timeout: 90s}}
    canary:
      router: gateway
      gateway: {gateway}
      host: {host}
      interval: 3s
      max_bake: 90s
      steps:
        - {{weight: 10, bake: 30s}}
      http:
        - {{url: 'http://{{service}}.{{namespace}}.svc:9898/', max_latency_ms: 1000}}
      traffic:
        provider: prometheus
        prometheus: {prometheus}
        requests: 'http_requests_total{{namespace="{{namespace}}",ship_dev_track="{{track}}"}}'
        errors: 'http_requests_total{{namespace="{{namespace}}",ship_dev_track="{{track}}",status=~"5.."}}'
        top_up: 'http://{{service}}.{{namespace}}.svc:9898/'
"""
# Values only: the chart's pods go to the real node (hack/real-node.sh taints and labels it).
REAL_NODE = """
nodeSelector: {ship.dev/real-node: "true"}
tolerations: [{key: ship.dev/real-node, operator: Exists, effect: NoSchedule}]
"""


def values(work, env: str, text: str) -> None:
    (work / f"apps/podinfo/values/{env}.yaml").write_text(text)


def served(ns: str) -> list[dict]:
    """What each running podinfo pod of `ns` answers at GET / (its JSON), asked at its pod IP."""
    return [httpx.get(f"http://{p['status']['podIP']}:9898/", timeout=5).json()
            for p in running_pods(ns, "app.kubernetes.io/name=podinfo") if p["status"].get("podIP")]


def deployment(ns: str, name: str = "podinfo") -> dict:
    return kubectl_json("-n", ns, "get", "deployment", name)


def run(work, *args: str) -> dict:
    out = ship(work, *args, "--output", "json", timeout=600)
    assert out.returncode == 0, (args, out.stderr)
    return json.loads(out.stdout)


def test_podinfo_from_its_chart_through_every_environment(real_node, local_parts, tmp_path):
    assert {"SHIP_GATEWAY", "SHIP_PROMETHEUS_URL"} <= local_parts.keys(), local_parts
    bare, work, repo = bare_and_clone(tmp_path, "repo")
    suffix = uuid.uuid4().hex[:6]
    namespaces = {env: f"podinfo-{env}-{suffix}" for env in ("dev", "uat", "prod")}
    shutil.copytree(ROOT / "apps/podinfo", work / "apps/podinfo", ignore=shutil.ignore_patterns("bin"))
    shutil.copytree(ROOT / "examples/podinfo", work / "examples/podinfo")
    (work / "apps/podinfo/values.yaml").write_text((ROOT / "apps/podinfo/values.yaml").read_text() + REAL_NODE)
    (work / ".gitignore").write_text("apps/podinfo/bin/\n")
    (work / "ship.yaml").write_text(SHIP_YAML.format(**namespaces, gateway=local_parts["SHIP_GATEWAY"],
                                                     host=host_for(namespaces["prod"]),
                                                     prometheus=local_parts["SHIP_PROMETHEUS_URL"]))
    for env in namespaces:
        (work / "environments" / env).mkdir(parents=True)
        (work / "environments" / env / ".gitkeep").write_text("")
    commit_all(work, "podinfo from its chart")
    repo.git.branch("--set-upstream-to=origin/main", "main")
    dev, prod = namespaces["dev"], namespaces["prod"]
    try:
        image = run(work, "build")["image"]
        first = run(work, "release", "dev", "--image", image)["release"]
        assert first["chart"] == "podinfo-6.9.2"
        live = deployment(dev)
        container = live["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == image  # the chart's values say ghcr.io/stefanprodan/podinfo:6.9.2
        assert {"configMapRef": {"name": first["config"]}} in container["envFrom"]
        assert live["metadata"]["labels"]["ship.dev/app"] == "podinfo"
        assert [a["message"] for a in served(dev)] == ["podinfo in dev"]

        # faults.unready: /readyz answers 503; the gate rolls it back
        values(work, "dev", "replicaCount: 1\nui: {message: never ready}\nfaults: {unready: true}\n")
        commit_all(work, "dev: unready")
        bad = ship(work, "release", "dev", "--image", image, timeout=600)
        assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].endswith(f"rolled back to {first['id']}"), \
            bad.stderr
        assert [a["message"] for a in served(dev)] == ["podinfo in dev"]

        # a values-only change rolls the pods
        pods_before = {p["metadata"]["name"] for p in running_pods(dev, "app.kubernetes.io/name=podinfo")}
        values(work, "dev", "replicaCount: 1\nui: {message: values only}\n")
        commit_all(work, "dev: a new message")
        second = run(work, "release", "dev", "--image", image)["release"]
        assert second["id"] != first["id"] and second["chart_digest"] != first["chart_digest"]
        assert [a["message"] for a in served(dev)] == ["values only"]
        assert not pods_before & {p["metadata"]["name"] for p in running_pods(dev, "app.kubernetes.io/name=podinfo")}

        # a chart bump (a copy of the chart with a new version) is a new release; rollback returns
        chart = work / "examples/podinfo/charts/podinfo/Chart.yaml"
        chart.write_text(chart.read_text().replace("version: 6.9.2", "version: 6.9.3"))
        values(work, "dev", "replicaCount: 1\nui: {message: chart bump}\n")
        commit_all(work, "podinfo chart 6.9.3")
        third = run(work, "release", "dev", "--image", image)["release"]
        assert third["chart"] == "podinfo-6.9.3"
        assert deployment(dev)["metadata"]["labels"]["helm.sh/chart"] == "podinfo-6.9.3"
        back = run(work, "rollback", "dev", "--reason", "chart 6.9.3 back out")
        assert back["release"] == second["id"]
        assert deployment(dev)["metadata"]["labels"]["helm.sh/chart"] == "podinfo-6.9.2"
        assert [a["message"] for a in served(dev)] == ["values only"]
        history = ship(work, "history", "dev").stdout
        assert "CHART" in history and "podinfo-6.9.3" in history, history

        # uat, then prod (its first release: nothing to run a canary beside)
        run(work, "promote", "dev", "uat")
        assert {a["message"] for a in served(namespaces["uat"])} == {"podinfo in uat"}
        run(work, "promote", "uat", "prod")
        stable = deployment(prod)["metadata"]["annotations"]["ship.dev/release"]
        assert {a["message"] for a in served(prod)} == {"podinfo in prod"}

        # a healthy canary: 10% behind the gateway, judged on podinfo's /metrics and the HTTP judge
        values(work, "prod", "replicaCount: 3\nui: {message: prod two}\n")
        commit_all(work, "prod: a new message")
        run(work, "release", "dev", "--image", image)
        run(work, "promote", "dev", "uat")
        promoted = ship(work, "promote", "uat", "prod", timeout=900)
        assert promoted.returncode == 0, promoted.stderr
        assert "analysis round" in promoted.stderr, promoted.stderr
        assert {a["message"] for a in served(prod)} == {"prod two"}
        healthy = deployment(prod)["metadata"]["annotations"]["ship.dev/release"]
        assert healthy != stable

        # drift on the chart's output: found by ship diff, undone by ship sync
        assert ship(work, "diff", "prod").returncode == 0
        subprocess.run(["kubectl", "-n", prod, "scale", "deployment", "podinfo", "--replicas", "1"], check=True,
                       capture_output=True)
        drift = ship(work, "diff", "prod")
        assert drift.returncode == DRIFT and "replicas" in drift.stdout, (drift.stdout, drift.stderr)
        assert ship(work, "sync", "prod", timeout=600).returncode == 0
        assert deployment(prod)["spec"]["replicas"] == 3

        # faults.error in prod's values: the canary is aborted, the stable untouched
        values(work, "prod", "replicaCount: 3\nui: {message: prod errors}\nfaults: {error: true}\n")
        commit_all(work, "prod: podinfo's error mode")
        run(work, "release", "dev", "--image", image)
        run(work, "promote", "dev", "uat")
        aborted = ship(work, "promote", "uat", "prod", timeout=900)
        assert aborted.returncode != 0, aborted.stdout
        assert "canary" in aborted.stderr and "rejected" in aborted.stderr, aborted.stderr
        assert deployment(prod)["metadata"]["annotations"]["ship.dev/release"] == healthy
        assert {a["message"] for a in served(prod)} == {"prod two"}
        assert [d["metadata"]["name"] for d in kubectl_json("-n", prod, "get", "deployments")["items"]] == ["podinfo"]
    finally:
        delete_namespaces(namespaces.values())
