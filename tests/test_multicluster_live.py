"""Environments on two clusters: dev and uat on the first local cluster's context, prod on the
second's (`SHIP_SECOND_CLUSTER=1 make cluster`, or `hack/cluster-up.sh second`), both in the one
KUBECONFIG. Promotion, a canary (router: replicas, as the second cluster has no gateway),
rollback, status and the environment lock each reach the cluster of their environment; a
context that kubeconfig lacks, or whose API server is not there, fails in one line naming the
environment, with nothing committed.

These tests drive the CLI and look at the clusters and at exit codes, not at overlay files."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import git
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import ROOT, _exports, commit_all, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine, pytest.mark.multicluster]


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def kubectl(context: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--context", context, *args], capture_output=True, text=True, timeout=60)


def get(context: str, ns: str, *what: str) -> dict | None:
    """The object as JSON, or None when it (or its namespace) is not there."""
    out = kubectl(context, "-n", ns, "get", *what, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def stable_release(context: str, ns: str) -> str:
    dep = get(context, ns, "deployment", "hellok8s")
    assert dep, f"no Deployment hellok8s in {ns} on {context}"
    return dep["metadata"]["annotations"]["ship.dev/release"]


def released_id(result) -> str:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["release"]["id"]


@pytest.fixture(scope="session")
def contexts(local_parts) -> tuple[str, str]:
    """(the first cluster's context, the second cluster's), both in $KUBECONFIG; starts the second
    cluster when it is not running (a no-op after `make test`, which starts it)."""
    proc = subprocess.run([str(ROOT / "hack/cluster-up.sh"), "second"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"hack/cluster-up.sh second failed:\n{proc.stderr[-3000:]}", pytrace=False)
    second = _exports(proc.stdout)["SHIP_SECOND_CONTEXT"]
    first = subprocess.run(["kubectl", "config", "current-context"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert first and second and first != second
    return first, second


def place(work: Path, where: dict[str, str | None], canary: dict | None = None) -> None:
    """Set each environment's `context:` in ship.yaml (None: the kubeconfig's current one), give the
    gates test-sized timeouts and prod a replicas canary; commit and push."""
    path = work / "ship.yaml"
    cfg = yaml.safe_load(path.read_text())
    for name, env in cfg["environments"].items():
        env["gates"] = {"timeout": "60s"}
        if where.get(name):
            env["context"] = where[name]
    cfg["environments"]["prod"]["canary"] = canary or {
        "router": "replicas", "interval": "1s", "steps": [{"weight": 50, "bake": "1s"}]}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    commit_all(work, "environments on two clusters")


@pytest.fixture
def two_clusters(env_repo, hellok8s_image, contexts, monkeypatch):
    """dev and uat on the first cluster, prod on the second, and one release (r1) promoted all the
    way to prod. Returns (work, bare, namespaces, first, second, r1); prod's namespace on the
    second cluster is deleted afterwards."""
    work, bare, namespaces = env_repo
    first, second = contexts
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "pw")
    place(work, {"dev": first, "uat": first, "prod": second})
    r1 = released_id(ship("release", "dev", "--image", hellok8s_image, "--output", "json"))
    assert released_id(ship("promote", "dev", "uat", "--output", "json")) == r1
    assert released_id(ship("promote", "uat", "prod", "--output", "json")) == r1
    yield work, bare, namespaces, first, second, r1
    kubectl(second, "delete", "namespace", namespaces["prod"], "--wait=false")


def test_promotion_puts_each_environment_on_its_own_cluster_and_prod_only_on_the_second(two_clusters):
    work, bare, namespaces, first, second, r1 = two_clusters
    for env in ("dev", "uat"):
        assert stable_release(first, namespaces[env]) == r1
        assert get(second, namespaces[env], "deployment", "hellok8s") is None
        assert kubectl(second, "get", "namespace", namespaces[env]).returncode != 0
    assert stable_release(second, namespaces["prod"]) == r1
    assert get(second, namespaces["prod"], "configmap", f"hellok8s-config-{r1}")["data"]["MESSAGE"] == "Hello from prod"
    assert kubectl(first, "get", "namespace", namespaces["prod"]).returncode != 0  # nothing of prod on the first

    status = ship("status", "--output", "json")
    assert status.exit_code == 0, status.output
    text = status.stdout
    for env in ("dev", "uat", "prod"):
        assert namespaces[env] in text
    assert text.count(r1) >= 3 and "unreachable" not in text and "Healthy" in text
    assert ship("diff", "prod").exit_code == 0  # in sync, as read from the second cluster


def test_the_environment_lock_is_taken_on_the_environments_own_cluster(two_clusters):
    from kubernetes import client as kclient
    from kubernetes import config as kconfig
    from kubernetes import watch

    from pipeline.kube.client import Cluster
    from pipeline.kube.lock import EnvironmentLock, LockOptions

    work, bare, namespaces, first, second, r1 = two_clusters
    ns = namespaces["prod"]
    # A sync takes prod's Lease in prod's namespace on the second cluster (and deletes it when done):
    # watched from before the sync, so even a lock held for a fraction of a second is seen.
    leases = kclient.CoordinationV1Api(kconfig.new_client_from_config(config_file=os.environ["KUBECONFIG"], context=second))
    since = leases.list_namespaced_lease(ns).metadata.resource_version
    events: list[tuple[str, str, str | None]] = []

    def follow() -> None:
        for event in watch.Watch().stream(leases.list_namespaced_lease, ns, resource_version=since, timeout_seconds=60):
            obj = event["object"]
            events.append((event["type"], obj.metadata.name, obj.spec.holder_identity))
            if event["type"] == "DELETED":
                return

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    synced = ship("sync", "prod")
    assert synced.exit_code == 0, synced.output
    watcher.join(timeout=60)
    taken = [holder for kind, name, holder in events if kind == "ADDED" and name == "ship-lock-prod"]
    assert taken and taken[0].startswith("ship/"), events
    assert ("DELETED", "ship-lock-prod") in [(kind, name) for kind, name, _ in events], events
    assert kubectl(first, "get", "namespace", ns).returncode != 0  # no namespace, so no Lease, on the first
    assert get(second, ns, "lease", "ship-lock-prod") is None  # given back at the end

    # A holder of prod's lock on the second cluster keeps `ship sync prod` out.
    on_second = Cluster(context=second)
    held = EnvironmentLock(on_second, "prod", ns, LockOptions(duration=30))
    held.acquire()
    try:
        busy = ship("sync", "prod", "--no-wait")
        assert busy.exit_code == 1
        assert f"LockError: prod is locked by {held.holder} (Lease {ns}/ship-lock-prod)" in busy.stderr
    finally:
        held.release()
        on_second.close()

    # The same Lease held on the first cluster, in a namespace of prod's name, is not prod's lock.
    assert kubectl(first, "create", "namespace", ns).returncode == 0  # env_repo deletes it afterwards
    on_first = Cluster(context=first)
    decoy = EnvironmentLock(on_first, "prod", ns, LockOptions(duration=30))
    decoy.acquire()
    try:
        free = ship("sync", "prod", "--no-wait")
        assert free.exit_code == 0, free.output
    finally:
        decoy.release()
        on_first.close()


def test_canary_then_rollback_in_prod_on_the_second_cluster(two_clusters, hellok8s_image):
    work, bare, namespaces, first, second, r1 = two_clusters
    ns = namespaces["prod"]
    env = work / "apps/hellok8s/config/dev.env"
    env.write_text(env.read_text().replace("Hello from dev", "Hello again from dev"))
    commit_all(work, "dev: a new greeting")
    r2 = released_id(ship("release", "dev", "--image", hellok8s_image, "--output", "json"))
    assert r2 != r1
    assert released_id(ship("promote", "dev", "uat", "--output", "json")) == r2

    held = ship("promote", "uat", "prod", "--hold")
    assert held.exit_code == 0, held.output
    canary = get(second, ns, "deployment", "hellok8s-canary")
    assert canary and canary["metadata"]["annotations"]["ship.dev/release"] == r2
    assert canary["spec"]["replicas"] == 2  # ceil(50% of 3), beside the stable on the second cluster
    assert stable_release(second, ns) == r1
    assert "ship.dev/track" not in get(second, ns, "service", "hellok8s")["spec"]["selector"]  # the replicas router
    assert kubectl(first, "get", "namespace", ns).returncode != 0
    status = ship("status", "prod")
    assert status.exit_code == 0 and r2 in status.stdout and "canary" in status.stdout, status.output

    done = ship("promote", "uat", "prod", "--resume")
    assert done.exit_code == 0, done.output
    assert stable_release(second, ns) == r2
    leftover = get(second, ns, "deployment", "hellok8s-canary")
    assert leftover is None or leftover["metadata"].get("deletionTimestamp")

    back = ship("rollback", "prod")
    assert back.exit_code == 0, back.output
    assert stable_release(second, ns) == r1
    assert stable_release(first, namespaces["uat"]) == r2  # uat untouched, on the first cluster
    assert back.stdout.splitlines()[0] == f"rolled back prod: hellok8s@{r2} → {r1}"
    history = {r["id"]: r["outcome"] for r in json.loads(ship("history", "prod", "--output", "json").stdout)["releases"]}
    assert history[r2] == "rolled back" and history[r1] == "rolled back to"
    status = ship("status", "--output", "json")
    assert status.exit_code == 0 and status.stdout.count(r2) >= 2 and r1 in status.stdout, status.output


def broken_kubeconfig(tmp_path: Path) -> tuple[Path, str]:
    """A copy of $KUBECONFIG with one more context, `ship-closed`: the first cluster's user and CA
    against a port nothing listens on. Returns (path, context)."""
    path = tmp_path / "kubeconfig.yaml"
    cfg = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    current = next(c for c in cfg["contexts"] if c["name"] == cfg["current-context"])["context"]
    cluster = dict(next(c for c in cfg["clusters"] if c["name"] == current["cluster"])["cluster"])
    cluster["server"] = f"https://127.0.0.1:{free_port()}"
    cfg["clusters"].append({"name": "ship-closed", "cluster": cluster})
    cfg["contexts"].append({"name": "ship-closed", "context": {"cluster": "ship-closed", "user": current["user"]}})
    path.write_text(yaml.safe_dump(cfg))
    return path, "ship-closed"


@pytest.mark.parametrize("broken", ["missing", "unreachable"])
def test_a_context_missing_or_unreachable_fails_in_one_line_naming_the_environment(
        broken, env_repo, hellok8s_image, contexts, tmp_path, monkeypatch):
    work, bare, namespaces = env_repo
    first, _ = contexts
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "pw")
    monkeypatch.setenv("SHIP_RETRY_SECONDS", "2")  # a closed port is not worth the default retries
    kubeconfig, closed = broken_kubeconfig(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    context = f"ship-nowhere-{uuid.uuid4().hex[:6]}" if broken == "missing" else closed
    place(work, {"dev": first, "uat": context, "prod": first})
    assert released_id(ship("release", "dev", "--image", hellok8s_image, "--output", "json"))
    repo = git.Repo(work)
    before = (repo.head.commit.hexsha, git.Repo(bare).commit("main").hexsha)
    kind = "ConfigError" if broken == "missing" else "ClusterError"

    for args in (["promote", "dev", "uat"], ["sync", "uat"], ["rollback", "uat"]):
        out = ship(*args)
        assert out.exit_code != 0, (args, out.output)
        errors = [line for line in out.stderr.splitlines() if not line.startswith("·")]
        assert len(errors) == 1, (args, out.stderr)
        assert errors[0].startswith(f"{kind}: uat: "), (args, errors)
        assert (context if broken == "missing" else "unreachable") in errors[0], errors
        assert "Traceback" not in out.output
        assert (repo.head.commit.hexsha, git.Repo(bare).commit("main").hexsha) == before, args  # nothing committed
        assert not repo.is_dirty(untracked_files=True), args
    assert kubectl(first, "get", "namespace", namespaces["uat"]).returncode != 0  # nothing applied anywhere

    # status still shows every environment, and says which one it cannot reach.
    status = ship("status", "--output", "json")
    rows = json.dumps(json.loads(status.stdout))
    assert all(namespaces[env] in rows for env in ("dev", "uat", "prod")), status.output
    assert "cluster unreachable" in rows
