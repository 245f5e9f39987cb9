"""Loads YAML that a user or another tool wrote, safely, keeping line numbers for errors.

Safe means: PyYAML's SafeLoader only (no custom or Python tags), a size cap, duplicate keys
rejected, and anchor/alias "billion laughs" bombs rejected before anything is built. Mappings
come back as `Mapping` (a dict) that knows the line of each key, so a schema check can say
`ship.yaml:12: apps.hellok8s.imag: unknown key`. This module never writes files.

PyYAML's parser runs in Python (3-6 ms for a ledger here) and ship reads the same ledgers and
overlays many times in one run, so a text that parsed is remembered (MEMO_ENTRIES texts of up
to MEMO_MAX_CHARS) and each caller gets its own copy of the documents, line numbers included.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.errors import ConfigError

MAX_BYTES = 4 * 1024 * 1024
# Nodes after expanding every alias; real manifests stay far below, a bomb goes far above.
MAX_EXPANDED_NODES = 200_000


class Mapping(dict):
    """A YAML mapping that remembers where it and each of its keys were written."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: Any) -> int:
        return getattr(self, "key_lines", {}).get(key, self.line)


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and records line numbers."""


def _construct_mapping(loader: _Loader, node: MappingNode) -> Iterator[Mapping]:
    data = Mapping()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            raise ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from exc
        if key in data:
            raise ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {data.key_lines[key]})",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _expanded_size(node: Node, memo: dict[int, int], depth: int = 0) -> int:
    if depth > 200:
        raise ConfigError("nesting deeper than 200 levels")
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, ScalarNode):
        size = 1
    elif isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(child, memo, depth + 1) for child in node.value)
    else:
        size = 1 + sum(
            _expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1)
            for k, v in node.value
        )
    memo[key] = size
    return size


def _where(source: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    line = f":{mark.line + 1}" if mark else ""
    return f"{source}{line}: {exc.problem or exc.context or 'invalid YAML'}"


MEMO_ENTRIES = 256
MEMO_MAX_CHARS = 256 * 1024
_parsed: OrderedDict[str, list[Any]] = OrderedDict()  # text -> its documents, never handed out


def loads_all(text: str, source: str = "<string>") -> list[Any]:
    """Every document of a YAML stream, or ConfigError naming the source and line."""
    if len(text.encode()) > MAX_BYTES:
        raise ConfigError(
            f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to load it"
        )
    docs = _parsed.get(text)
    if docs is not None:
        _parsed.move_to_end(text)
        return _copy(docs, {})
    docs = _parse(text, source)
    if len(text) <= MEMO_MAX_CHARS:
        _parsed[text] = docs
        while len(_parsed) > MEMO_ENTRIES:
            _parsed.popitem(last=False)
        return _copy(docs, {})
    return docs


def _parse(text: str, source: str) -> list[Any]:
    loader = _Loader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
                raise ConfigError(
                    f"{source}: too many nodes after expanding aliases (an alias bomb?)"
                )
            docs.append(loader.construct_document(node))
        return docs
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_where(source, exc)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    finally:
        loader.dispose()


_IMMUTABLE = (str, int, float, bytes, dt.date, type(None))  # bool is an int; datetime a date


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of parsed YAML, as copy.deepcopy makes it (aliases stay shared, a recursive
    alias stays recursive) but a hundred times faster for the mappings and lists it is made of."""
    if isinstance(value, _IMMUTABLE):
        return value
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, Mapping):
        mapping = Mapping()
        mapping.line = value.line
        mapping.key_lines = dict(getattr(value, "key_lines", {}))
        memo[id(value)] = mapping
        for key, item in value.items():
            mapping[key] = _copy(item, memo)
        return mapping
    if type(value) is list:
        items: list[Any] = []
        memo[id(value)] = items
        items.extend(_copy(item, memo) for item in value)
        return items
    return copy.deepcopy(value, memo)  # a set or an omap's pairs


_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loads_all_generated(text: str, source: str = "<string>") -> list[Any]:
    """Documents of a stream a tool generated (kustomize's output): safe loading with libyaml
    when present, several times faster; no duplicate-key or line checks, which only people's
    files need. Still capped in size: a base can hold anything."""
    if len(text.encode()) > MAX_BYTES:
        raise ConfigError(
            f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to load it"
        )
    try:
        return list(yaml.load_all(text, Loader=_FastLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def loads(text: str, source: str = "<string>") -> Any:
    """The one document of a YAML text (None when empty)."""
    docs = loads_all(text, source)
    if len(docs) > 1:
        raise ConfigError(f"{source}: expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def load_file(path: Path | str, display: str | None = None, root: Path | None = None) -> Any:
    """The YAML of a regular file; with `root`, one reached from it through no symlink
    (paths.py)."""
    from pipeline import paths

    path = Path(path)
    name = display or str(path)
    try:
        # A regular file, not a symlink (to /proc/self/environ …), read with a cap, not stat'ed.
        text = (
            paths.read_bytes(root, path, cap=MAX_BYTES)
            if root is not None
            else paths.read_bytes(path.parent, path.name, cap=MAX_BYTES)
        ).decode()
    except FileNotFoundError as exc:
        raise ConfigError(f"{name}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text") from exc
    except ConfigError as exc:
        if "larger than" in str(exc):
            raise ConfigError(
                f"{name}: larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to load it"
            ) from None
        raise ConfigError(f"{name}: {str(exc).split(': ', 1)[-1]}") from None
    except OSError as exc:  # a folder, no permission, an I/O error
        raise ConfigError(f"{name}: cannot be read: {exc.strerror or exc}") from exc
    return loads(text, name)


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as `|` blocks, so patches read well in git diffs."""


# Numbers under YAML 1.2's core schema, which PyYAML (YAML 1.1) would write unquoted: a short
# sha such as 0279160 must stay a string for kustomize, which reads it as the number 279160.
_YAML12_NUMBER = re.compile(
    r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _str(dumper: yaml.SafeDumper, value: str):
    style = None
    if "\n" in value and not value.startswith(" "):
        style = "|"
    elif _YAML12_NUMBER.match(value):
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dumps(data: Any, *, sort_keys: bool = False) -> str:
    """Plain block YAML with keys in the order given (or sorted, for diffs), for files ship
    writes."""
    return yaml.dump(
        _plain(data), Dumper=_Dumper, sort_keys=sort_keys, default_flow_style=False, width=1000
    )


def dumps_all(docs: list[Any]) -> str:
    return yaml.dump_all(
        [_plain(d) for d in docs],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )


def _plain(data: Any) -> Any:
    """Mapping subclasses turned back into dicts, since safe_dump refuses subclasses."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data
