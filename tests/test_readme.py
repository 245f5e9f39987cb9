"""The README and the docs cannot drift from the code: every `ship` command they show names a real
command and real options; every shell block parses (`bash -n`), and the cheap, safe ones (only
`ship version`, `ship metrics`, `ship history`, `ship X --help`) run in a copy of this project; the
README's action snippet uses ship's action at this version with inputs action.yml has; every
`make` target hack/README.md shows exists; the ship.yaml reference parses; and the walkthrough
block runs, as written, against the local parts (in a throw-away copy of this repository). The
README's quickstart runs as written in tests/test_quickstart.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer

from pipeline import config, scaffold, yamlsafe
from pipeline.cli import app
from tests.conftest import ROOT, commit_all, copy_project

README = (ROOT / "README.md").read_text()
HACK = (ROOT / "hack/README.md").read_text()
DOCS = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
WALKTHROUGH = DOCS["walkthrough.md"]
# docs/cli.md also names commands that do not exist, to say so (`ship sync --dry-run`)
ALL = "\n".join([README, HACK, *(text for name, text in DOCS.items() if name != "cli.md")])
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
    start = WALKTHROUGH.index(marker) + len(marker)
    return WALKTHROUGH[start:WALKTHROUGH.index("```", start)]


def test_every_command_the_readme_and_docs_show_exists_with_its_options():
    options = cli_options()
    shown = shown_commands(ALL)
    assert len(shown) > 60 and len(shown_commands(README)) > 20
    for sub, rest in shown:
        assert sub in options, f"README shows `ship {sub}`, which is not a command"
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest):
            assert flag in options[sub], f"README shows `ship {sub} … {flag}`, which `ship {sub}` does not take"


def shell_blocks() -> list[tuple[str, str]]:
    """(file, block) of every ```sh / ```bash block of the README, hack/README.md and docs/, unindented."""
    texts = {"README.md": README, "hack/README.md": HACK, **{f"docs/{k}": v for k, v in DOCS.items()}}
    return [(name, textwrap.dedent(block)) for name, text in texts.items()
            for block in re.findall(r"^ *```(?:sh|bash)\n(.*?)^ *```", text, flags=re.S | re.M)]


CHEAP = re.compile(r"^(ship (version|metrics|history)\b[^|;&<>$`]*|ship [a-z]+ --help)$")


def cheap(block: str) -> bool:
    """Only read-only ship commands that need no cluster, registry or network."""
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()]
    return all(CHEAP.match(line) for line in lines if line and not line.startswith("#"))


def test_every_shell_block_of_the_readme_and_docs_parses():
    blocks = shell_blocks()
    assert len(blocks) >= 12
    for name, block in blocks:
        proc = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert proc.returncode == 0, f"{name}: {proc.stderr}\n{block}"


def test_the_cheap_and_safe_shell_blocks_run_as_written(tmp_path):
    runnable = [(name, block) for name, block in shell_blocks() if cheap(block)]
    assert "docs/observability.md" in {name for name, _ in runnable}, runnable
    work = tmp_path / "project"
    work.mkdir()
    copy_project(work)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "initial", "--allow-empty"],
                   cwd=work, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIP_") and k != "KUBECONFIG"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for name, block in runnable:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"{name}: {proc.stderr}\n{block}"


def test_every_command_is_in_the_readme_and_in_its_walkthrough():
    walked = {sub for sub, _ in shown_commands(walkthrough())}
    assert set(cli_options()) - {"help"} <= walked, f"not in the walkthrough: {set(cli_options()) - walked}"


def test_the_readme_ship_yaml_reference_parses(tmp_path):
    block = DOCS["reference.md"][DOCS["reference.md"].index("## ship.yaml"):]
    block = block[block.index("```yaml\n") + 8:]
    data = yamlsafe.loads(block[:block.index("```")], "docs/reference.md")
    cfg = config.parse(data, tmp_path, "docs/reference.md", environ={})
    prod = cfg.env("prod")
    assert [s.weight for s in prod.canary.steps] == [10, 50] and prod.canary.http[0].requests == 40
    assert prod.canary.prometheus[0].max == 0.01
    assert prod.policy.require_signature and prod.policy.public_key == "keys/cosign.pub" and not prod.policy.allow_older
    assert [w.describe() for w in prod.policy.freeze] == [
        "window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin)", "window 'year-end' (2026-12-20 – 2027-01-04 Europe/Berlin)"]


def test_the_readme_installs_ship_with_its_action_at_this_version():
    step = yamlsafe.loads(README[README.index("```yaml\n") + 8:].split("```")[0], "README.md")[0]
    action = yamlsafe.loads((ROOT / "action.yml").read_text(), "action.yml")
    assert step["uses"] == scaffold.action_ref() and set(step["with"]) <= set(action["inputs"])
    assert f"pipx install \"git+https://github.com/{scaffold.action_ref().replace('@', '@')}\"" in README


def test_every_make_target_hack_readme_shows_exists():
    makefile = (ROOT / "Makefile").read_text()
    shown = set(re.findall(r"(?<![\w-])make (?:-s )?([a-z][a-z-]+)", code_in(HACK) + code_in(README)))
    assert shown and all(re.search(rf"^{t}:", makefile, flags=re.M) for t in shown), shown


def test_every_link_between_the_docs_leads_to_a_file():
    for name, text in {"README.md": README, "hack/README.md": HACK, **{f"docs/{k}": v for k, v in DOCS.items()}}.items():
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            assert (ROOT / name).parent.joinpath(target).resolve().exists(), f"{name}: {target}"


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
