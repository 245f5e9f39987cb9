"""Release hooks against the real control plane: a pre-release migration Job in the app's base
runs once per release before the Deployment moves; one that exits 1 (on the real node: KWOK
completes every Job's pods) stops the release, which is rejected and rolled back like a failed
gate, with every Deployment left where it was. Driven through the CLI, with the deployer's
least-privilege kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import names
from tests.conftest import commit_all
from tests.deployer import deployer_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine, pytest.mark.realnode]
SHIP = [sys.executable, "-m", "pipeline"]

# A migration as a team writes it beside its Deployment: the image is pinned by the overlay's
# `images:` like the Deployment's, the annotation makes it a pre-release hook.
MIGRATION = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: hellok8s-migrate
  annotations: {ship.dev/hook: pre-release}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: migrate
          image: hellok8s
          env: [{name: FAIL_MODE, value: "%(mode)s"}]
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
%(placement)s"""
# A post-release hook: runs once the release's gate passed (on KWOK, whose Job pods complete).
NOTIFY = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: hellok8s-notify
  annotations: {ship.dev/hook: post-release}
spec:
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: notify
          image: hellok8s
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""
# hellok8s with FAIL_MODE=crash exits 1 at start: a migration that fails, on real containers.
ON_REAL_NODE = """\
      nodeSelector: {ship.dev/real-node: "true"}
      tolerations: [{key: ship.dev/real-node, operator: Exists, effect: NoSchedule}]
"""


def ship(work: Path, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SHIP, *args], cwd=work, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KUBECONFIG": str(kubeconfig), "SHIP_SECRET_HELLOK8S_DB_PASSWORD": "pw"})


def kubectl_json(*args: str) -> dict:
    out = subprocess.run(["kubectl", *args, "-o", "json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def write_migration(work: Path, mode: str = "", placement: str = "") -> None:
    base = work / "apps/hellok8s/base"
    (base / "migrate.yaml").write_text(MIGRATION % {"mode": mode, "placement": placement})
    (base / "notify.yaml").write_text(NOTIFY)
    kz = base / "kustomization.yaml"
    if "migrate.yaml" not in kz.read_text():
        kz.write_text(kz.read_text().replace("  - service.yaml\n", "  - service.yaml\n  - migrate.yaml\n  - notify.yaml\n"))


def set_config(work: Path, value: str) -> None:
    path = work / "apps/hellok8s/config/dev.env"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("ROUND=")]
    path.write_text("\n".join([*lines, f"ROUND={value}"]) + "\n")


def hook_jobs(ns: str) -> dict[str, dict]:
    items = kubectl_json("-n", ns, "get", "jobs")["items"]
    return {j["metadata"]["name"]: j for j in items}


def test_a_pre_release_job_runs_once_per_release_and_a_failing_one_stops_the_release(
        env_repo, hellok8s_image, local_parts, tmp_path, real_node):
    work, _, namespaces = env_repo
    ns = namespaces["dev"]
    minted = tmp_path / "deployer.kubeconfig"
    minted.write_text(deployer_kubeconfig(SHIP, work, local_parts["KUBECONFIG"], {"dev": ns}))
    write_migration(work)
    commit_all(work, "a migration before each release")

    first = ship(work, minted, "release", "dev", "--image", hellok8s_image, "--output", "json")
    assert first.returncode == 0, first.stderr
    r1 = json.loads(first.stdout)["release"]
    job1 = f"hellok8s-migrate-{r1['id']}"
    assert f"hook Job/{ns}/{job1}: running" in first.stderr
    jobs = hook_jobs(ns)
    notify1 = f"hellok8s-notify-{r1['id']}"
    assert sorted(jobs) == [job1, notify1]
    # the post hook ran after the gate: created once the Deployment was available, not before
    available = next(c for c in kubectl_json("-n", ns, "get", "deployment", "hellok8s")["status"]["conditions"]
                     if c["type"] == "Available")
    assert jobs[notify1]["metadata"]["creationTimestamp"] >= available["lastTransitionTime"]
    assert jobs[job1]["metadata"]["annotations"][names.RELEASE] == r1["id"]
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in jobs[job1]["status"]["conditions"])
    # the Job finished before the Deployment was created: its completion is older
    deployment = kubectl_json("-n", ns, "get", "deployment", "hellok8s")
    assert jobs[job1]["status"]["completionTime"] <= deployment["metadata"]["creationTimestamp"]

    again = ship(work, minted, "sync", "dev")
    assert again.returncode == 0, again.stderr
    assert f"hook Job/{ns}/{job1} already ran for this release" in again.stderr
    assert sorted(hook_jobs(ns)) == [job1, notify1]  # once per release

    set_config(work, "second")
    commit_all(work, "dev: a config change")
    second = ship(work, minted, "release", "dev", "--image", hellok8s_image, "--output", "json")
    assert second.returncode == 0, second.stderr
    r2 = json.loads(second.stdout)["release"]
    assert sorted(hook_jobs(ns)) == sorted([job1, notify1, f"hellok8s-migrate-{r2['id']}",
                                            f"hellok8s-notify-{r2['id']}"])
    before = kubectl_json("-n", ns, "get", "deployment", "hellok8s")

    write_migration(work, mode="crash", placement=ON_REAL_NODE)
    set_config(work, "third")
    commit_all(work, "dev: a migration that fails")
    bad = ship(work, minted, "release", "dev", "--image", hellok8s_image)
    assert bad.returncode == 1, bad.stderr
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("GateFailed: dev: r") and last.endswith(f"rolled back to {r2['id']}"), last
    failed = [n for n in hook_jobs(ns) if n.startswith("hellok8s-migrate-") and n not in (job1, f"hellok8s-migrate-{r2['id']}")]
    assert len(failed) == 1 and f"Job/{ns}/{failed[0]} BackoffLimitExceeded" in last, last
    pod = kubectl_json("-n", ns, "get", "pods", "-l", f"job-name={failed[0]}")["items"][0]
    assert pod["spec"]["nodeName"] == real_node  # a real container exited 1
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert not [n for n in hook_jobs(ns) if n.endswith(failed[0].removeprefix("hellok8s-migrate-")) and "notify" in n]
    after = kubectl_json("-n", ns, "get", "deployment", "hellok8s")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]  # it never moved
    assert after["metadata"]["annotations"][names.RELEASE] == r2["id"]
    rejected = failed[0].removeprefix("hellok8s-migrate-")
    history = ship(work, minted, "history", "dev", "hellok8s", "--output", "json")
    assert history.returncode == 0, history.stderr
    assert rejected in history.stdout and "rejected" in history.stdout


STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: hellok8s-db}
spec:
  serviceName: hellok8s-db
  replicas: 1
  selector: {matchLabels: {app: hellok8s-db}}
  template:
    metadata: {labels: {app: hellok8s-db}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: db
          image: %s
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def test_a_statefulset_the_base_brings_is_gated_by_its_own_rule(env_repo, hellok8s_image, broken_images, local_parts,
                                                                 tmp_path):
    """On KWOK: a StatefulSet beside the Deployment passes the gate once ready; one whose pods
    never get ready (KWOK's stage for the hellok8s-never-ready image) fails it, and the release is
    rolled back."""
    work, _, namespaces = env_repo
    ns = namespaces["dev"]
    minted = tmp_path / "deployer.kubeconfig"
    minted.write_text(deployer_kubeconfig(SHIP, work, local_parts["KUBECONFIG"], {"dev": ns}))
    cfg = work / "ship.yaml"
    cfg.write_text(cfg.read_text().replace("gates: {timeout: 90s}", "gates: {timeout: 20s}", 1))
    base = work / "apps/hellok8s/base"
    (base / "db.yaml").write_text(STATEFULSET % hellok8s_image)
    kz = base / "kustomization.yaml"
    kz.write_text(kz.read_text().replace("  - service.yaml\n", "  - service.yaml\n  - db.yaml\n"))
    commit_all(work, "a StatefulSet beside the app; short gates")
    good = ship(work, minted, "release", "dev", "--image", hellok8s_image, "--output", "json")
    assert good.returncode == 0, good.stderr
    r1 = json.loads(good.stdout)["release"]["id"]
    assert kubectl_json("-n", ns, "get", "statefulset", "hellok8s-db")["status"]["readyReplicas"] == 1

    (base / "db.yaml").write_text(STATEFULSET % broken_images["never-ready"])
    commit_all(work, "a StatefulSet that never gets ready")
    bad = ship(work, minted, "release", "dev", "--image", hellok8s_image, "--output", "json")
    assert bad.returncode == 1, bad.stderr
    assert f"gate failed: StatefulSet/{ns}/hellok8s-db Timeout: not healthy after 20s" in bad.stderr, bad.stderr
    # A rollback restores image and config, not the base's manifests (docs/rollout.md): the
    # StatefulSet stays broken, and the rollback's gate says so too.
    assert bad.stderr.strip().splitlines()[-1].startswith(f"GateFailed: dev: the rollback to {r1} failed its gate too")
    history = json.loads(ship(work, minted, "history", "dev", "hellok8s", "--output", "json").stdout)
    assert "rejected" in json.dumps(history) and f"StatefulSet/{ns}/hellok8s-db Timeout" in json.dumps(history)



def test_a_pre_release_job_runs_once_before_a_prod_canary_routed_by_the_real_gateway(
        env_repo, hellok8s_image, local_parts, tmp_path):
    """prod promotes through a canary routed by the real gateway (warmed up at weight 0, drained
    before it goes): the release's migration runs once, before the canary has a pod, and not again
    when the canary passes and the stable moves. (A failing pre hook aborting a canary is
    test_canary.py's, on the in-memory cluster: KWOK completes every Job's pods, and hellok8s
    on the real node serves rather than exits.)"""
    from tests.test_real_node import host_for, set_canary

    work, _, namespaces = env_repo
    prod = namespaces["prod"]
    minted = tmp_path / "deployer.kubeconfig"
    minted.write_text(deployer_kubeconfig(SHIP, work, local_parts["KUBECONFIG"], namespaces))
    set_canary(work, f"router: gateway\ngateway: {local_parts['SHIP_GATEWAY']}\nhost: {host_for(prod)}\n"
                     "interval: 1s\nscale_down_delay: 1s\nsteps:\n  - {weight: 10, bake: 3s}")
    write_migration(work)
    commit_all(work, "prod: a canary; a migration before each release")
    promote = [["release", "dev", "--image", hellok8s_image], ["promote", "dev", "uat"], ["promote", "uat", "prod"]]
    for step in promote:
        out = ship(work, minted, *step)
        assert out.returncode == 0, (step, out.stderr)
    r1 = kubectl_json("-n", prod, "get", "deployment", "hellok8s")["metadata"]["annotations"][names.RELEASE]

    set_config(work, "second")
    commit_all(work, "dev: the next release")
    for step in promote:
        out = ship(work, minted, *step)
        assert out.returncode == 0, (step, out.stderr)
    assert "warming up" in out.stderr and "draining" in out.stderr, out.stderr
    r2 = kubectl_json("-n", prod, "get", "deployment", "hellok8s")["metadata"]["annotations"][names.RELEASE]
    assert r2 != r1 and f"hook Job/{prod}/hellok8s-migrate-{r2}: running" in out.stderr
    jobs = {n: j for n, j in hook_jobs(prod).items() if n.startswith("hellok8s-migrate-")}
    assert sorted(jobs) == sorted([f"hellok8s-migrate-{r1}", f"hellok8s-migrate-{r2}"])  # once per release
    events = kubectl_json("-n", prod, "get", "events", "--field-selector", "reason=ScalingReplicaSet")["items"]
    canary_up = min(e.get("firstTimestamp") or e.get("eventTime") for e in events
                    if e["involvedObject"]["name"] == "hellok8s-canary")
    assert jobs[f"hellok8s-migrate-{r2}"]["status"]["completionTime"] <= canary_up  # done before any canary pod
    assert not kubectl_json("-n", prod, "get", "deployments", "-l", f"{names.TRACK}={names.CANARY}")["items"]
