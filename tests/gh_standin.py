"""A stand-in for GitHub's CLI `gh`, for the README's quickstart: it records what it is told in a
JSON file ($GH_STANDIN_STATE) instead of calling GitHub, and the test then hands the recorded
secrets and variables to nektos/act. Only what the quickstart uses:

    gh secret set NAME [--env ENV] [--body VALUE]   (the value from stdin without --body, as gh reads it)
    gh variable set NAME --body VALUE
    gh workflow run WORKFLOW

Anything else exits 2 with gh's own "unknown command" wording, so a README line the stand-in
does not know fails the test rather than passing unseen. Standard library only: it runs under
any python3.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path


def _options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """(positional arguments, {--flag: value})."""
    positional, flags = [], {}
    it = iter(args)
    for arg in it:
        if arg.startswith("--"):
            name, _, value = arg.partition("=")
            flags[name] = value or next(it, "")
        elif arg.startswith("-") and len(arg) == 2:
            flags[{"-e": "--env", "-b": "--body"}.get(arg, arg)] = next(it, "")
        else:
            positional.append(arg)
    return positional, flags


def record(state: dict, args: list[str], stdin: Callable[[], str]) -> str:
    """Apply one gh command to `state`; the line gh would print. ValueError: not a command it knows."""
    positional, flags = _options(args)
    match positional:
        case ["secret", "set", name]:
            value = flags["--body"] if "--body" in flags else stdin().rstrip("\n")
            state.setdefault("secrets", {}).setdefault(flags.get("--env", ""), {})[name] = value
            where = f"environment {flags['--env']}" if flags.get("--env") else "repository"
            return f"✓ Set secret {name} for {where}"
        case ["variable", "set", name] if "--body" in flags:
            state.setdefault("variables", {})[name] = flags["--body"]
            return f"✓ Created variable {name}"
        case ["workflow", "run", workflow]:
            state.setdefault("runs", []).append(workflow)
            return f"✓ Created workflow_dispatch event for {workflow}"
    raise ValueError(" ".join(args))


def main(argv: list[str]) -> int:
    path = Path(os.environ["GH_STANDIN_STATE"])
    state = json.loads(path.read_text()) if path.exists() else {}
    try:
        line = record(state, argv, sys.stdin.read)  # only `secret set` without --body reads it, as gh does
    except ValueError as exc:
        print(f"unknown command {str(exc)!r} for \"gh\" (the quickstart's stand-in)", file=sys.stderr)
        return 2
    path.write_text(json.dumps(state, indent=1))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
