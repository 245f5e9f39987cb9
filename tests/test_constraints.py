"""constraints.txt, the dependency pins action.yml installs ship with: every runtime dependency of
ship (the whole closure) is pinned there, each pin satisfies pyproject.toml's bounds, every direct
dependency has an upper bound, and the test venv runs exactly the pinned versions (make venv
installs with them), so what users install is what the suite tested.

Run as a script, it prints a fresh constraints.txt from the venv it runs in."""

from __future__ import annotations

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


if __name__ == "__main__":
    print("".join(line + "\n" for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("#")), end="")
    for name, version in sorted(closure().items()):
        print(f"{name}=={version}")
