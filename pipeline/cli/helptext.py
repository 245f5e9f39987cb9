"""ship's own `--help` text: plain, 80 columns, the same whatever typer or click version is
installed.

typer's help changes between releases (type hints such as `<bool>` beside every flag, boxes,
line breaks mid-sentence), so ship lays its help out itself from the parsed command: a usage
line, the docstring's paragraphs re-wrapped (lines starting `Example:` kept as their own
paragraph), then the arguments, options and commands, two columns. Only the stable parts of a
click parameter are read (opts, help, metavar, default, choices). Prints nothing itself.
"""

from __future__ import annotations

import textwrap
from enum import Enum
from typing import Any

WIDTH = 80
LEFT = 30  # the widest first column; a longer name puts its help on the next line


def paragraphs(doc: str) -> list[str]:
    """The docstring's paragraphs, each one line; `Example:` lines start their own paragraph."""
    out: list[str] = []
    for block in textwrap.dedent(doc or "").strip().split("\n\n"):
        current: list[str] = []
        for line in block.splitlines():
            if line.strip().startswith("Example:") and current:
                out.append(" ".join(current))
                current = []
            current.append(line.strip())
        if current:
            out.append(" ".join(current))
    return [p for p in out if p]


def first_sentence(doc: str) -> str:
    """What a command's row in the list says: its first paragraph up to the first full stop."""
    first = (paragraphs(doc) or [""])[0]
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]


def _wrap(text: str, indent: int, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=" " * indent,
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [""]


def rows(pairs: list[tuple[str, str]]) -> list[str]:
    """Two columns: the name at 2, its help after the longest name (up to LEFT; a longer name
    has its help on the next line)."""
    left = min(LEFT, max((len(name) for name, _ in pairs), default=0) + 4)
    lines = []
    for name, help_ in pairs:
        wrapped = _wrap(help_, left) if help_ else []
        head = f"  {name}"
        if wrapped and len(head) < left - 1:
            lines.append(head.ljust(left) + wrapped[0][left:])
            lines += wrapped[1:]
        else:
            lines.append(head)
            lines += wrapped
    return lines


def _default(param: Any) -> str:
    value = param.default
    if isinstance(value, Enum):
        value = value.value
    if value in (None, False, "", (), []) or getattr(param, "is_flag", False) or callable(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f" [default: {value}]"


def _metavar(param: Any) -> str:
    """The value an option takes: its metavar, its choices, or its name in capitals."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if getattr(param, "metavar", None):
        return param.metavar
    choices = getattr(getattr(param, "type", None), "choices", None)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if not choices and isinstance(annotation, type) and issubclass(annotation, Enum):
        choices = list(annotation)
    if choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
    return param.name.upper()


def argument_name(param: Any) -> str:
    name = getattr(param, "metavar", None) or param.name.upper()
    if param.nargs == -1 and not name.endswith("..."):
        name += "..."
    if not param.required and not name.startswith("["):
        name = f"[{name}]"
    return name


def option_name(param: Any) -> str:
    """`-o, --output [text|json|yaml]`, `--prune / --no-prune`: short names first, then long
    ones."""
    opts = sorted(param.opts, key=lambda o: (o.startswith("--"), o))
    text = ", ".join(opts)
    if getattr(param, "secondary_opts", None):
        text += " / " + ", ".join(param.secondary_opts)
    metavar = _metavar(param)
    return f"{text} {metavar}" if metavar else text


def command_help(ctx: Any, command: Any) -> str:
    """The whole `--help` text of one command or of the group."""
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    usage = " ".join(
        [
            "Usage:",
            ctx.command_path,
            "[OPTIONS]" if options else "",
            *(argument_name(a) for a in arguments),
        ]
    )
    if hasattr(command, "list_commands"):
        usage += " COMMAND [ARGS]..."
    lines = [" ".join(usage.split()), ""]
    for para in paragraphs(command.help or ""):
        if para.startswith("Example:") and lines[-2:-1] and lines[-2].startswith("  Example:"):
            lines.pop()  # examples stand together
        # a command line stays whole
        lines += [f"  {para}"] if para.startswith("Example:") else _wrap(para, 2)
        lines.append("")
    if arguments:
        lines += [
            "Arguments:",
            *rows([(argument_name(a), getattr(a, "help", "") or "") for a in arguments]),
            "",
        ]
    if options:
        lines += [
            "Options:",
            *rows([(option_name(o), (o.help or "") + _default(o)) for o in options]),
            "",
        ]
    if hasattr(command, "list_commands"):
        listed = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
        lines += [
            "Commands:",
            *rows(
                [
                    (name, first_sentence(c.help or ""))
                    for name, c in listed
                    if c is not None and not c.hidden
                ]
            ),
            "",
        ]
    return "\n".join(line.rstrip() for line in lines).rstrip("\n") + "\n"
