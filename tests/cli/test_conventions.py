"""docs/cli.md's tables are what the commands do: the exit codes, and which command takes -o,
--dry-run and the lock flags. A command added without its row fails here."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from pipeline.cli import EXIT_CODES, app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
LOCKING = {"release", "sync", "promote", "abort", "rollback", "retire"}  # the commands that take the Lease
DRY_RUN = {"release", "promote", "rollback", "retire", "freeze", "unfreeze"}


def table(heading: str) -> list[list[str]]:
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def options(command) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *getattr(p, "secondary_opts", []))}


def test_the_exit_codes_table_is_the_cli_s():
    assert {int(code): meaning for code, meaning in table("Exit codes")} == EXIT_CODES


def test_the_commands_table_is_what_each_command_takes():
    commands = typer.main.get_command(app).commands
    rows = {name.strip("`"): cells for name, *cells in table("Commands")}
    assert sorted(rows) == sorted(commands), "docs/cli.md needs one row per command"
    for name, command in commands.items():
        opts = options(command)
        said = rows[name]
        taken = ["yes" if {"-o", "--output"} <= opts else "-", "yes" if "--dry-run" in opts else "-",
                 "yes" if {"--lock-timeout", "--no-wait"} <= opts else "-"]
        assert said == taken, f"{name}: docs/cli.md says {said}, the command takes {taken}"


def test_every_locking_command_takes_the_lock_flags_and_the_asked_for_ones_dry_run():
    commands = typer.main.get_command(app).commands
    assert all({"--lock-timeout", "--no-wait"} <= options(commands[n]) for n in LOCKING)
    assert all("--dry-run" in options(commands[n]) for n in DRY_RUN)
    printing = set(commands) - {"version", "completion"}  # these print a fixed text, not a result
    assert [n for n in printing if "--output" not in options(commands[n])] == []
