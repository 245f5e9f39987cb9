"""Text made safe for Markdown sinks (a job summary, a pull-request comment). Pure.

What ship prints there comes partly from people (reasons, titles, config values) and from git;
none of it may add a heading, a link, an image, HTML, a table column, or leave its code span.
"""

from __future__ import annotations

import html
import re

# Marks that open emphasis, code, links, images, HTML or a table column anywhere in a line
# (a heading or a list needs the start of a line, which a cell or a sentence never is).
_SPECIAL = re.compile(r"([\\`*_\[\]!|#~])")
_AUTOLINK = re.compile(r"(?i)(://|www\.)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text(value: object) -> str:
    """`value` as literal Markdown text on one line: HTML escaped, every Markdown mark
    backslashed."""
    flat = _CONTROL.sub(" ", str(value))
    marked = _SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))
    return _AUTOLINK.sub(lambda m: "\\" + m[1] if m[1] == "://" else m[1][:3] + "\\.", marked)


def code(value: object, limit: int = 0) -> str:
    """`value` as an inline code span on one line that no backtick inside can close early; table
    pipes escaped; cut to `limit` characters when given."""
    flat = _CONTROL.sub(" ", str(value))
    if limit and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or flat.startswith(" ") or flat.endswith(" ") else ""
    return f"{fence}{pad}{flat}{pad}{fence}".replace("|", "\\|")
