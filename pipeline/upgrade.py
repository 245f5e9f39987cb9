"""`ship init APP --upgrade`: move a repository's workflows to the ship that is installed.

Rewrites each `uses:` of ship's action in `.github/workflows/` to this version (and the local
`./.github/actions/setup-ship` older versions copied in, dropping its `package:` input), deletes
that copy, and leaves every other line as the user has it. Then it compares each workflow ship
writes with what this version would write, and names those that differ beyond the version, for
the user to merge by hand. Never touches anything outside `.github/`.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline import config, scaffold

_OLD_COPY = ".github/actions/setup-ship"
_PACKAGE_LINE = re.compile(r"^\s+package: \$\{\{ vars\.SHIP_PACKAGE \}\}\n", re.MULTILINE)


@dataclass(frozen=True)
class Upgrade:
    written: list[str]  # files changed (or removed) by the upgrade
    differs: list[str]  # ship's workflows that still differ from what this version writes


def upgraded(text: str, action: str) -> str:
    """A workflow's text with ship's action at `action` (OWNER/REPO@vX); the rest kept. Pure."""
    repository = re.escape(action.split("@")[0])
    text = re.sub(rf"(uses:\s*){repository}@\S+", rf"\g<1>{action}", text)
    text = re.sub(r"(uses:\s*)\./\.github/actions/setup-ship\b", rf"\g<1>{action}", text)
    return _PACKAGE_LINE.sub("", text)


def upgrade(root: Path) -> Upgrade:
    cfg = config.load(root)
    action = scaffold.action_ref()
    written = []
    for path in sorted((root / ".github/workflows").glob("*.y*ml")):
        text = path.read_text()
        new = upgraded(text, action)
        if new != text:
            path.write_text(new)
            written.append(str(path.relative_to(root)))
    if (root / _OLD_COPY).exists():
        shutil.rmtree(root / _OLD_COPY)
        written.append(_OLD_COPY + "/ (removed)")
    wanted = scaffold.workflow_files(
        {app.name: tuple(app.secrets) for app in cfg.apps.values()}, cfg.ignore
    )
    differs = [
        name
        for name, text in wanted.items()
        if not (root / name).exists() or (root / name).read_text() != text
    ]
    return Upgrade(written, differs)
