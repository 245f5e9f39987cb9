"""docs/architecture.md draws the layers pyproject.toml's import-linter contract holds: every
package and module the contract places is named in the drawing, in the contract's order."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def contract_layers() -> list[list[str]]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers" and c["containers"] == ["pipeline"])["layers"]
    return [re.split(r"\s*[|:]\s*", layer.strip()) for layer in layers]


def drawing() -> str:
    text = (ROOT / "docs/architecture.md").read_text()
    start = text.index("## The layers")
    block = text[text.index("```", start) + 3:]
    return block[:block.index("```")]


def test_the_drawing_names_every_layer_in_the_contracts_order():
    lines = [re.split(r"\s{4,}", line.strip())[0] for line in drawing().splitlines()]  # the left column

    def line_of(name: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(rf"(?<![\w.]){re.escape(name)}(/|\.py|\b)", line)]
        assert found, f"docs/architecture.md does not draw {name}"
        return found[0]

    rows = [sorted({line_of(name) for name in layer}) for layer in contract_layers() if layer != ["__main__", "entry"]]
    assert all(len(row) == 1 for row in rows)  # a layer is one line of the drawing
    assert rows == sorted(rows)


def test_no_nested_conditional_expressions():
    """Issue 25: a conditional expression inside another is written as statements instead."""
    import ast

    nested = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.IfExp) and any(isinstance(n, ast.IfExp) for n in ast.walk(node) if n is not node):
                nested.append(f"{path}:{node.lineno}")
    assert not nested, nested
