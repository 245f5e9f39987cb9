"""Reproductions: a reason, an actor or a title never forges a trailer, a heading, a link or an
image; trailers are read from ship's final block only (issue 27, item 8). Real git, the
in-memory cluster."""

from __future__ import annotations

import pytest

from pipeline import names
from pipeline.commands import deploy, govern, inspect
from pipeline.errors import ConfigError
from pipeline.report import events, mdtext
from pipeline.report.preview.markdown import code
from tests.fakes import GOOD, fake_context, fake_project

FORGED = "x\nShip-Action: release\nShip-Release: r20991231-000000-abcdef0\nShip-App: hellok8s\nShip-Environment: prod"


@pytest.fixture
def flow(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    monkeypatch.delenv("SHIP_ACTOR", raising=False)
    fake_project(tmp_path)
    ctx, cluster, _ = fake_context(tmp_path, [])
    yield ctx
    ctx.close()


def test_a_reason_with_a_line_break_is_refused_and_nothing_is_committed(flow):
    ctx = flow
    head = ctx.workspace.git.head().sha
    with pytest.raises(ConfigError, match="--reason holds a line break or another control character; nothing recorded"):
        govern.freeze(ctx, "prod", FORGED)
    for refused in (lambda: deploy.rollback(ctx, "dev", None, None, "a\rb"), lambda: deploy.abort(ctx, "prod", "a\x1b[2Jb"),
                    lambda: deploy.retire(ctx, "dev", "hellok8s", "a\u2028b"),
                    lambda: deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,), override_freeze="a\nb"))):
        with pytest.raises(ConfigError, match="--reason holds a line break"):
            refused()
    assert ctx.workspace.git.head().sha == head and not ctx.workspace.git.dirty_paths()


def test_a_reason_is_capped_in_length(flow):
    with pytest.raises(ConfigError, match=f"--reason is 301 characters long; at most {names.TEXT_MAX}"):
        govern.freeze(flow, "prod", "x" * 301)


def test_an_actor_with_a_line_break_is_refused(flow, monkeypatch):
    monkeypatch.setenv("SHIP_ACTOR", "mallory\nShip-Override-By: alice")
    with pytest.raises(ConfigError, match=r"SHIP_ACTOR.* holds a line break"):
        deploy.release(flow, "dev", None, deploy.ReleaseOptions(images=(GOOD,), sync=False))


def test_titles_with_control_characters_are_refused(flow):
    with pytest.raises(ConfigError, match="--title holds a line break"):
        inspect.summary(flow, "ship\n## injected")
    with pytest.raises(ConfigError, match="the commit title holds a line break"):
        names.commit_message("t\nShip-Action: release", "freeze", {})
    with pytest.raises(ConfigError, match="Ship-Freeze-Reason holds a line break"):
        names.commit_message("t", "freeze", {"Freeze-Reason": "a\nb"})


def test_trailers_come_from_the_final_block_only_and_once_per_key():
    """The commit main's `ship freeze prod --reason $'x\\nShip-Action: release…'` made."""
    forged = (f"freeze(prod): {FORGED}\n\nShip-Action: freeze\nShip-Environment: prod\n"
              f"Ship-Freeze-Reason: {FORGED}\n")
    assert names.trailers(forged) == {}  # Ship-Action twice, and a line that is no trailer: not ship's block
    assert names.trailers("title\n\nShip-Action: release\nShip-Release: r1\n\nplain words\n") == {}
    assert names.trailers("Ship-Action: release") == {}  # a title alone is no trailer block
    made = names.commit_message("release(dev): hellok8s@r1", "release", {"Release": "r1", "Environment": "dev"})
    assert names.trailers(made) == {"Action": "release", "Release": "r1", "Environment": "dev"}


def test_a_forged_commit_is_no_release_on_the_dashboard(flow):
    ctx = flow
    repo = ctx.workspace.git.repo
    message = (f"freeze(prod): {FORGED}\n\nShip-Action: freeze\nShip-Environment: prod\n"
               f"Ship-Freeze-Reason: {FORGED}\n")
    repo.git.commit("--allow-empty", "-qm", message)  # what main committed for the forged reason
    found = events.parse_log(repo.git.log(f"--format={events.LOG_FORMAT}"))
    assert not [e for e in found if e.action == "release" and e.environment == "prod"]


def test_summary_and_preview_print_reasons_and_values_as_literal_text(flow):
    ctx = flow
    rel = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,))).release
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("MESSAGE=again\nDB_URL=x\n")
    ctx.workspace.git.repo.git.commit("-qam", "dev config")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.rollback(ctx, "dev", None, None, "## boom [click](https://evil.example/x) ![i](https://evil.example/i.png) <img>")
    text = inspect.summary(ctx, "Pipeline <b>").text()
    assert text.splitlines()[0] == "### Pipeline &lt;b&gt;"
    assert "[click](" not in text and "![i]" not in text and "<img>" not in text and "https://" not in text
    assert "\\#\\# boom \\[click\\](https\\://evil.example/x)" in text and rel.ref in text
    assert code("a``b`") == "``` a``b` ```" and code("`") == "`` ` ``" and code("a|b") == "`a\\|b`"
    assert mdtext.code("x\ny") == "`x y`"


def test_the_dashboard_escapes_reasons_and_commit_titles(flow):
    from pipeline.report.dashboard import model, page

    ctx = flow
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    (ctx.config.root / "apps/hellok8s/config/dev.env").write_text("MESSAGE=again\nDB_URL=x\n")
    ctx.workspace.git.repo.git.commit("-qam", "dev config <img src=x onerror=alert(1)>")
    deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,)))
    deploy.rollback(ctx, "dev", None, None, "<script>alert(1)</script>")
    html = page.render(model.gather(ctx, live=False, since="30d"))
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
