"""How slow work reports what it is doing: a callable taking one line of text.

The CLI prints these lines to stderr; tests collect them; `quiet` drops them.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """A Progress that says nothing."""
