"""`--dry-run`: the commit a command would write and what a sync would apply, with nothing
written, pushed or applied (a rehearsal on a throwaway clone; tests.fakes' in-memory cluster)."""

from __future__ import annotations

import subprocess

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.commands import deploy, dryrun
from pipeline.config import Slot
from tests.fakes import GOOD, fake_context, fake_project


def head(root) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout


def status(root) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True).stdout


def test_a_promotion_rehearsed_shows_its_commit_and_sync_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "x")
    fake_project(tmp_path)
    ctx, cluster, _ = fake_context(tmp_path, [])
    rel = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    before, objects = head(tmp_path), len(cluster.objects)
    result = dryrun.rehearse(ctx, ["uat"], lambda clone: deploy.promote(clone, "dev", "uat", None, deploy.PromoteOptions(sync=False, push=False)))
    assert [c.subject for c in result.commits] == [f"promote(uat): hellok8s@{rel.id} from dev"]
    assert any(f.startswith("environments/uat/hellok8s/") for f in result.commits[0].files)
    assert "Deployment/hk-uat/hellok8s" in {d.subject for d in result.applies["uat"]}
    assert result.text().startswith(f"would commit: promote(uat): hellok8s@{rel.id} from dev")
    assert result.to_json()["dry_run"] is True
    assert head(tmp_path) == before and status(tmp_path) == "" and len(cluster.objects) == objects
    assert ctx.workspace.current_release(Slot(ctx.config.env("uat"), "hellok8s")) is None


def test_freeze_dry_run_from_the_command_line(tmp_path, monkeypatch):
    fake_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = head(tmp_path)
    out = CliRunner().invoke(app, ["freeze", "prod", "--reason", "incident", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0] == "would commit: freeze(prod): incident"
    assert "environments/prod/freeze.yaml" in out.stdout
    assert "dry run: nothing was written, pushed or applied" in out.stderr
    assert head(tmp_path) == before and status(tmp_path) == ""
    as_yaml = CliRunner().invoke(app, ["freeze", "prod", "--reason", "incident", "--dry-run", "-o", "yaml"])
    assert as_yaml.stdout.startswith("dry_run: true\ncommits:\n- subject: 'freeze(prod): incident'")
