"""The reader under schema.py: one mapping of a YAML file read against a schema, naming
file:line:key on every error (`ship.yaml:14: environments.prod.canary.router: …`), unknown
keys with the closest known one. Pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from pipeline.errors import ConfigError


class Reader:
    """Reads one mapping of the file against a schema, naming file:line:key on every error."""

    def __init__(self, data: Any, source: str, path: str, line: int = 0):
        self.source, self.path = source, path
        if not isinstance(data, dict):
            self.line = line
            self.fail(f"expected a mapping, got {_type_name(data)}")
        self.data = data
        self.line = getattr(data, "line", line)
        self.used: set[str] = set()
        self.missing: list[str] = []

    def where(self, key: str | None = None) -> str:
        line = (
            self.data.line_of(key)
            if key is not None and hasattr(self.data, "line_of")
            else self.line
        )
        dotted = f"{self.path}.{key}" if key and self.path else (key or self.path or "(top level)")
        return f"{self.source}:{line}: {dotted}"

    def fail(self, message: str, key: str | None = None) -> None:
        if not hasattr(self, "data"):
            raise ConfigError(f"{self.source}:{self.line}: {self.path or '(top level)'}: {message}")
        raise ConfigError(f"{self.where(key)}: {message}")

    def get(
        self,
        key: str,
        kind: type | tuple,
        default: Any = ...,
        check: Callable[[Any], Any] | None = None,
    ):
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is ...:
                # Reported by done(), after unknown keys: a typo explains a missing field best.
                self.missing.append(key)
                return None
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"expected {_kind_names(kinds)}, got a boolean", key)
        if not isinstance(value, kinds):
            self.fail(f"expected {_kind_names(kinds)}, got {_type_name(value)}", key)
        if check is not None:
            try:
                return check(value)
            except ValueError as exc:
                self.fail(f"expected {exc}", key)
        return value

    def child(self, key: str, default: Any = ...) -> Reader | None:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is ...:
                self.fail(f"missing required section {key!r}")
            return None
        return Reader(
            self.data[key],
            self.source,
            f"{self.path}.{key}" if self.path else key,
            self.data.line_of(key),
        )

    def items(self):
        for key, value in self.data.items():
            yield str(key), value, self.data.line_of(key)

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                close = difflib.get_close_matches(str(key), sorted(self.used), n=1)
                self.fail("unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""), key)
        for key in self.missing:
            raise ConfigError(
                f"{self.source}:{self.line}: {self.path}.{key}: missing required field"
            )


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), "a mapping" if isinstance(value, dict) else type(value).__name__)


def _kind_names(kinds: tuple) -> str:
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
