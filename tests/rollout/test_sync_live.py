"""`ship sync`, `ship diff` and `ship status` on the local cluster: staged server-side apply,
drift, prune, conflicts, secrets, the environment lock, crash safety and least privilege.
Each test releases into namespaces of its own."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import commit_all

pytestmark = [pytest.mark.cluster, pytest.mark.registry]
SHIP = [sys.executable, "-m", "pipeline"]
SECRET_VAR = "SHIP_SECRET_HELLOK8S_DB_PASSWORD"


def ship(*args: str, env: dict | None = None):
    return CliRunner(env=env).invoke(app, list(args))


def kubectl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True)


def get(kind: str, name: str, ns: str) -> dict:
    out = kubectl("get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)



@pytest.fixture
def released(env_repo, hellok8s_image, monkeypatch):
    """dev released (not synced) with the session's image; the DB password in the environment."""
    work, bare, namespaces = env_repo
    monkeypatch.setenv(SECRET_VAR, "s3cret-value")
    result = ship("release", "dev", "--image", hellok8s_image, "--no-sync", "--output", "json")
    assert result.exit_code == 0, result.output
    return work, bare, namespaces["dev"], json.loads(result.stdout)["release"]


def test_sync_brings_the_namespace_to_the_overlay_and_a_second_sync_changes_nothing(released):
    work, _, ns, rel = released
    first = ship("sync", "dev", "--output", "json")
    assert first.exit_code == 0, first.output
    changes = json.loads(first.stdout)["changes"]
    assert {"subject": f"Deployment/{ns}/hellok8s", "action": "created"} in changes
    assert {"subject": f"ConfigMap/{ns}/{rel['config']}", "action": "created"} in changes
    assert {"subject": f"Secret/{ns}/hellok8s-secrets", "action": "created"} in changes
    subjects = [c["subject"].split("/")[0] for c in changes]
    assert subjects.index("ConfigMap") < subjects.index("Service") < subjects.index("Deployment")  # staged
    dep = get("deployment", "hellok8s", ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == rel["image"]
    assert dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ship"
    assert {m["manager"] for m in dep["metadata"]["managedFields"]} >= {"ship"}
    versions = {kind: get(kind, name, ns)["metadata"]["resourceVersion"]
                for kind, name in (("deployment", "hellok8s"), ("service", "hellok8s"), ("secret", "hellok8s-secrets"))}

    second = ship("sync", "dev")
    assert second.exit_code == 0
    changes = [line for line in second.stdout.splitlines() if not line.startswith("gate passed:")]
    assert set(line.rsplit(" ", 1)[1] for line in changes) == {"unchanged"}
    assert second.stdout.splitlines()[-1].startswith(f"gate passed: Deployment/{ns}/hellok8s healthy (3/3 updated")
    assert "deployment.apps/hellok8s unchanged" in second.stdout
    assert {kind: get(kind, name, ns)["metadata"]["resourceVersion"]
            for kind, name in (("deployment", "hellok8s"), ("service", "hellok8s"), ("secret", "hellok8s-secrets"))} == versions


def test_a_hand_edit_shows_in_diff_and_the_next_sync_corrects_it(released):
    work, _, ns, _ = released
    assert ship("sync", "dev").exit_code == 0
    in_sync = ship("diff", "dev")
    assert in_sync.exit_code == 0 and in_sync.stdout == ""
    assert kubectl("-n", ns, "scale", "deployment/hellok8s", "--replicas=1").returncode == 0
    kubectl("-n", ns, "patch", "secret", "hellok8s-secrets", "-p",
            json.dumps({"data": {"DB_PASSWORD": base64.b64encode(b"hand-typed").decode()}}))
    drift = ship("diff", "dev")
    assert drift.exit_code == 3
    assert "-  replicas: 1\n+  replicas: 3" in drift.stdout
    assert f"--- live/Deployment/{ns}/hellok8s" in drift.stdout
    assert "hand-typed" not in drift.output and "s3cret-value" not in drift.output
    assert base64.b64encode(b"s3cret-value").decode() not in drift.output
    fixed = ship("sync", "dev")
    assert "deployment.apps/hellok8s configured" in fixed.stdout
    assert "secret/hellok8s-secrets configured" in fixed.stdout
    assert get("deployment", "hellok8s", ns)["spec"]["replicas"] == 3
    assert ship("diff", "dev").exit_code == 0


def test_diff_exits_1_on_error(released, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    result = ship("diff", "dev")
    assert result.exit_code == 1
    assert "ConfigError: dev: kubeconfig /nonexistent/kubeconfig: file not found" in result.stderr


def test_prune_deletes_what_git_dropped_and_configmaps_no_running_replicaset_needs(released, hellok8s_image):
    work, _, ns, first = released
    assert ship("sync", "dev").exit_code == 0
    (work / "apps/hellok8s/config/dev.env").write_text("MESSAGE=second\nDB_URL=postgres://db\n")
    commit_all(work, "second config")
    second = json.loads(ship("release", "dev", "--image", hellok8s_image, "--output", "json").stdout)
    assert {"subject": f"ConfigMap/{ns}/{second['release']['config']}", "action": "created"} in second["changes"]
    # The first config is still in the overlay (keep_configs 5); its ReplicaSet is scaled to 0 now.
    kz = (work / "environments/dev/hellok8s/kustomization.yaml").read_text()
    kz = "\n".join(line for line in kz.splitlines() if first["config"] not in line) + "\n"
    (work / "environments/dev/hellok8s/kustomization.yaml").write_text(kz)
    commit_all(work, "drop the first config from the overlay")
    out = ship("sync", "dev", "--output", "json")
    assert out.exit_code == 0, out.output
    # No running pod uses it, so it goes (a rollback recreates it from the ledger); the current
    # release's ConfigMap, which running pods use, stays.
    assert {"subject": f"ConfigMap/{ns}/{first['config']}", "action": "pruned"} in json.loads(out.stdout)["changes"]
    assert kubectl("-n", ns, "get", "configmap", second["release"]["config"]).returncode == 0
    # Drop the Service from git: it is pruned, after the applies.
    base = work / "apps/hellok8s/base/kustomization.yaml"
    base.write_text(base.read_text().replace("  - service.yaml\n", ""))
    commit_all(work, "no service")
    kept = ship("sync", "dev", "--no-prune")
    assert "pruned" not in kept.stdout and kubectl("-n", ns, "get", "service", "hellok8s").returncode == 0
    pruned = ship("sync", "dev")
    assert pruned.stdout.strip().splitlines()[-2] == "service/hellok8s pruned"  # then the gate line
    assert kubectl("-n", ns, "get", "service", "hellok8s").returncode != 0


def test_an_object_ship_does_not_own_is_refused_unless_adopted(released):
    work, _, ns, _ = released
    kubectl("create", "namespace", ns)
    assert kubectl("-n", ns, "create", "service", "clusterip", "hellok8s", "--tcp=3000:3000").returncode == 0
    refused = ship("sync", "dev")
    assert refused.exit_code == 1
    assert (f"ConflictError: dev: Service/{ns}/hellok8s: exists and is not managed by ship for dev; "
            "pass --adopt to take it over") in refused.stderr
    assert kubectl("-n", ns, "get", "deployment", "hellok8s").returncode != 0  # nothing applied
    # kubectl create set fields git sets differently (selector, port name): adopting names them.
    partly = ship("sync", "dev", "--adopt")
    assert partly.exit_code == 1
    assert f"Service/{ns}/hellok8s: fields owned by another field manager: kubectl-create (.spec.selector" in partly.stderr
    adopted = ship("sync", "dev", "--adopt", "--force-conflicts")
    assert adopted.exit_code == 0, adopted.output
    assert "service/hellok8s configured" in adopted.stdout
    assert get("service", "hellok8s", ns)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ship"


def test_a_field_held_by_another_manager_is_named_and_taken_with_force_conflicts(released):
    work, _, ns, _ = released
    kubectl("create", "namespace", ns)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hellok8s", "namespace": ns},
           "spec": {"ports": [{"name": "http", "port": 3000, "targetPort": "http"}], "type": "NodePort"}}
    applied = subprocess.run(["kubectl", "apply", "--server-side", "--field-manager", "platform-team", "-f", "-"],
                             input=json.dumps(svc), capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    conflict = ship("sync", "dev", "--adopt")
    assert conflict.exit_code == 1
    assert f"Service/{ns}/hellok8s: fields owned by another field manager: platform-team (.spec.type)" in conflict.stderr
    assert "--force-conflicts" in conflict.stderr
    forced = ship("sync", "dev", "--adopt", "--force-conflicts")
    assert forced.exit_code == 0, forced.output
    assert get("service", "hellok8s", ns)["spec"]["type"] == "ClusterIP"


def test_an_invalid_manifest_fails_the_dry_run_and_nothing_is_applied(released):
    work, _, ns, _ = released
    dep = work / "apps/hellok8s/base/deployment.yaml"
    dep.write_text(dep.read_text().replace("  revisionHistoryLimit: 10", "  revisionHistoryLimit: 10\n  replicaz: 2"))
    svc = work / "apps/hellok8s/base/service.yaml"
    svc.write_text(svc.read_text().replace("port: 3000", "port: 300000", 1))
    commit_all(work, "two broken objects")
    result = ship("sync", "dev")
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("DryRunError: dry-run failed for 2 object(s), nothing applied:")
    assert f"Deployment/{ns}/hellok8s" in line and ".spec.replicaz: field not declared in schema" in line
    assert f"Service/{ns}/hellok8s" in line
    for kind in ("deployment", "service", "configmap", "secret"):
        listed = kubectl("-n", ns, "get", kind, "-l", "app.kubernetes.io/managed-by=ship", "-o", "name")
        assert listed.stdout.strip() == "", (kind, listed.stdout)


def test_a_change_to_an_immutable_field_names_the_field_and_the_fix(released):
    work, _, ns, _ = released
    assert ship("sync", "dev").exit_code == 0
    dep = work / "apps/hellok8s/base/deployment.yaml"
    text = dep.read_text()
    text = text.replace("    matchLabels:\n      app.kubernetes.io/name: hellok8s",
                        "    matchLabels:\n      app.kubernetes.io/name: hellok8s\n      tier: web", 1)
    text = text.replace("      labels:\n        app.kubernetes.io/name: hellok8s",
                        "      labels:\n        app.kubernetes.io/name: hellok8s\n        tier: web", 1)
    dep.write_text(text)
    commit_all(work, "selector change")
    result = ship("sync", "dev")
    assert result.exit_code == 1
    assert f"Deployment/{ns}/hellok8s: spec.selector is immutable and git changed it" in result.stderr
    assert f"kubectl delete -n {ns} deployment.apps/hellok8s" in result.stderr


def test_an_object_outside_the_environment_namespace_is_refused(released):
    work, _, ns, _ = released
    (work / "environments/dev/clusterrole.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: sneaky\nrules: []\n")
    kz = work / "environments/dev/kustomization.yaml"
    kz.write_text(kz.read_text().replace("- namespace.yaml", "- namespace.yaml\n- clusterrole.yaml"))
    commit_all(work, "cluster-scoped object")
    result = ship("sync", "dev")
    assert result.exit_code == 1
    assert f"ValidationError: dev: 1 object(s) refused: ClusterRole/sneaky: cluster-scoped; environment dev may only hold objects in namespace {ns}" in result.stderr


def test_unreachable_cluster_and_missing_context(released, tmp_path, monkeypatch):
    config = tmp_path / "kubeconfig"
    config.write_text(re.sub(r"https://127\.0\.0\.1:\d+", "https://127.0.0.1:1", Path(os.environ["KUBECONFIG"]).read_text()))
    monkeypatch.setenv("KUBECONFIG", str(config))
    down = ship("sync", "dev")  # refused: fails at once, as kubectl does, without retrying
    assert down.exit_code == 1 and "ClusterError: dev: cluster https://127.0.0.1:1 unreachable: ConnectError" in down.stderr
    assert "retrying" not in down.stderr
    monkeypatch.setenv("KUBECONFIG", os.environ["KUBECONFIG"].replace(str(config), str(config)))
    monkeypatch.setenv("SHIP_KUBE_CONTEXT", "no-such-context")
    missing = ship("sync", "dev")
    assert missing.exit_code == 1
    assert "ConfigError: dev: kubeconfig" in missing.stderr and "context 'no-such-context' cannot be used" in missing.stderr


def test_a_kustomize_failure_is_one_line_and_touches_nothing(released):
    work, _, ns, _ = released
    kz = work / "environments/dev/hellok8s/kustomization.yaml"
    kz.write_text(kz.read_text() + "bogusField: 1\n")
    commit_all(work, "broken overlay")
    result = ship("sync", "dev")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("RenderError: environments/dev: kustomize cannot render it")
    assert kubectl("get", "namespace", ns).returncode != 0


def test_a_missing_secret_names_the_variable_to_set(released, monkeypatch):
    monkeypatch.delenv(SECRET_VAR)
    result = ship("sync", "dev")
    assert result.exit_code == 1
    assert (f"SecretError: dev: secret DB_PASSWORD of hellok8s is not set and not in the cluster: set {SECRET_VAR}"
            in result.stderr)
    assert kubectl("-n", released[2], "get", "deployment", "hellok8s").returncode != 0


def test_secrets_come_from_the_environment_or_the_cluster_and_never_reach_disk(released, monkeypatch):
    work, _, ns, _ = released
    assert ship("sync", "dev").exit_code == 0
    assert base64.b64decode(get("secret", "hellok8s-secrets", ns)["data"]["DB_PASSWORD"]) == b"s3cret-value"
    monkeypatch.delenv(SECRET_VAR)  # a later run without the variable keeps the cluster's value
    again = ship("sync", "dev")
    assert again.exit_code == 0 and "secret/hellok8s-secrets unchanged" in again.stdout
    leaked = subprocess.run(["grep", "-r", "s3cret-value", str(work)], capture_output=True)
    assert leaked.returncode == 1  # not in the work tree, not in .git


def test_a_second_run_waits_for_the_lock_or_fails_with_no_wait(released):
    from pipeline.kube.client import Cluster
    from pipeline.kube.lock import EnvironmentLock, LockOptions

    work, _, ns, _ = released
    assert ship("sync", "dev").exit_code == 0
    cluster = Cluster()
    held = EnvironmentLock(cluster, "dev", ns, LockOptions(duration=15))
    held.acquire()
    try:
        busy = ship("sync", "dev", "--no-wait")
        assert busy.exit_code == 1
        assert f"LockError: dev is locked by {held.holder} (Lease {ns}/ship-lock-dev)" in busy.stderr
        proc = subprocess.Popen([*SHIP, "sync", "dev", "--lock-timeout", "60"], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60  # a busy machine can take seconds to start the second run
        while not any("waiting for dev's lock" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None  # waiting
    finally:
        held.release()
        cluster.close()
    proc.wait(timeout=60)
    reader.join(timeout=10)
    errs = "".join(lines)
    assert proc.returncode == 0, errs
    assert f"waiting for dev's lock, held by {held.holder}" in errs


def test_a_lease_whose_holder_died_is_taken_over(released):
    from pipeline.kube.client import Cluster

    work, _, ns, _ = released
    assert ship("sync", "dev").exit_code == 0
    cluster = Cluster()
    stale = "ship/elsewhere/12345/abcdef"
    cluster.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "ship-lock-dev", "namespace": ns},
                    "spec": {"holderIdentity": stale, "leaseDurationSeconds": 2,
                             "renewTime": "2020-01-01T00:00:00.000000Z"}})
    cluster.close()
    result = ship("sync", "dev", "--no-wait")
    assert result.exit_code == 0, result.output
    assert f"took over dev's lock from {stale}" in result.stderr


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9, 1.2])
def test_killing_sync_at_any_point_then_syncing_again_converges(released, delay):
    work, _, ns, _ = released
    proc = subprocess.Popen([*SHIP, "sync", "dev"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = subprocess.run([*SHIP, "sync", "dev", "--lock-timeout", "60"], cwd=work, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert subprocess.run([*SHIP, "diff", "dev"], cwd=work, capture_output=True).returncode == 0
    names = kubectl("-n", ns, "get", "deploy,svc,cm,secret", "-l", "app.kubernetes.io/managed-by=ship", "-o", "name")
    assert sorted(names.stdout.split()) == sorted([
        "deployment.apps/hellok8s", "service/hellok8s", "secret/hellok8s-secrets",
        f"configmap/{released[3]['config']}"])


def test_sync_diff_and_status_work_under_the_least_privilege_role(released, tmp_path, monkeypatch):
    from pipeline.kube import rbac
    from pipeline.kube.api import ApiRequest
    from pipeline.kube.client import Cluster

    work, _, ns, _ = released
    admin = Cluster()
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, force=True)
    for obj in rbac.deployer_objects(ns, environment="dev", secrets=["hellok8s-secrets"]):
        admin.apply(obj, force=True)
    token = admin.request(ApiRequest("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/ship-deployer/token",
                                     body={"spec": {"expirationSeconds": 3600}}, what="token"))["status"]["token"]
    host = admin.host
    admin.close()
    config = tmp_path / "deployer.kubeconfig"
    ca = Path(os.environ["KUBECONFIG"]).parent / "pki/ca.crt"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "deployer",
        "clusters": [{"name": "local", "cluster": {"server": host, "certificate-authority": str(ca)}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "deployer", "context": {"cluster": "local", "user": "deployer", "namespace": ns}}]}))
    monkeypatch.setenv("KUBECONFIG", str(config))
    time.sleep(1)  # let the authorizer see the new binding
    synced = ship("sync", "dev")
    assert synced.exit_code == 0, synced.output
    assert "deployment.apps/hellok8s created" in synced.stdout
    assert ship("diff", "dev").exit_code == 0
    status = ship("status", "dev", "--output", "json")
    assert status.exit_code == 0, status.output
    row = json.loads(status.stdout)["environments"][0]
    assert row["drift"] is False and row["release"] == released[3]["id"]
    # A namespace the Role does not cover: the error names the verb, resource and namespace.
    cfg = work / "ship.yaml"
    cfg.write_text(cfg.read_text().replace(f"namespace: {ns}", "namespace: kube-public"))
    forbidden = ship("sync", "dev")
    assert forbidden.exit_code == 1
    assert "forbidden" in forbidden.stderr and '"kube-public"' in forbidden.stderr
    assert "cannot" in forbidden.stderr and "resource" in forbidden.stderr


def test_status_reports_release_health_and_drift(released):
    work, _, ns, rel = released
    assert ship("sync", "dev").exit_code == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = json.loads(ship("status", "dev", "--output", "json").stdout)["environments"][0]
        if row["health"] == "Healthy":
            break
        time.sleep(0.5)
    assert row["health"] == "Healthy" and row["release"] == rel["id"] and row["drift"] is False
    assert row["digest"] == rel["image"].split("@sha256:")[1][:12] and row["config"] == rel["config"]
    kubectl("-n", ns, "scale", "deployment/hellok8s", "--replicas=1")
    row = json.loads(ship("status", "dev", "--output", "json").stdout)["environments"][0]
    assert row["drift"] is True
    table = ship("status")
    assert table.exit_code == 0 and "RELEASE" in table.stdout and rel["id"] in table.stdout


def test_a_kubectl_edit_to_a_field_git_does_not_set_shows_in_diff_and_sync_removes_it(released):
    work, _, ns, rel = released
    assert ship("sync", "dev").exit_code == 0
    edit = kubectl("-n", ns, "set", "env", "deployment/hellok8s", "FAIL_MODE=errors")
    assert edit.returncode == 0, edit.stderr
    diff = ship("diff", "dev")
    assert diff.exit_code == 3, diff.output  # drift
    assert "-        - name: FAIL_MODE" in diff.stdout and "-          value: errors" in diff.stdout
    synced = ship("sync", "dev")
    assert synced.exit_code == 0, synced.output
    assert f"Deployment/{ns}/hellok8s: taking over fields set by kubectl-set" in synced.stderr
    env = get("deployment", "hellok8s", ns)["spec"]["template"]["spec"]["containers"][0].get("env") or []
    assert "FAIL_MODE" not in [e["name"] for e in env]
    assert {m["manager"] for m in get("deployment", "hellok8s", ns)["metadata"]["managedFields"]} & {"kubectl-set"} == set()
    assert ship("diff", "dev").exit_code == 0


def test_dry_runs_show_the_commit_and_the_sync_and_change_nothing(released, hellok8s_image):
    work, bare, ns, _ = released
    assert ship("sync", "dev").exit_code == 0

    def heads() -> tuple[str, str]:
        local = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout
        remote = subprocess.run(["git", "ls-remote", str(bare)], capture_output=True, text=True).stdout
        return local, remote

    env_file = work / "apps/hellok8s/config/dev.env"
    env_file.write_text(env_file.read_text() + "DRY_RUN_CHECK=1\n")
    commit_all(work, "a config change, released only by a dry run")
    before, version = heads(), get("deployment", "hellok8s", ns)["metadata"]["resourceVersion"]
    retire = ship("retire", "dev", "hellok8s", "--reason", "gone", "--dry-run", "-o", "json")
    assert retire.exit_code == 0, retire.output
    planned = json.loads(retire.stdout)
    assert planned["dry_run"] is True and planned["commits"][0]["subject"] == "retire(dev): hellok8s: gone"
    assert any(d["subject"] == f"Deployment/{ns}/hellok8s" and d["action"] == "pruned" for d in planned["sync"]["dev"])
    again = ship("release", "dev", "--image", hellok8s_image, "--dry-run")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("would commit: ") and "a sync of dev would apply:" in again.stdout
    assert f"Deployment/{ns}/hellok8s configured" in again.stdout
    assert heads() == before and subprocess.run(["git", "status", "--porcelain"], cwd=work, capture_output=True,
                                                text=True).stdout == ""
    assert get("deployment", "hellok8s", ns)["metadata"]["resourceVersion"] == version
