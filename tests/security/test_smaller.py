"""The review's smaller findings (issue 27, item 9): `--image` from another registry or without a
host, and pod messages that would be workflow commands in a CI log. Real git, in-memory cluster."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline import names
from pipeline.cli import app
from pipeline.commands import deploy
from pipeline.config import Slot
from pipeline.errors import RegistryError
from pipeline.kube.health import pods
from tests.fakes import DIGEST_GOOD, fake_context, fake_project


@pytest.fixture
def flow(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    ctx, _, registry = fake_context(tmp_path, [])
    yield ctx, registry
    ctx.close()


def test_an_image_from_another_registry_is_refused_though_its_digest_is_in_ships(flow):
    """Checked against ship's registry, evil.example's image passed: same path, tag and digest."""
    ctx, _ = flow
    with pytest.raises(RegistryError, match=r"--image evil.example/hellok8s:1111111@sha256:a{64}: not in ship's registry "
                                            r"127.0.0.1:15000"):
        deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(f"evil.example/hellok8s:1111111@{DIGEST_GOOD}",)))
    assert ctx.workspace.current_release(Slot(ctx.config.env("dev"), "hellok8s")) is None


def test_an_image_without_a_host_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIP_SECRET_HELLOK8S_DB_PASSWORD", "s3cret")
    fake_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["release", "dev", "--no-sync", "--image", f"hellok8s:1111111@{DIGEST_GOOD}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines() == [
        f"RegistryError: 'hellok8s:1111111@{DIGEST_GOOD}' names no registry host "
        "(expected host[:port]/repo:tag@sha256:<64 hex>)"]


def test_a_termination_message_reaches_a_ci_log_without_workflow_commands():
    message = "boom\n::add-mask::hunter2\n::error title=x::forged\n##[error]old style\x1b[31m"
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
           "status": {"phase": "Failed", "containerStatuses": [
               {"name": "app", "state": {"terminated": {"exitCode": 1, "message": message}}}]}}
    health = pods.assess_pod(pod)
    assert "\n" not in health.message and "::" not in health.message and "##[" not in health.message
    assert "\x1b" not in health.message and health.message.startswith("failed: container app exited 1 (boom ")
    assert names.one_line("x" * 500, 10) == "x" * 9 + "…"
