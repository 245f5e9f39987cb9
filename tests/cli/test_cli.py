"""The CLI's own contract: ranges checked at parse time, one-line errors, results as JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipeline.cli import app


def ship(*args: str):
    return CliRunner().invoke(app, list(args))


def test_canary_weight_is_checked_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ship.yaml here: a parse-time refusal never gets that far
    for weight in ("0", "101"):
        out = ship("promote", "uat", "prod", "--canary", weight)
        assert out.exit_code == 2 and "Invalid value for '--canary'" in out.output


def test_a_missing_ship_yaml_is_one_line_and_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = ship("status")
    assert out.exit_code == 1
    assert out.stderr.strip().startswith("ConfigError: no ship.yaml in ") and len(out.stderr.strip().splitlines()) == 1


def test_history_as_json(tmp_path, monkeypatch):
    from tests.fakes import fake_project

    fake_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = ship("history", "dev", "--output", "json")
    assert out.exit_code == 0 and json.loads(out.stdout) == {"environment": "dev", "releases": []}


def test_global_and_lock_options_reach_the_context(monkeypatch):
    from pipeline.errors import ConfigError

    seen: dict = {}

    def open_context(progress, **options):
        seen.clear()
        seen.update(options)
        raise ConfigError("stopped here")

    monkeypatch.setattr("pipeline.commands.context.open_context", open_context)
    cases = [(["abort", "prod", "--no-wait"], 0), (["rollback", "dev", "--lock-timeout", "7"], 7),
             (["release", "dev", "--no-sync", "--image", "x"], 120), (["retire", "dev", "a", "--no-wait"], 0),
             (["promote", "dev", "uat", "--lock-timeout", "0.5"], 0.5), (["sync", "dev", "--no-wait"], 0)]
    for args, wait in cases:
        out = ship(*args)
        assert out.exit_code == 1 and "ConfigError: stopped here" in out.stderr and seen["lock_wait"] == wait, args
    ship("--kubeconfig", "/k1:/k2", "--context", "second", "status")
    assert seen["kubeconfig"] == "/k1:/k2" and seen["kube_context"] == "second"
    ship("status")
    assert seen["kubeconfig"] is None and seen["kube_context"] is None  # nothing carried over from the last run
