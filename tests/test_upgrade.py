"""`ship init APP --upgrade`: the workflows move to this ship's action and keep the user's edits;
those that still differ from what this version writes are named, for a merge by hand."""

from __future__ import annotations

import git
from typer.testing import CliRunner

from pipeline import scaffold, upgrade
from pipeline.cli import app
from tests.conftest import ROOT


def scaffolded(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    git.Repo.init(tmp_path)
    scaffold.init(tmp_path, "shop", scaffold.InitOptions(path="apps/shop", port=8080, registry="ghcr.io/acme"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / ".github/workflows"


def test_an_older_version_of_the_action_moves_to_this_one_and_nothing_else_differs(tmp_path, monkeypatch):
    workflows = scaffolded(tmp_path, monkeypatch)
    for path in workflows.iterdir():
        path.write_text(path.read_text().replace(scaffold.action_ref(), "ship-dev/ship@v0.0.9"))
    out = CliRunner().invoke(app, ["init", "shop", "--upgrade"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [f"upgraded .github/workflows/{name} to {scaffold.action_ref()}"
                                       for name in ("pipeline.yml", "preview.yml", "rollback.yml")]
    for name, text in scaffold.workflow_files({"shop": ()}, scaffold.IGNORE).items():
        assert (tmp_path / name).read_text() == text


def test_the_copied_setup_action_goes_and_the_users_own_steps_stay(tmp_path, monkeypatch):
    workflows = scaffolded(tmp_path, monkeypatch)
    old = (ROOT / "tests/fixtures/pipeline-v0.1-setup-ship.yml").read_text()  # as ship init wrote it before action.yml
    mine = old.replace("__SECRETS_ENV__\n", "").replace("      - id: changes\n", "      - run: echo my own step\n      - id: changes\n")
    (workflows / "pipeline.yml").write_text(mine)
    (tmp_path / ".github/actions/setup-ship").mkdir(parents=True)
    (tmp_path / ".github/actions/setup-ship/action.yml").write_text("name: setup-ship\n")
    out = CliRunner().invoke(app, ["init", "shop", "--upgrade"])
    assert out.exit_code == 0, out.output
    text = (workflows / "pipeline.yml").read_text()
    assert "./.github/actions/setup-ship" not in text and "SHIP_PACKAGE" not in text
    assert text.count(f"uses: {scaffold.action_ref()}") == 5 and "      - run: echo my own step\n" in text
    assert not (tmp_path / ".github/actions/setup-ship").exists()
    assert (".github/workflows/pipeline.yml differs from what " + scaffold.action_ref()
            + " writes beyond the version: merge by hand") in out.stdout
    assert upgrade.upgraded(text, scaffold.action_ref()) == text  # a second upgrade changes nothing
