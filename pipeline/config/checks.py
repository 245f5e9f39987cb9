"""Checks of single values of ship.yaml: each returns the value, or raises ValueError saying what
was expected, which the reader (reader.py) turns into `file:line: dotted.key: expected …`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipeline import names
from pipeline.config.model import URL_PLACEHOLDERS, promql_placeholders, unknown_placeholders

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def parse_duration(value: Any) -> float:
    """Seconds from `30`, `30s`, `500ms`, `5m`, `1h`."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s or 5m")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError("a duration such as 30s or 5m")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def name(value: str) -> str:
    if not names.valid_name(value):
        raise ValueError(names.NAME_RULE)
    return value


def strings(value: list) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise ValueError("a list of strings")
    return tuple(value)


def secret_keys(value: list) -> tuple[str, ...]:
    keys = strings(value)
    for key in keys:
        if not names.valid_secret_key(key):
            raise ValueError("secret keys in UPPER_SNAKE_CASE")
    return keys


def inside(value: str) -> str:
    if not names.inside_repository(value):
        raise ValueError(f"{names.PATH_RULE} (not {value!r})")
    return value


def template(value: str) -> str:
    unknown = unknown_placeholders(value)
    if unknown:
        raise ValueError(
            "a URL whose placeholders are among "
            f"{', '.join('{' + p + '}' for p in URL_PLACEHOLDERS)} "
            f"(not {{{unknown[0]}}})"
        )
    return value


def promql(value: str) -> str:
    unknown = [p for p in promql_placeholders(value) if p not in URL_PLACEHOLDERS]
    if unknown:
        raise ValueError(
            "PromQL whose placeholders are among "
            f"{', '.join('{' + p + '}' for p in URL_PLACEHOLDERS)} "
            f"(not {{{unknown[0]}}})"
        )
    return value


def one_of(options: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return value

    return check
