"""Where kustomize's renderings are remembered, and the key that says a rendering still holds.

A rendering is a pure function of the files kustomize reads and of the kustomize and helm
binaries that run, so the key is exactly that: the content of every file under the rendered
folder and under each folder or file its kustomizations name (followed to the bases they name in
turn), by path relative to the rendered folder, with the command and the binaries' stamps.
Nothing that moves with each commit goes in (not HEAD, not the rest of the repository), so a
tree renders once for as long as its files are unchanged: a publish checks an overlay, the sync
after it applies the same files, the next step reads it again. kustomize's output names no
absolute path (origin annotations are relative to the kustomization), so where the tree lies is
left out, and the same tree in another clone is the same key.

A file at a kustomization's root that no kustomization of the tree mentions is left out too
(ship's release.yaml and ledger.yaml): kustomize reads such a file only when one names it.
A folder that reads what no local file holds (a remote base, a chart repository), a special
file, or more than MAX_FILES files is never cached: it is rendered each time.

Two layers: the clone's `.git/ship/render-cache/` (kept between runs, the newest CACHE_ENTRIES;
it is looked at first) and this process's memory (MEMORY_ENTRIES), which serves scratch folders
and other clones. SHIP_RENDER_CACHE=off turns both off. Never runs kustomize or git.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# An entry of these with no local file is a remote base.
LISTS_OF_BASES = ("resources", "bases", "components")
REMOTE_KEYS = ("repo", "chartRepoUrl", "chartRepoURL")  # helm pulls the chart from a repository
MAX_FILES = 5000
CACHE_ENTRIES = 32  # per clone; the oldest go first
MEMORY_ENTRIES = 256  # per process; the least recently used go first

_memory: OrderedDict[str, str] = OrderedDict()  # key -> the rendering as JSON text


class _Uncacheable(Exception):
    """The tree reads something the key cannot hold."""


def enabled() -> bool:
    return os.environ.get("SHIP_RENDER_CACHE", "on").lower() not in ("off", "0", "no", "false")


def key(folder: Path, command: list[str], stamps: list[Any]) -> str | None:
    """The key of `folder` rendered by `command` with the binaries `stamps` describe, or None
    when it must not be cached."""
    inputs = inputs_digest(folder)
    if inputs is None:
        return None
    return hashlib.sha256(json.dumps([inputs, command, stamps]).encode()).hexdigest()[:32]


def inputs_digest(folder: Path) -> str | None:
    """The digest of what kustomize may read to render `folder`, or None (see the docstring)."""
    try:
        found = _Inputs(Path(os.path.realpath(folder)))
        return found.digest()
    except (_Uncacheable, OSError):
        return None


class _Inputs:
    """The folders a rendering reads, found from the rendered one, and their files' digest."""

    def __init__(self, top: Path):
        self.top = top
        self.folders: list[Path] = []  # whole trees, in the order they were found
        self.files: list[Path] = []  # single files named from outside those trees
        self.texts: list[str] = []  # every kustomization's text
        self.globs = False  # a kustomization names files by pattern: every file counts
        self.count = 0
        self._add_folder(top)

    def _covered(self, path: Path) -> bool:
        return any(path == f or path.is_relative_to(f) for f in self.folders)

    def _add_folder(self, folder: Path) -> None:
        self.folders.append(folder)
        for where, _dirs, names in _walk(folder):
            self.count += len(names)
            if self.count > MAX_FILES:
                raise _Uncacheable
            for name in names:
                if name in KUSTOMIZATIONS:
                    self._follow(where, (where / name).read_text())

    def _follow(self, where: Path, text: str) -> None:
        """Add the folders and files a kustomization in `where` names outside what is covered."""
        self.texts.append(text)
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise _Uncacheable from exc  # kustomize says what is wrong with it, every time
        for field, value in _strings(data):
            if field in REMOTE_KEYS and value:
                raise _Uncacheable
            if "\n" in value or not value or len(value) > 4096:
                continue  # an inline patch, not a path
            self.globs = self.globs or "*" in value or "?" in value
            path = where / value
            if not path.exists():
                if field in LISTS_OF_BASES:
                    raise _Uncacheable  # kustomize fails on it, or fetches it from a remote
                continue
            real = Path(os.path.realpath(path))
            if self._covered(real):
                continue
            if real.is_dir():
                self._add_folder(real)
            elif real not in self.files:
                self.files.append(real)

    def digest(self) -> str:
        digest = hashlib.sha256()
        mentioned = "\n".join(self.texts)
        for folder in self.folders:
            for where, _dirs, names in _walk(folder):
                at_root = not self.globs and any(n in KUSTOMIZATIONS for n in names)
                for name in names:
                    if at_root and name not in KUSTOMIZATIONS and name not in mentioned:
                        continue  # a file beside a kustomization that nothing names: never read
                    _hash_file(digest, self.top, where / name)
        for path in self.files:
            _hash_file(digest, self.top, path)
        return digest.hexdigest()


def _walk(folder: Path):
    """(folder, subfolders, file names) under `folder`, sorted, each link followed once, no .git."""
    seen: set[str] = set()
    for where, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(where)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if d != ".git")
        yield Path(where), dirs, sorted(names)


def _hash_file(digest: Any, top: Path, path: Path) -> None:
    if not path.is_file():
        raise _Uncacheable  # a FIFO or a device: reading it could block
    digest.update(os.path.relpath(path, top).encode() + b"\0")
    digest.update(hashlib.sha256(path.read_bytes()).digest())


def _strings(data: Any, field: str = "") -> list[tuple[str, str]]:
    """Each string in a kustomization, with the key it sits under (for a list item, the list's)."""
    if isinstance(data, str):
        return [(field, data)]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in _strings(v, str(k))]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v, field)]
    return []


# ── the two layers ───────────────────────────────────────────────────────────────────────────


def lookup(folder: Path, key: str) -> list[dict] | None:
    """The rendering cached under `key`: the clone's entry first, else this process's."""
    entry = _entry(folder, key)
    if entry is not None and entry.is_file():
        try:
            return json.loads(entry.read_text())
        except (OSError, ValueError):
            pass  # a damaged entry is rendered again
    text = _memory.get(key)
    if text is None:
        return None
    _memory.move_to_end(key)
    if entry is not None:
        _store_entry(entry, text)  # the next ship run in this clone finds it too
    return json.loads(text)


def store(folder: Path, key: str, objects: list[dict]) -> None:
    text = json.dumps(objects)
    _memory[key] = text
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)
    entry = _entry(folder, key)
    if entry is not None:
        _store_entry(entry, text)


def _entry(folder: Path, key: str) -> Path | None:
    """The clone's cache file for `key`, or None when `folder` is not in a git working tree."""
    here = Path(os.path.realpath(folder))
    for parent in (here, *here.parents):
        dot_git = parent / ".git"
        if dot_git.is_dir():
            return dot_git / "ship/render-cache" / f"{key}.json"
        if dot_git.is_file():  # a linked worktree or a submodule: `gitdir: PATH`
            line = dot_git.read_text().strip()
            if line.startswith("gitdir:"):
                git_dir = parent / line.removeprefix("gitdir:").strip()
                return git_dir / "ship/render-cache" / f"{key}.json"
            return None
    return None


def _store_entry(entry: Path, text: str) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(entry)
        entries = sorted(entry.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written only costs time
