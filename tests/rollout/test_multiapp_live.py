"""Many apps in one environment, on the local cluster: a three-app repository (web, api, worker)
through dev → uat → prod, units and --independent, side-by-side canaries judged together,
rollback per app and --all, retire, prune and secret isolation, racing releases, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import git
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import commit_all

pytestmark = [pytest.mark.cluster, pytest.mark.registry, pytest.mark.engine]
APPS = ("web", "api", "worker")


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def kubectl_json(ns: str, *what: str) -> dict:
    out = subprocess.run(["kubectl", "-n", ns, "get", *what, "-o", "json"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def subjects(bare: Path) -> list[str]:
    return git.Repo(bare).git.log("--format=%s", "main").splitlines()


def running(ns: str, name: str) -> str | None:
    """The release a Deployment runs (its ship.dev/release annotation)."""
    return (kubectl_json(ns, "deployment", name).get("metadata", {}).get("annotations") or {}).get("ship.dev/release")


def history(env: str, app_name: str | None = None) -> dict[tuple[str, str], str]:
    out = ship("history", env, *([app_name] if app_name else []), "--output", "json")
    assert out.exit_code == 0, out.output
    return {(r["app"], r["id"]): r["outcome"] for r in json.loads(out.stdout)["releases"]}


def add_app(work: Path, name: str, secrets: tuple[str, ...] = ()) -> str:
    """apps/NAME: hellok8s's base and config renamed; its ship.yaml entry (image: its own name,
    which kustomize's images: repoints at the pinned hellok8s image)."""
    src, dst = work / "apps/hellok8s", work / "apps" / name
    for folder in ("base", "config"):
        (dst / folder).mkdir(parents=True)
        for f in (src / folder).iterdir():
            text = f.read_text().replace("hellok8s", name).replace("replicas: 3", "replicas: 2")
            (dst / folder / f.name).write_text(text)
    return (f"  {name}:\n    path: apps/{name}\n    image: {name}\n"
            + (f"    secrets: [{', '.join(secrets)}]\n" if secrets else ""))


def break_when(ns: str, name: str, release: str, stop: threading.Event) -> None:
    """Make Deployment NAME's pods never ready (KWOK's simulation) once it runs `release`."""
    patch = json.dumps({"spec": {"template": {"metadata": {"annotations": {"ship.dev/simulate": "never-ready"}}}}})
    while not stop.is_set():
        if running(ns, name) == release or (release == "*" and kubectl_json(ns, "deployment", name)):
            subprocess.run(["kubectl", "-n", ns, "patch", "deployment", name, "-p", patch], capture_output=True)
            return
        time.sleep(0.2)


def breaking(ns: str, name: str, release: str):
    stop = threading.Event()
    thread = threading.Thread(target=break_when, args=(ns, name, release, stop), daemon=True)
    thread.start()
    return stop


@contextlib.contextmanager
def pods_refused(ns: str, name: str, release: str):
    """The API server refuses pods of app NAME on `release` in namespace NS (a ValidatingAdmission-
    Policy): that release's rollout never completes, deterministically, while every other release
    (the one a rollback returns to) runs as usual."""
    policy = f"refuse-{ns}-{name}"[:60]
    objects = [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                          "operations": ["CREATE"], "resources": ["pods"]}]},
                  "validations": [{"expression": (
                      f"!(has(object.metadata.annotations) && object.metadata.annotations[?'ship.dev/release']"
                      f".orValue('') == '{release}' && has(object.metadata.labels) && "
                      f"object.metadata.labels[?'app.kubernetes.io/name'].orValue('') == '{name}')"),
                      "message": f"pods of {name} {release} are refused by this test"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}}}]
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    subprocess.run(["kubectl", "apply", "-f", "-"], input=text, text=True, check=True, capture_output=True)
    time.sleep(2)  # the policy takes effect once the API server has loaded it
    try:
        yield
    finally:
        subprocess.run(["kubectl", "delete", "-f", "-", "--wait=false"], input=text, text=True, capture_output=True)


@pytest.fixture
def apps_repo(env_repo, hellok8s_image, monkeypatch):
    """env_repo holding three apps (web, api with a secret, worker) instead of hellok8s; short
    gates; prod's canary on the gateway with a host per app. Returns (work, bare, namespaces, image)."""
    work, bare, namespaces = env_repo
    monkeypatch.setenv("SHIP_SECRET_API_TOKEN", "api-only-token")
    cfg = work / "ship.yaml"
    text = cfg.read_text()
    entries = "".join(add_app(work, n, ("TOKEN",) if n == "api" else ()) for n in APPS)
    text = text[:text.index("apps:\n") + 6] + entries + text[text.index("\nenvironments:"):]
    text = re.sub(r"gates: \{timeout: \d+s(, bake: \d+s)?\}", "gates: {timeout: 20s}", text)
    text = re.sub(r"host: .*", 'host: "{app}.example.com"\n      interval: 1s', text, count=1)
    text = text.replace("{weight: 10, bake: 30s}", "{weight: 10, bake: 3s}")
    cfg.write_text(text)
    commit_all(work, "three apps")
    return work, bare, namespaces, hellok8s_image


def release_all(image: str, *apps: str):
    return ship("release", "dev", *apps, *[f"--image={a}={image}" for a in apps], "--output", "json")


def new_greeting(work: Path, *apps: str) -> None:
    for name in apps:
        env = work / f"apps/{name}/config/dev.env"
        env.write_text(re.sub(r"(?m)^MESSAGE=.*$", f"MESSAGE=Hello again from dev ({time.time()})", env.read_text()))
    commit_all(work, f"new greeting for {', '.join(apps)}")


def ids(result) -> dict[str, str]:
    data = json.loads(result.stdout)
    rows = data.get("results") or [data]
    return {r["release"]["app"]: r["release"]["id"] for r in rows}


def test_three_apps_go_to_prod_and_a_failed_canary_sends_back_only_its_unit(apps_repo):
    work, bare, ns, image = apps_repo
    first = release_all(image, *APPS)
    assert first.exit_code == 0, first.output
    r1 = ids(first)
    assert sum(s.startswith("release(dev): 3 apps: ") for s in subjects(bare)) == 1  # one commit for three
    rows = json.loads(ship("status", "dev", "--output", "json").stdout)["environments"]
    assert sorted((r["app"], r["release"], r["health"]) for r in rows) == sorted((a, r1[a], "Healthy") for a in APPS)
    secret = kubectl_json(ns["dev"], "secret", "api-secrets")
    assert set(secret["data"]) == {"TOKEN"} and not kubectl_json(ns["dev"], "secret", "web-secrets")

    assert ship("promote", "dev", "uat").exit_code == 0  # no APP: every app that differs, one unit
    assert ship("promote", "uat", "prod").exit_code == 0  # prod's first releases: no stable to run a canary beside
    assert [s for s in subjects(bare) if s.startswith("promote(")][:2] == [
        f"promote(prod): 3 apps: api@{r1['api']}, web@{r1['web']}, worker@{r1['worker']} from uat",
        f"promote(uat): 3 apps: api@{r1['api']}, web@{r1['web']}, worker@{r1['worker']} from dev"]
    assert all(running(ns["prod"], a) == r1[a] for a in APPS)

    new_greeting(work, "web", "api")
    r2 = ids(release_all(image, "web", "api"))
    again = ship("promote", "dev", "uat")
    assert again.exit_code == 0 and subjects(bare)[1].startswith("promote(uat): 2 apps: ")  # worker did not change
    worker_before = kubectl_json(ns["prod"], "deployment", "worker")["metadata"]

    with pods_refused(ns["prod"], "api", r2["api"]):  # api's canary never gets a pod
        out = ship("promote", "uat", "prod")  # web and api: one unit, canaries side by side
    assert out.exit_code == 1
    assert re.search(r"GateFailed: prod: canary 10% failed: Deployment/\S+/api-canary", out.stderr), out.stderr
    assert f"stable api@{r1['api']}, web@{r1['web']} untouched" in out.stderr
    # The canaries warm up at weight 0 first (rollout/handover.py): api's never became ready, so no
    # user was sent to either and no step was committed.
    assert not any(s.startswith("canary(prod): ") for s in subjects(bare))
    assert "warming up" in out.stderr
    assert subjects(bare)[0].startswith(f"abort(prod): api@{r2['api']}, web@{r2['web']} canary at 10%")
    prod = history("prod")
    assert prod[("web", r2["web"])] == prod[("api", r2["api"])] == "rejected"  # the unit is judged together
    assert running(ns["prod"], "web") == r1["web"] and running(ns["prod"], "api") == r1["api"]
    after = kubectl_json(ns["prod"], "deployment", "worker")["metadata"]
    assert (after["uid"], after["generation"]) == (worker_before["uid"], worker_before["generation"])  # untouched
    assert not any(d["metadata"]["name"].endswith("-canary")
                   for d in kubectl_json(ns["prod"], "deployments")["items"])

    refused = ship("promote", "uat", "prod", "web")
    assert refused.exit_code == 1 and "was rejected in prod; it is not promoted again" in refused.stderr

    several = ship("rollback", "uat")
    assert several.exit_code == 1 and "uat holds several apps (api, web, worker): name one" in several.stderr
    back = ship("rollback", "uat", "--all", "--reason", "bad greeting")
    assert back.exit_code == 0, back.output
    assert subjects(bare)[0] == (f"rollback(uat): api@{r2['api']} → {r1['api']}, web@{r2['web']} → {r1['web']}: "
                                 "bad greeting")
    assert running(ns["uat"], "web") == r1["web"] and running(ns["uat"], "api") == r1["api"]
    assert set(history("uat", "api")) == {("api", r1["api"]), ("api", r2["api"])}
    table = ship("status").stdout
    assert re.search(r"prod\s+worker\s+" + r1["worker"], table) and re.search(r"uat\s+web\s+" + r1["web"], table)


def test_a_unit_that_fails_its_gate_goes_back_together_and_independent_apps_do_not(apps_repo):
    work, bare, ns, image = apps_repo
    r1 = ids(release_all(image, "web", "api"))
    assert ship("promote", "dev", "uat", "web", "api").exit_code == 0
    new_greeting(work, "web", "api")
    r2 = ids(release_all(image, "web", "api"))
    with pods_refused(ns["uat"], "api", r2["api"]):
        out = ship("promote", "dev", "uat", "web", "api")
    assert out.exit_code == 1
    assert (f"the unit went back: web@{r2['web']} → {r1['web']}, api@{r2['api']} → {r1['api']}") in out.stderr
    assert sum(s.startswith("rollback(uat): ") for s in subjects(bare)) == 1  # one rollback commit for the unit
    uat = history("uat")
    assert uat[("api", r2["api"])] == "rejected" and uat[("web", r2["web"])] == "rolled back"
    assert running(ns["uat"], "web") == r1["web"] and running(ns["uat"], "api") == r1["api"]

    new_greeting(work, "web", "api")
    r3 = ids(release_all(image, "web", "api"))
    with pods_refused(ns["uat"], "api", r3["api"]):
        each = ship("promote", "dev", "uat", "--independent")
    assert each.exit_code == 1 and "GateFailed: uat: " in each.stderr
    assert running(ns["uat"], "web") == r3["web"]  # healthy on its own: never rolled back with api
    assert running(ns["uat"], "api") == r1["api"]
    uat = history("uat")
    assert uat[("web", r3["web"])] == "healthy" and uat[("api", r3["api"])] == "rejected"


def test_bad_input_is_one_line_and_changes_nothing(apps_repo):
    work, bare, ns, image = apps_repo
    r1 = ids(release_all(image, "web", "api"))
    assert ship("promote", "dev", "uat", "web").exit_code == 0
    before = subjects(bare)
    stop = breaking(ns["dev"], "api", r1["api"])  # api unhealthy in dev from now on
    time.sleep(3)
    stop.set()
    cases = {
        ("promote", "dev", "uat", "nope"): "ConfigError: unknown app 'nope'",
        ("promote", "dev", "uat", "worker"): "PromotionError: worker is not released in dev",
        ("promote", "dev", "uat", "web", "api"): "PromotionError: dev is not healthy: Deployment/",
        ("rollback", "uat", "web", "--to", f"api@{r1['api']}"): f"PromotionError: release api@{r1['api']} belongs to api",
        ("rollback", "dev", "web", "--to", r1["api"] + "x"): "PromotionError: release",
        ("release", "dev", "web", "--image", f"api={image}"): "ConfigError: --image api=",
        ("retire", "uat", "api"): "PromotionError: api is not in uat",
        ("abort", "uat", "web"): "PromotionError: no canary of web in uat",
    }
    for args, message in cases.items():
        out = ship(*args)
        assert out.exit_code != 0, args
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith(message), (args, out.stderr)
    assert subjects(bare) == before
    assert not git.Repo(work).is_dirty(untracked_files=True)
    assert running(ns["uat"], "web") == r1["web"] and not kubectl_json(ns["uat"], "deployment", "api")


def test_retire_and_removal_take_only_that_apps_objects_and_racing_releases_both_land(apps_repo, tmp_path):
    work, bare, ns, image = apps_repo
    assert release_all(image, *APPS).exit_code == 0
    subprocess.run(["kubectl", "-n", ns["dev"], "scale", "deployment", "worker", "--replicas=4"], check=True,
                   capture_output=True)
    drift, clean = ship("diff", "dev", "worker"), ship("diff", "dev", "web")
    assert drift.exit_code == 3 and f"Deployment/{ns['dev']}/worker" in drift.stdout and "web" not in drift.stdout
    assert clean.exit_code == 0 and clean.stdout == ""  # one app's drift is not another's
    web = kubectl_json(ns["dev"], "deployment", "web")["metadata"]

    new_greeting(work, "web", "api")
    other = tmp_path / "other-runner"
    git.Repo.clone_from(str(bare), other)
    env = {**os.environ, "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e"}
    runs = [subprocess.Popen([sys.executable, "-m", "pipeline", "release", "dev", name, "--image", image],
                             cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, where in (("web", work), ("api", other))]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    log = subjects(bare)
    assert any(s.startswith("release(dev): web@") for s in log[:4]) and any(s.startswith("release(dev): api@")
                                                                            for s in log[:4])
    git.Repo(work).git.pull("-q", "--rebase", "origin", "main")

    out = ship("retire", "dev", "worker", "--reason", "merged into api")
    assert out.exit_code == 0, out.output
    assert subjects(bare)[0] == "retire(dev): worker: merged into api"
    assert not kubectl_json(ns["dev"], "deployment", "worker") and not kubectl_json(ns["dev"], "service", "worker")
    assert not [c for c in kubectl_json(ns["dev"], "configmaps")["items"] if c["metadata"]["name"].startswith("worker")]
    now = kubectl_json(ns["dev"], "deployment", "web")["metadata"]
    assert now["uid"] == web["uid"]  # the other apps stay
    assert ("worker" in {a for a, _ in history("dev")}) and (work / "environments/dev/worker/ledger.yaml").is_file()

    cfg = work / "ship.yaml"
    text = cfg.read_text()
    cfg.write_text(text[:text.index("  api:\n")] + text[text.index("  worker:\n"):])
    commit_all(work, "api leaves ship.yaml")
    assert ship("sync", "dev").exit_code == 0
    assert subjects(bare)[0] == "retire(dev): api: removed from ship.yaml"
    assert not kubectl_json(ns["dev"], "deployment", "api") and not kubectl_json(ns["dev"], "secret", "api-secrets")
    assert kubectl_json(ns["dev"], "deployment", "web")["metadata"]["uid"] == web["uid"]
