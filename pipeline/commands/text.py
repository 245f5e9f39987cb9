"""How a command's result reads as text: a plain table, and a result that is only text. Shared by
the commands (inspect, govern, observe, access), which import each other never.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table


def table_text(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], width: int = 200) -> str:
    """A plain table as `rich` lays it out, without colour, for the terminal or a file."""
    table = Table(box=None, pad_edge=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False).print(table)
    return out.getvalue().rstrip("\n")


@dataclass
class Text:
    """A result that is only text (Markdown, YAML)."""

    body: str

    def to_json(self) -> dict:
        return {"text": self.body}

    def text(self) -> str:
        return self.body.rstrip("\n")
