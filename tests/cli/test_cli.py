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
