"""The README cannot drift from the code: every `ship` command it shows names a real command
and real options, its ship.yaml reference parses, and its walkthrough block runs, as written,
against the local parts (in a throw-away copy of this repository)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from pipeline import config
from pipeline.cli import app
from pipeline.gitops import yamlsafe
from tests.conftest import ROOT, commit_all

README = (ROOT / "README.md").read_text()
COMMAND = re.compile(r"(?<![\w/.-])ship ([a-z]+)([^`|#\n)]*)")
SETUP_LINES = ['eval "$(make -s cluster | grep ^export)"', 'export PATH="$PWD/.venv/bin:$PATH"']


def cli_options() -> dict[str, set[str]]:
    group = typer.main.get_command(app)
    return {name: {opt for p in cmd.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
                   if opt.startswith("-")} | {"--help"}
            for name, cmd in group.commands.items()}


def code_in(text: str) -> str:
    """The README's fenced blocks and `inline code`, where commands are shown (prose is not)."""
    blocks = [re.sub(r"(^|\s)#.*$", "", line) for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
              for line in block.splitlines()]  # without shell and YAML comments
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    return "\n".join(blocks + re.findall(r"`([^`\n]+)`", prose))


def shown_commands(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in COMMAND.finditer(code_in(text) if "```" in text else text)]


def walkthrough() -> str:
    marker = "<!-- walkthrough: run by tests/test_readme.py -->\n```sh\n"
    start = README.index(marker) + len(marker)
    return README[start:README.index("```", start)]


def test_every_command_the_readme_shows_exists_with_its_options():
    options = cli_options()
    shown = shown_commands(README)
    assert len(shown) > 40
    for sub, rest in shown:
        assert sub in options, f"README shows `ship {sub}`, which is not a command"
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest):
            assert flag in options[sub], f"README shows `ship {sub} … {flag}`, which `ship {sub}` does not take"


def test_every_command_is_in_the_readme_and_in_its_walkthrough():
    walked = {sub for sub, _ in shown_commands(walkthrough())}
    assert set(cli_options()) - {"help"} <= walked, f"not in the walkthrough: {set(cli_options()) - walked}"


def test_the_readme_ship_yaml_reference_parses(tmp_path):
    block = README[README.index("## ship.yaml"):]
    block = block[block.index("```yaml\n") + 8:]
    data = yamlsafe.loads(block[:block.index("```")], "README.md")
    cfg = config.parse(data, tmp_path, "README.md", environ={})
    prod = cfg.env("prod")
    assert [s.weight for s in prod.canary.steps] == [10, 50] and prod.canary.http[0].requests == 40
    assert prod.canary.prometheus[0].max == 0.01
    assert prod.policy.require_signature and prod.policy.public_key == "keys/cosign.pub" and not prod.policy.allow_older
    assert [w.describe() for w in prod.policy.freeze] == [
        "window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin)", "window 'year-end' (2026-12-20 – 2027-01-04 Europe/Berlin)"]


@pytest.mark.cluster
@pytest.mark.registry
@pytest.mark.engine
def test_the_walkthrough_runs_as_written(env_repo, local_parts):
    work, bare, namespaces = env_repo
    lines = walkthrough().splitlines()
    assert [line.split("  #")[0].strip() for line in lines[:2]] == SETUP_LINES
    # The test provides the local parts and ship on PATH (what the two set-up lines do) and
    # shortens prod's canary bake; the rest runs verbatim.
    cfg = work / "ship.yaml"
    cfg.write_text(cfg.read_text().replace("bake: 30s", "bake: 2s").replace("bake: 10s", "bake: 1s"))
    commit_all(work, "short bakes for the walkthrough")
    env = {**os.environ, **local_parts, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "\n".join(lines[2:])
    proc = subprocess.run(["bash", "-euo", "pipefail", "-x", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert re.search(r"prod: r\S+ stable, r\S+ canary 10% \(step 1/1, held for a decision\)", proc.stdout)
    assert "aborted the canary of" in proc.stdout and "wrote ship.yaml" in proc.stdout
    assert re.search(r"FrozenError: prod is frozen by freeze commit \w+ .*: launch week", proc.stderr)
    assert "held by freeze (exit 75)" in proc.stdout and "unfroze prod" in proc.stdout
    # the second app: released beside hellok8s in one commit, promoted with it as one unit, retired from dev
    assert re.search(r"^released greeter@r\S+ to dev: ", proc.stdout, flags=re.M)
    assert re.search(r"^dev +greeter +r\S+ ", proc.stdout, flags=re.M)
    titles = subprocess.run(["git", "log", "--format=%s"], cwd=work, capture_output=True, text=True).stdout
    assert re.search(r"^release\(dev\): 2 apps: hellok8s@r\S+, greeter@r\S+$", titles, flags=re.M)
    assert re.search(r"^promote\(uat\): 2 apps: greeter@r\S+, hellok8s@r\S+ from dev$", titles, flags=re.M)
    assert "retired greeter from dev" in proc.stdout
