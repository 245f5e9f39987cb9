"""The preview as Markdown, for a pull-request comment or `$GITHUB_STEP_SUMMARY`. Pure.

A table of every environment first (what `ship sync` would apply differently, and what the next
release would carry), then the details: images, config values and secret keys per object, the
rendered diff folded away, and each app's source and secret keys. Secret values never appear:
the model holds none.
"""

from __future__ import annotations

from pipeline import names
from pipeline.report import mdtext
from pipeline.report.preview.changes import Change, ObjectChange
from pipeline.report.preview.model import AppPreview, EnvironmentPreview, Preview

MAX_VALUE = 80


def code(text: str) -> str:
    """An inline code span that survives backticks and table pipes; long values cut short."""
    if not text:
        return "_(none)_"
    return mdtext.code(text, MAX_VALUE)


def short_image(ref: str) -> str:
    head, sep, digest = ref.partition("@sha256:")
    return f"{head}@sha256:{digest[:12]}…" if sep and len(digest) > 12 else ref


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _overlay_cell(e: EnvironmentPreview) -> str:
    if e.error:
        return "**does not render**"
    if not e.objects:
        return "no change"
    parts = [_plural(len(e.objects), "object")]
    images = sum(len(o.images) for o in e.objects)
    values = sum(len(o.config) for o in e.objects)
    secrets = sum(len(o.secrets) for o in e.objects)
    parts += [_plural(images, "image")] if images else []
    parts += [_plural(values, "config value")] if values else []
    parts += [_plural(secrets, "secret key")] if secrets else []
    return ", ".join(parts)


def _release_cell(e: EnvironmentPreview) -> str:
    parts = [f"{app}: {_plural(len(c), 'config value')}" for app, c in e.next_release.items() if c]
    return "; ".join(parts) or "no change"


def _object_lines(o: ObjectChange) -> list[str]:
    lines = [f"- {code(o.subject)} {o.action}"]
    lines += [
        f"  - image of {code(c)}: {code(short_image(b))} → {code(short_image(a))}"
        for c, b, a in o.images
    ]
    lines += [f"  - config {code(k)}: {code(b)} → {code(a)}" for k, b, a in o.config]
    lines += [f"  - secret key {code(k)} {what} (value not shown)" for k, what in o.secrets]
    return lines


def _values_table(changes: tuple[Change, ...]) -> list[str]:
    rows = ["| Key | Before | After |", "|---|---|---|"]
    return rows + [f"| {code(k)} | {code(b)} | {code(a)} |" for k, b, a in changes]


def _environment(e: EnvironmentPreview, p: Preview) -> list[str]:
    out = ["", f"#### {e.environment}"]
    if e.error:
        out += [
            "",
            f"**{code(e.overlay)} does not render** in the {p.head}: {mdtext.text(e.error)}",
        ]
    if e.objects:
        out += [
            "",
            f"**Overlay {code(e.overlay)}**: what `ship "
            f"sync {e.environment}` would apply differently",
            "",
        ]
        for o in e.objects:
            out += _object_lines(o)
        diffs = "".join(o.diff for o in e.objects if o.diff)
        if diffs:
            out += [
                "",
                "<details><summary>Rendered diff "
                f"({_plural(len(e.objects), 'object')}, secrets redacted)"
                "</summary>",
                "",
                "```diff",
                diffs.rstrip("\n").replace("```", "ˋˋˋ"),
                "```",
                "",
                "</details>",
            ]
    for app, changes in e.next_release.items():
        out += [
            "",
            f"**Next release of {app} to {e.environment}**: its config changes",
            "",
            *_values_table(changes),
        ]
    return out


def _app(a: AppPreview) -> list[str]:
    out = ["", f"#### App {a.app}", ""]
    if a.source:
        shown = ", ".join(code(f) for f in a.source[:5]) + (", …" if len(a.source) > 5 else "")
        out.append(
            f"- source: {_plural(len(a.source), 'file')} changed "
            f"({shown}): the next `ship build` makes a new image"
        )
    for key, what in a.secret_keys:
        where = (
            f"its value comes from {code(names.secret_variable(a.app, key))} at sync time"
            if what == "added"
            else "no longer set"
        )
        out.append(f"- secret key {code(key)} {what} in ship.yaml: {where}")
    return out


def markdown(p: Preview, title: str = "ship preview") -> str:
    out = [
        f"### {mdtext.text(title)}: {code(p.base)} → {p.head}",
        "",
        "Every environment overlay rendered with kustomize "
        f"at {code(p.base_sha[:7])} (the merge base with "
        f"{code(p.base)}) and in the {p.head}; no "
        "cluster was asked. Secret values are never shown.",
    ]
    out += [f"> **Warning**: {mdtext.text(w)}" for w in p.warnings]
    if not p.changed:
        return "\n".join([*out, "", "**No change** to any environment or app."]) + "\n"
    out += [
        "",
        "| Environment | Overlay (what `ship sync` applies) | Next release (from apps/) |",
        "|---|---|---|",
    ]
    out += [
        f"| {e.environment} | {_overlay_cell(e)} | {_release_cell(e)} |" for e in p.environments
    ]
    for e in p.environments:
        if e.changed:
            out += _environment(e, p)
    for a in p.apps:
        if a.changed:
            out += _app(a)
    return "\n".join(out) + "\n"
