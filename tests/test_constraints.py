"""constraints.txt, the dependency pins action.yml installs ship with: every runtime dependency of
ship (the whole closure) is pinned there, each pin satisfies pyproject.toml's bounds, every direct
dependency has an upper bound, and the test venv runs exactly the pinned versions (make venv
installs with them), so what users install is what the suite tested.

Run as a script, it prints a fresh constraints.txt from the venv it runs in."""

from __future__ import annotations

import itertools
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def direct() -> list[Requirement]:
    return [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def closure() -> dict[str, str]:
    """Each runtime dependency of ship, direct or not, and its version installed here."""
    found: dict[str, str] = {}
    todo = direct()
    while todo:
        req = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonical(req.name)
        if name not in found:
            dist = metadata.distribution(name)
            found[name] = dist.version
            todo += [Requirement(r) for r in dist.requires or []]
    return found


def pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    return {canonical(name): version for name, _, version in (line.partition("==") for line in lines if line)}


def tool_pins() -> dict[str, str]:
    """The test tools constraints.txt pins too (lines marked `# test tool`), by name."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {canonical(n): v for n, _, v in (line.split("#")[0].strip().partition("==") for line in lines
                                             if line.endswith("# test tool"))}


def test_every_direct_dependency_has_an_upper_bound():
    unbounded = [str(r) for r in direct() if not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)]
    assert unbounded == []


def test_the_pins_satisfy_pyproject_and_cover_the_whole_closure():
    pinned = pins()
    for req in direct():
        assert Version(pinned[canonical(req.name)]) in req.specifier, f"{req.name}=={pinned[canonical(req.name)]} vs {req}"
    assert sorted(set(closure()) - set(pinned)) == []  # a dependency nobody pinned


def test_the_test_venv_runs_the_pinned_versions():
    installed = closure()
    assert {name: version for name, version in pins().items() if name in installed} == installed


def test_the_test_tools_are_pinned_as_pyproject_pins_them():
    """A tool `make lint` runs (import-linter) has one pin, the same in both files, and the venv runs it."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    exact = {canonical(r.name): str(r.specifier)[2:] for r in map(Requirement, extras) if str(r.specifier).startswith("==")}
    tools = tool_pins()
    assert "import-linter" in tools
    assert {name: version for name, version in tools.items() if name in exact} == {
        name: exact[name] for name in tools if name in exact}
    assert {name: metadata.version(name) for name in tools} == tools


if __name__ == "__main__":
    print("".join(f"{line}\n" for line in itertools.takewhile(  # the header comment
        lambda line: line.startswith("#"), (ROOT / "constraints.txt").read_text().splitlines())), end="")
    for name, version in sorted(closure().items()):
        print(f"{name}=={version}")
    print("# test tools (make lint), kept when this file is regenerated; their pins in pyproject.toml match")
    print("".join(f"{name}=={version}  # test tool\n" for name, version in tool_pins().items()), end="")
