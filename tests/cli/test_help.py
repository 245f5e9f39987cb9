"""`ship --help` and every command's `-h`, pinned: 80 columns, ship's own layout, whatever typer
version is installed. After a deliberate change: SHIP_UPDATE_SNAPSHOTS=1 pytest tests/cli/test_help.py."""

from __future__ import annotations

import os
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from pipeline.cli import app

SNAPSHOT = Path(__file__).with_name("help.txt")


def every_help() -> str:
    names = list(typer.main.get_command(app).commands)
    pages = []
    for args in ([], *([name] for name in names)):
        out = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)
        assert out.exit_code == 0, out.output
        pages.append(f"$ ship {' '.join([*args, '--help'])}\n{out.stdout}")
    return "\n".join(pages)


def test_help_matches_the_snapshot():
    text = every_help()
    if os.environ.get("SHIP_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_help_fits_80_columns_and_names_no_python_types():
    text = every_help()
    assert [line for line in text.splitlines() if len(line) > 80] == []
    assert "<bool>" not in text and "<str>" not in text and "list[str]" not in text


def test_h_is_help():
    assert CliRunner().invoke(app, ["sync", "-h"]).stdout == CliRunner().invoke(app, ["sync", "--help"]).stdout
