"""The `ship` console script: answers `ship version` and `ship --version` before loading the CLI
(python alone, a few milliseconds), and hands every other command to pipeline.cli."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["version"], ["--version"]):
        from pipeline import __version__

        sys.stdout.write(f"ship {__version__}\n")
        return
    from pipeline.cli import main as cli

    cli()
