"""Where ship may read and write: inside the repository, through no symlink, regular files only.

A repository is written by whoever can push to it, and ship runs with CI's secrets: a committed
symlink (`config/dev.env -> /proc/self/environ`, `configs -> /somewhere/else`) must not make it
read the runner's environment into a commit, or write outside the working tree. kustomize refuses
such links too. Every path ship reads or writes under the repository goes through here: its
realpath must be the path itself under the repository's realpath (no symlink on the way, no `..`
out), and an input must be a regular file (not a FIFO or a device), read with a size cap by
actually reading it (a /proc file's `stat` size is 0). Output folders outside the repository
(`ship dashboard --out`) are refused when they are symlinks or hold files ship did not write.
A leaf module: imports only errors. Pure but for the file system reads it names.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

MAX_INPUT_BYTES = 4 * 1024 * 1024  # any one file ship reads from the repository
RULE = "ship reads and writes only regular files inside the repository, through no symlink"


def _display(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def contained(root: Path, path: Path | str) -> Path:
    """`path` (relative to `root`, or absolute under it) as an absolute path, after checking that it
    stays under `root` through no symlink: its parts that exist are what they say. ConfigError
    else."""
    real_root = Path(os.path.realpath(root))
    given = Path(path)
    absolute = Path(os.path.normpath(given if given.is_absolute() else Path(root) / given))
    try:
        rel = absolute.relative_to(Path(os.path.normpath(root)))
    except ValueError:
        try:
            rel = absolute.relative_to(real_root)
        except ValueError:
            raise ConfigError(f"{given}: outside the repository; {RULE}") from None
    if rel.parts[:1] == ("..",):
        raise ConfigError(f"{given}: outside the repository; {RULE}")
    expected = real_root / rel
    if os.path.realpath(expected) != str(expected):
        raise ConfigError(f"{_symlink_on_the_way(real_root, rel)}; {RULE}")
    return expected


def _symlink_on_the_way(real_root: Path, rel: Path) -> str:
    here = real_root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            return f"{here.relative_to(real_root)}: a symlink (to {os.readlink(here)})"
    return f"{rel}: resolves elsewhere"


def read_bytes(root: Path, path: Path | str, cap: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a regular file under `root`, at most `cap` of them; ConfigError otherwise
    (FileNotFoundError passes through for callers that treat a missing file as empty)."""
    full = contained(root, path)
    name = _display(Path(os.path.realpath(root)), full)
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{name}: not a regular file; {RULE}")
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 16, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > cap:
        raise ConfigError(f"{name}: larger than {cap:,} bytes; refusing to read it")
    return b"".join(chunks)


def hash_into(digest: Any, root: Path, path: Path | str) -> None:
    """Feed a regular file under `root` into `digest`, whatever its size (a build output, say)."""
    fd = os.open(contained(root, path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path}: not a regular file; {RULE}")
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)


def read_text(root: Path, path: Path | str, cap: int = MAX_INPUT_BYTES) -> str:
    try:
        return read_bytes(root, path, cap).decode()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def regular_files(root: Path, folder: Path | str, *, strict: bool = True) -> list[Path]:
    """Every file under `folder` (relative to `root`), sorted, refusing a symlink or special file
    anywhere in it (an overlay or a kustomize base holds plain files and folders only); with
    `strict` False, skipping them instead (an app's source folder may hold links of its own)."""
    top = contained(root, folder)
    found = []
    for path in sorted(top.rglob("*")) if top.is_dir() else []:
        mode = os.lstat(path).st_mode
        if (stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))) and not strict:
            continue
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = (
                f"a symlink (to {os.readlink(path)})"
                if stat.S_ISLNK(mode)
                else "not a regular file"
            )
            raise ConfigError(f"{_display(Path(os.path.realpath(root)), path)}: {kind}; {RULE}")
        if stat.S_ISREG(mode):
            found.append(path)
    return found


def writable(root: Path, path: Path | str) -> Path:
    """`path` under `root`, checked for a write: contained, and not an existing symlink or special
    file."""
    full = contained(root, path)
    if full.exists() and not (full.is_file() or full.is_dir()):
        raise ConfigError(
            f"{_display(Path(os.path.realpath(root)), full)}: not a regular file; {RULE}"
        )
    return full


def output_folder(out: Path, ours: Iterable[str], *, force: bool = False) -> Path:
    """A folder ship fills with the files named `ours` (relative paths): refused when it is a
    symlink, holds a symlink, or holds other files, unless `force`; `ours` themselves are never
    followed."""
    if out.is_symlink():
        raise ConfigError(
            f"{out}: a symlink; refusing to write through it (remove it, or pick another folder)"
        )
    mine = {os.path.normpath(p) for p in ours}
    if out.is_dir():
        for path in sorted(out.rglob("*")):
            rel = str(path.relative_to(out))
            if path.is_symlink():
                raise ConfigError(f"{out}/{rel}: a symlink; refusing to write through it")
            if path.is_file() and rel not in mine and not force:
                raise ConfigError(
                    f"{out}: holds {rel}, which ship did not "
                    "write; pick an empty folder, or pass --force"
                )
    elif out.exists():
        raise ConfigError(f"{out}: not a folder")
    try:  # now, so that a path that cannot be a folder fails before any (slow) gathering
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot be created: {exc.strerror or exc}") from None
    return out
