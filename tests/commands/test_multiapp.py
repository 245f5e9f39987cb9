"""Many apps in one environment, through the flows on an in-memory cluster (tests/fakes.py): the
layout, one-commit releases, units, per-app rollback and retire, and moving a repository from
the one-app layout. tests/rollout/test_multiapp_live.py runs the same rules on the local parts."""

from __future__ import annotations

import shutil

import git
import pytest

from pipeline import yamlsafe
from pipeline.commands import deploy, inspect
from pipeline.commands.context import open_context
from pipeline.config import Slot
from pipeline.errors import ConfigError, GateFailed, PromotionError
from pipeline.gitops.render import render
from pipeline.rollout.canary import CanaryOutcome
from tests.fakes import GOOD, NEVER_READY, fake_context, fake_project


def add_app(root, name: str) -> None:
    """apps/NAME: hellok8s's base and config renamed, and its entry in ship.yaml."""
    for folder in ("base", "config"):
        shutil.copytree(root / "apps/hellok8s" / folder, root / "apps" / name / folder)
        for f in (root / "apps" / name / folder).iterdir():
            f.write_text(f.read_text().replace("hellok8s", name))
    cfg = root / "ship.yaml"
    text = cfg.read_text()
    at = text.index("environments:")
    cfg.write_text(text[:at].rstrip("\n") + f"\n  {name}:\n    path: apps/{name}\n    image: {name}\n\n" + text[at:])


@pytest.fixture
def two(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    add_app(tmp_path, "web")
    repo = git.Repo(tmp_path)
    repo.git.add("--all")
    repo.git.commit("-m", "a second app")
    ctx, cluster, _ = fake_context(tmp_path, [])
    yield ctx, cluster, repo
    ctx.close()


def subjects(repo) -> list[str]:
    return repo.git.log("--format=%s").splitlines()


def test_two_apps_released_in_one_commit_each_with_its_own_folder_and_ledger(two):
    ctx, cluster, repo = two
    out = deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    refs = [r.release.ref for r in out.results]
    assert subjects(repo)[1] == f"release(dev): 2 apps: {', '.join(refs)}"  # then one record commit
    root = ctx.config.root / "environments/dev"
    top = yamlsafe.loads((root / "kustomization.yaml").read_text())
    assert top["resources"] == ["namespace.yaml", "hellok8s", "web"]
    assert (root / "web/ledger.yaml").is_file() and (root / "hellok8s/release.yaml").is_file()
    assert {"hellok8s", "web"} <= set(cluster.names("Deployment", "hk-dev"))
    rows = inspect.status(ctx, "dev").rows
    assert [(r.app, r.health) for r in rows] == [("hellok8s", "Healthy"), ("web", "Healthy")]
    assert [e.release.app for e in inspect.history(ctx, "dev", "web").entries] == ["web"]


def test_a_release_of_several_apps_rolls_back_only_the_one_that_fails(two):
    ctx, cluster, repo = two
    deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    (ctx.config.root / "apps/web/config/dev.env").write_text("MESSAGE=second\n")
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("MESSAGE=second\nDB_URL=x\n")
    repo.git.commit("-qam", "second configs")
    with pytest.raises(GateFailed, match="rolled back to"):
        deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={NEVER_READY}")))
    dev = ctx.config.env("dev")
    web = ctx.workspace.ledger(Slot(dev, "web")).entries
    hk = ctx.workspace.ledger(Slot(dev, "hellok8s")).entries
    assert [e.outcome.value for e in web] == ["rolled back to", "rejected"]
    assert [e.outcome.value for e in hk] == ["healthy", "healthy"]  # released beside it, never rolled back


def test_promote_moves_every_app_that_differs_as_one_unit(two):
    ctx, cluster, repo = two
    deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    unit = deploy.promote(ctx, "dev", "uat")
    assert [r.release.app for r in unit.results] == ["hellok8s", "web"]
    assert subjects(repo)[1].startswith("promote(uat): 2 apps: hellok8s@")
    nothing = deploy.promote(ctx, "dev", "uat")
    assert nothing.results == [] and "nothing to promote" in nothing.text()
    with pytest.raises(ConfigError, match="unknown app 'nope'"):
        deploy.promote(ctx, "dev", "uat", ["nope"])
    deploy.retire(ctx, "uat", "web", "only hellok8s in uat")
    with pytest.raises(PromotionError, match="web is not released in uat"):
        deploy.promote(ctx, "uat", "prod", ["web"])
    with pytest.raises(PromotionError, match="web is not in prod"):
        deploy.retire(ctx, "prod", "web", "x")


def test_rollback_with_several_apps_needs_an_app_or_all_and_never_another_apps_release(two):
    ctx, cluster, repo = two
    first = deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}"))).results
    (ctx.config.root / "apps/web/config/dev.env").write_text("MESSAGE=second\n")
    repo.git.commit("-qam", "web: second config")
    second = deploy.release(ctx, "dev", "web", deploy.ReleaseOptions(images=(GOOD,)))
    head = repo.head.commit.hexsha
    with pytest.raises(PromotionError, match="dev holds several apps \\(hellok8s, web\\): name one"):
        deploy.rollback(ctx, "dev", None, None, "x")
    with pytest.raises(PromotionError, match="belongs to hellok8s, not web"):
        deploy.rollback(ctx, "dev", "web", f"hellok8s@{first[0].release.id}", "x")
    assert repo.head.commit.hexsha == head
    back = deploy.rollback(ctx, "dev", "web", None, "bad copy")
    assert back.target.id == first[1].release.id and back.replaced.id == second.release.id
    assert ctx.workspace.current_release(Slot(ctx.config.env("dev"), "hellok8s")).id == first[0].release.id


def test_retire_removes_the_apps_folder_and_objects_and_keeps_its_ledger(two):
    ctx, cluster, repo = two
    deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    out = deploy.retire(ctx, "dev", "web", "merged")
    assert subjects(repo)[0] == "retire(dev): web: merged" and "web" not in cluster.names("Deployment", "hk-dev")
    assert "hellok8s" in cluster.names("Deployment", "hk-dev") and out.removed
    root = ctx.config.root / "environments/dev"
    assert sorted(p.name for p in (root / "web").iterdir()) == ["ledger.yaml"]
    assert yamlsafe.loads((root / "kustomization.yaml").read_text())["resources"] == ["namespace.yaml", "hellok8s"]
    assert "web" in {e.release.app for e in inspect.history(ctx, "dev").entries}


def old_layout(root) -> None:
    """environments/dev as ship wrote it before apps had folders (one app, files at the top)."""
    dev = root / "environments/dev"
    app = dev / "hellok8s"
    kz = yamlsafe.loads((app / "kustomization.yaml").read_text())
    kz["resources"] = ["namespace.yaml", *[r[3:] if r.startswith("../") else r for r in kz["resources"]]]
    kz["labels"] = [{"pairs": {k: v for k, v in kz["labels"][0]["pairs"].items() if k != "ship.dev/app"},
                     "includeSelectors": False}]
    for path in list(app.rglob("*")):
        if path.is_file():
            target = dev / path.relative_to(app)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    shutil.rmtree(app)
    (dev / "kustomization.yaml").write_text(yamlsafe.dumps(kz))


def test_a_repository_in_the_one_app_layout_moves_over_in_one_commit_and_renders_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    ctx, _, _ = fake_context(tmp_path, [])
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    ctx.close()
    old_layout(tmp_path)
    repo = git.Repo(tmp_path)
    repo.git.add("--all")
    repo.git.commit("-qm", "the one-app layout")

    def objects() -> list[dict]:
        out = render(tmp_path / "environments/dev", "environments/dev")
        for obj in out:
            obj["metadata"].get("labels", {}).pop("ship.dev/app", None)
        return sorted(out, key=lambda o: (o["kind"], o["metadata"]["name"]))

    before = objects()
    lines: list[str] = []
    with open_context(lines.append, tmp_path) as moved:
        assert moved.workspace.current_release(Slot(moved.config.env("dev"), "hellok8s")) is not None
    assert repo.head.commit.summary == "migrate(dev): one overlay folder per app" and not repo.is_dirty()
    assert any("migrate(dev)" in line for line in lines)
    assert objects() == before  # the cluster sees the same objects (and ship's app label)
    assert (tmp_path / "environments/dev/hellok8s/ledger.yaml").is_file()
    with open_context(lines.append, tmp_path):
        pass
    assert repo.head.commit.summary == "migrate(dev): one overlay folder per app"  # once


def test_a_unit_canary_runs_each_app_beside_its_stable_with_its_own_route(two):
    ctx, cluster, repo = two
    both = ["hellok8s", "web"]
    deploy.release(ctx, "dev", both, deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    deploy.promote(ctx, "dev", "uat")
    deploy.promote(ctx, "uat", "prod")  # the first releases: no stable to run a canary beside
    for name in both:
        path = ctx.config.root / f"apps/{name}/config/dev.env"
        path.write_text(path.read_text() + "EXTRA=1\n")
    repo.git.commit("-qam", "new config for both")
    deploy.release(ctx, "dev", both, deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    deploy.promote(ctx, "dev", "uat")
    held = deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(hold=True))
    assert [r.app for r in held.releases] == both and "are held as a canary in prod" in held.text()
    routes = {r["metadata"]["name"]: r["spec"] for r in cluster.list("gateway.networking.k8s.io/v1", "HTTPRoute",
                                                                      "hk-prod")}
    assert {n: s["hostnames"] for n, s in routes.items()} == {"hellok8s": ["hellok8s.example.com"],
                                                              "web": ["web.example.com"]}
    assert {n: [b["weight"] for b in s["rules"][0]["backendRefs"]] for n, s in routes.items()} == {
        "hellok8s": [50, 50], "web": [50, 50]}  # held after the last step (10% → 50%)
    aborted = deploy.abort(ctx, "prod", "web looks off", "web")
    assert aborted.apps == ("web",) and "web-canary" not in cluster.names("Deployment", "hk-prod")
    assert "hellok8s-canary" in cluster.names("Deployment", "hk-prod")
    resumed = deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(resume=True))
    assert [r.app for r in resumed.releases] == ["hellok8s"]
    prod = ctx.config.env("prod")
    assert ctx.workspace.current_release(Slot(prod, "hellok8s")).id == held.releases[0].id
    assert ctx.workspace.ledger(Slot(prod, "web")).find(held.releases[1].id).outcome.value == "rejected"


def test_an_app_new_to_the_target_goes_first_directly_and_the_others_run_their_canary(two):
    ctx, cluster, repo = two
    deploy.release(ctx, "dev", ["hellok8s", "web"], deploy.ReleaseOptions(images=(f"hellok8s={GOOD}", f"web={GOOD}")))
    deploy.promote(ctx, "dev", "uat")
    deploy.promote(ctx, "uat", "prod", ["hellok8s"])  # web never reached prod
    path = ctx.config.root / "apps/hellok8s/config/dev.env"
    path.write_text(path.read_text() + "EXTRA=1\n")
    repo.git.commit("-qam", "hellok8s: new config")
    deploy.release(ctx, "dev", "hellok8s", deploy.ReleaseOptions(images=(GOOD,)))
    deploy.promote(ctx, "dev", "uat")
    out = deploy.promote(ctx, "uat", "prod", None, deploy.PromoteOptions(hold=True))
    direct, held = out.results
    assert direct.release.app == "web" and direct.gate.passed
    assert held.outcome is CanaryOutcome.HELD and [r.app for r in held.releases] == ["hellok8s"]
    assert "hellok8s-canary" in cluster.names("Deployment", "hk-prod") and "web" in cluster.names("Deployment", "hk-prod")
