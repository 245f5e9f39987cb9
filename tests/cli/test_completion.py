"""`ship completion bash|zsh|fish` prints a script, and the shell's questions get ship's answers
(the script calls ship with _SHIP_COMPLETE set; typer's completion classes reply)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def ship(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o default -F _ship_completion ship"),
                                               ("zsh", "#compdef ship"), ("fish", "complete --command ship")])
def test_the_script_names_ship_and_its_variable(shell, marker):
    out = ship("completion", shell)
    assert out.returncode == 0 and marker in out.stdout and "_SHIP_COMPLETE" in out.stdout


def test_the_shell_gets_commands_and_options():
    assert ship(_SHIP_COMPLETE="complete_bash", COMP_WORDS="ship pro", COMP_CWORD="1").stdout.split() == ["promote"]
    zsh = ship(_SHIP_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="ship sync --no-w").stdout
    assert '"--no-wait":"Fail at once if another run holds the environment' in zsh
