"""`ship summary`: Markdown and Mermaid from git alone (a temporary repository, no cluster)."""

from __future__ import annotations

import pytest

from pipeline.commands import deploy, inspect
from pipeline.errors import GateFailed
from tests.fakes import GOOD, NEVER_READY, fake_context, fake_project


def test_summary_shows_releases_outcomes_and_the_promotion_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "x")
    fake_project(tmp_path)
    ctx, _, _ = fake_context(tmp_path, [])
    good = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    deploy.promote(ctx, "dev", "uat")
    (tmp_path / "apps/hellok8s/config/uat.env").write_text("MESSAGE=again\nDB_URL=x\n")
    ctx.workspace.git.repo.git.commit("-qam", "uat config")
    with pytest.raises(GateFailed, match="failed its gate"):
        deploy.release(ctx, "uat", None, deploy.ReleaseOptions(images=(NEVER_READY,)))
    text = inspect.summary(ctx, "Pipeline").text()
    lines = text.splitlines()
    assert lines[0] == "### Pipeline"
    assert any(line.startswith(f"| dev | {good.ref} | `{GOOD}` | - | {good.ref} healthy") for line in lines)
    assert any(line.startswith("| uat |") and "rejected: Deployment/hk-uat/hellok8s ProgressDeadlineExceeded" in line
               for line in lines)
    assert "| prod | - | `-` | - | - |" in lines
    assert "flowchart LR" in text and "  dev --> uat" in text and "  uat --> prod" in text
    assert "class uat failed" in text and "class prod empty" in text
