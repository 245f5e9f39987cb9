"""Health gates and rollback on the local cluster: a good release becomes healthy; never-ready
and crash-looping releases are caught and rolled back automatically; manual rollback, to a
named release and to one whose config left the overlay; a rollback that fails stops."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import git
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import commit_all

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]
SECRET_VAR = "SHIP_SECRET_HELLOK8S_DB_PASSWORD"


def ship(*args: str):
    return CliRunner().invoke(app, list(args))



def live_deployment(ns: str) -> dict:
    out = subprocess.run(["kubectl", "-n", ns, "get", "deployment", "hellok8s", "-o", "json"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def history(env: str = "dev") -> dict[str, tuple[str, str]]:
    out = ship("history", env, "--output", "json")
    assert out.exit_code == 0, out.output
    return {r["id"]: (r["outcome"], r["reason"]) for r in json.loads(out.stdout)["releases"]}


def subjects(bare: Path) -> list[str]:
    return git.Repo(bare).git.log("--format=%s", "main").splitlines()


@pytest.fixture
def dev(env_repo, monkeypatch):
    """A repo whose dev Deployment gives up after 5s without progress; its dev namespace."""
    work, bare, namespaces = env_repo
    monkeypatch.setenv(SECRET_VAR, "pw")
    dep = work / "apps/hellok8s/base/deployment.yaml"
    dep.write_text(dep.read_text().replace("progressDeadlineSeconds: 60", "progressDeadlineSeconds: 5"))
    commit_all(work, "short progress deadline for tests")
    return work, bare, namespaces["dev"]


def release(image: str, *extra: str):
    return ship("release", "dev", "--image", image, "--output", "json", *extra)


def new_config(work: Path, message: str) -> None:
    (work / "apps/hellok8s/config/dev.env").write_text(f"MESSAGE={message}\nDB_URL=postgres://db\n")
    commit_all(work, f"config: {message}")


def test_a_good_release_becomes_healthy_and_is_recorded(dev, hellok8s_image):
    work, bare, ns = dev
    out = release(hellok8s_image)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["gate"]["passed"] is True and data["gate"]["subject"] == f"Deployment/{ns}/hellok8s"
    rid = data["release"]["id"]
    assert history()[rid] == ("healthy", "")
    assert subjects(bare)[:2] == [f"record(dev): hellok8s@{rid} healthy", f"release(dev): hellok8s@{rid}"]


def test_a_never_ready_release_is_rolled_back_automatically(dev, hellok8s_image, broken_images):
    work, bare, ns = dev
    good = json.loads(release(hellok8s_image).stdout)["release"]
    new_config(work, "two")
    bad = release(broken_images["never-ready"])
    assert bad.exit_code == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("GateFailed: dev: r") and "ProgressDeadlineExceeded" in last
    assert last.endswith(f"rolled back to {good['id']}")
    bad_id = last.split(": ")[2].split(" failed")[0]
    live = live_deployment(ns)
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == good["image"]
    assert container["envFrom"][0]["configMapRef"]["name"] == good["config"]
    assert live["status"].get("availableReplicas") == 3
    assert history()[bad_id] == ("rejected", f"Deployment/{ns}/hellok8s ProgressDeadlineExceeded")
    assert history()[good["id"]][0] == "rolled back to"
    assert f"rollback(dev): hellok8s@{bad_id} → {good['id']}: Deployment/{ns}/hellok8s ProgressDeadlineExceeded" in subjects(bare)
    assert git.Repo(bare).git.rev_list("--merges", "main") == ""
    # A rejected release is not released again by accident.
    again = release(broken_images["never-ready"], "--no-sync")
    assert again.exit_code == 1 and "--allow-rejected" in again.stderr and "was rejected in dev" in again.stderr


def test_a_crash_looping_release_is_caught_by_the_pod_gate_before_the_deadline(env_repo, monkeypatch, hellok8s_image,
                                                                               broken_images):
    work, bare, namespaces = env_repo  # progressDeadlineSeconds stays 60
    monkeypatch.setenv(SECRET_VAR, "pw")
    good = json.loads(release(hellok8s_image).stdout)["release"]
    new_config(work, "crashing")
    bad = ship("release", "dev", "--image", broken_images["crashloop"])
    assert bad.exit_code == 1
    assert "gate failed: Pod/" in bad.stderr and "CrashLoopBackOff" in bad.stderr
    assert bad.stderr.strip().endswith(f"rolled back to {good['id']}")
    gate_line = next(line for line in bad.stderr.splitlines() if "GateFailed" in line)
    assert "ProgressDeadlineExceeded" not in gate_line
    assert live_deployment(namespaces["dev"])["spec"]["template"]["spec"]["containers"][0]["image"] == good["image"]


def test_manual_rollback_to_a_named_release(dev, hellok8s_image):
    work, bare, ns = dev
    first = json.loads(release(hellok8s_image).stdout)["release"]
    new_config(work, "second")
    second = json.loads(release(hellok8s_image).stdout)["release"]
    assert second["id"] != first["id"]
    out = ship("rollback", "dev", "--to", first["id"], "--reason", "wrong greeting")
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0] == f"rolled back dev: hellok8s@{second['id']} → {first['id']}"
    assert live_deployment(ns)["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == first["config"]
    assert history()[second["id"]] == ("rolled back", "wrong greeting")
    assert history()[first["id"]] == ("rolled back to", "wrong greeting")
    assert subjects(bare)[0] == f"rollback(dev): hellok8s@{second['id']} → {first['id']}: wrong greeting"
    table = ship("history", "dev")
    assert table.exit_code == 0 and "OUTCOME" in table.stdout and "rolled back" in table.stdout


def test_rollback_recreates_a_config_version_pruned_from_the_overlay(dev, hellok8s_image):
    work, bare, ns = dev
    cfg = work / "ship.yaml"
    cfg.write_text(cfg.read_text().replace("keep_configs: 5", "keep_configs: 1"))
    commit_all(work, "keep one config")
    first = json.loads(release(hellok8s_image).stdout)["release"]
    new_config(work, "second")
    assert release(hellok8s_image).exit_code == 0
    config_file = work / f"environments/dev/hellok8s/configs/{first['config']}.yaml"
    assert not config_file.exists()
    out = ship("rollback", "dev")  # to the previous healthy release
    assert out.exit_code == 0, out.output
    assert config_file.exists() and "MESSAGE: Hello from dev" in config_file.read_text()
    assert f"configs/{first['config']}.yaml" in git.Repo(bare).git.show("main", "--name-only", "--format=")
    live = live_deployment(ns)
    assert live["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == first["config"]


def test_a_rollback_that_fails_its_own_gate_stops(dev, hellok8s_image):
    work, bare, ns = dev
    first = json.loads(release(hellok8s_image).stdout)["release"]
    # A broken base breaks every release rendered from it, the rollback target included.
    dep = work / "apps/hellok8s/base/deployment.yaml"
    dep.write_text(dep.read_text().replace("    metadata:\n      labels:",
                                           "    metadata:\n      annotations:\n        ship.dev/simulate: never-ready\n      labels:", 1))
    commit_all(work, "a broken base")
    out = release(hellok8s_image)
    assert out.exit_code == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"GateFailed: dev: the rollback to {first['id']} failed its gate too")
    assert "stopped without rolling back further" in last
    assert out.stderr.count("rolling back dev") == 1  # never a second rollback
    outcomes = history()
    assert outcomes[first["id"]][0] == "rollback failed"
    assert any(o == ("rejected", f"Deployment/{ns}/hellok8s ProgressDeadlineExceeded") for o in outcomes.values())
    assert git.Repo(bare).git.rev_list("--merges", "main") == ""
