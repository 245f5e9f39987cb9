"""The dashboard page: a Board in, one HTML document out. Pure.

Semantic HTML (a table per view with a caption and header cells, sections with headings), and
readable without colour: every state is a word with a symbol, colour only repeats it. The charts
are drawn by the vendored Chart.js from data embedded in the page (no request leaves it, so it
works offline and from file://); each chart's numbers are also in a table beside it.
"""

from __future__ import annotations

import html
import json

from pipeline.report import metrics as dora
from pipeline.report.dashboard.model import MAX_TIMELINE, Board, Canary, Row
from pipeline.report.events import Event

CHART_JS = "chart.umd.min.js"  # Chart.js, vendored at the version VENDOR.md names
ASSETS = (CHART_JS, "dashboard.js", "dashboard.css")
DORA_GUIDE = "https://dora.dev/guides/dora-metrics-four-keys/"

# state word -> (symbol, css class); the word is always printed, the symbol and colour only
# repeat it
STATES = {
    "Healthy": ("✓", "ok"),
    "healthy": ("✓", "ok"),
    "rolled back to": ("✓", "ok"),
    "Progressing": ("⧗", "warn"),
    "pending": ("⧗", "warn"),
    "canary": ("◐", "warn"),
    "Suspended": ("‖", "warn"),
    "Degraded": ("✗", "bad"),
    "rejected": ("✗", "bad"),
    "rollback failed": ("✗", "bad"),
    "rolled back": ("↺", "bad"),
    "Unknown": ("?", "unknown"),
    "not deployed": ("–", "unknown"),
    "not released": ("–", "unknown"),
}
EVENTS = {  # (action, outcome) -> words; symbol and class from STATES where it has one
    ("release", ""): ("released", "⬆", "info"),
    ("promote", ""): ("promoted", "⇢", "info"),
    ("canary", ""): ("canary step", "◐", "warn"),
    ("record", "healthy"): ("healthy", "✓", "ok"),
    ("record", "rejected"): ("rejected", "✗", "bad"),
    ("abort", "rejected"): ("canary aborted", "✗", "bad"),
    ("rollback", ""): ("rolled back", "↺", "bad"),
}


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def badge(word: str, note: str = "") -> str:
    symbol, css = STATES.get(word, ("•", "unknown"))
    title = f' title="{e(note)}"' if note else ""
    return (
        f'<span class="state {css}"{title}><span '
        f'aria-hidden="true">{symbol}</span> {e(word)}</span>'
    )


def commit_ref(board: Board, sha: str) -> str:
    if not sha:
        return "–"
    link = board.link(sha)
    short = f'<code title="{e(sha)}">{e(sha[:7])}</code>'
    return f'<a href="{e(link)}">{short}</a>' if link else short


def when(t: object) -> str:
    text = t.strftime("%Y-%m-%d %H:%M") if hasattr(t, "strftime") else str(t).replace("T", " ")[:16]
    iso = t.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(t, "strftime") else str(t)
    return f'<time datetime="{e(iso)}">{e(text)}</time>'


def _health(row: Row) -> str:
    if not row.release:
        return badge("not released")
    if row.health:
        drift = {None: "", True: " · drifted from git", False: " · in sync with git"}[row.drift]
        return badge(row.health, row.health_message) + e(drift)
    return badge(row.outcome) + " <small>(git)</small>"


def environments(board: Board) -> str:
    rows = []
    for r in board.rows:
        changed = f"{when(r.changed.time)} {commit_ref(board, r.changed.sha)}" if r.changed else "–"
        rows.append(
            f'<tr><th scope="row">{e(r.environment)}<br>'
            f"<small>{e(r.namespace)}</small></th><td>{e(r.app or '–')}</td>"
            f"<td><code>{e(r.release or '–')}</code></td>"
            f'<td><code title="{e(r.image)}">{e(r.digest or "–")}</code>'
            f"</td><td><code>{e(r.config or '–')}</code></td>"
            f"<td>{_health(r)}</td><td>{e(r.canary or '–')}</td><td>{changed}</td></tr>"
        )
    return (
        '<section id="environments" aria-labelledby="h-environments">'
        '<h2 id="h-environments">Environments</h2>'
        "<table><caption>What runs where: each environment's "
        "app, release, image digest and config, and its "
        f'health ({e(board.cluster_note)})</caption><thead><tr><th scope="col">Environment</th>'
        '<th scope="col">App</th><th scope="col">Release</th>'
        '<th scope="col">Digest</th><th scope="col">Config</th>'
        '<th scope="col">Health</th><th scope="col">Canary</th>'
        '<th scope="col">Last change</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _canary_row(c: Canary) -> str:
    steps = " → ".join(
        f"<strong>{w}%</strong>" if i + 1 == c.step else f"{w}%" for i, w in enumerate(c.steps)
    )
    weights = ", ".join(f"{e(name)} {w}%" for name, w in sorted(c.weights.items()))
    status = badge("canary") + (" held for a decision" if c.held else " running")
    return (
        f'<tr class="canary-row" data-environment="{e(c.environment)}">'
        f'<th scope="row">{e(c.environment)}</th>'
        f"<td>{e(c.app)}</td><td><code>{e(c.release)}</code></td><td>{e(c.source)}</td>"
        f"<td>{c.step} of {len(c.steps)}: {steps}</td>"
        f'<td><meter min="0" max="100" value="{c.weight}" '
        f'aria-label="canary weight">{c.weight}%</meter> {c.weight}%</td>'
        f"<td>{weights} <small>({'live' if c.live else 'as git set them'})</small>"
        f"</td><td>{status}</td>"
        f"<td>{when(c.started)}</td></tr>"
    )


def canaries(board: Board) -> str:
    head = (
        '<section id="canaries" aria-labelledby="h-canaries">'
        '<h2 id="h-canaries">Canaries in progress</h2>'
    )
    if not board.canaries:
        return head + "<p>No canary in progress.</p></section>"
    cols = (
        "Environment",
        "App",
        "Release",
        "From",
        "Step",
        "Weight",
        "Traffic",
        "Status",
        "Started",
    )
    return (
        head + "<table><caption>Each canary running beside a "
        "stable release: its step and weights</caption>"
        "<thead><tr>"
        + "".join(f'<th scope="col">{c}</th>' for c in cols)
        + "</tr></thead><tbody>"
        + "".join(_canary_row(c) for c in board.canaries)
        + "</tbody></table></section>"
    )


def _figures_row(env: str, f: dora.Figures) -> str:
    lead, restore = list(f.lead_times), list(f.restore_times)
    cells = [
        str(f.deployments),
        dora.frequency_text(f),
        dora.duration_text(dora.median(lead)),
        dora.duration_text(dora.percentile(lead, 90)),
        dora.rate_text(f),
        dora.duration_text(dora.median(restore)),
        dora.duration_text(dora.percentile(restore, 90)),
        "since " + f.failing_since.strftime("%Y-%m-%d %H:%M") if f.failing_since else "no",
    ]
    return (
        f'<tr><th scope="row">{e(env)}</th>' + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>"
    )


CHARTS = (  # (key in the chart data, heading, what the axis shows)
    ("deployments", "Deployment frequency", "deployments that ran healthy"),
    ("lead_time", "Lead time for changes (median)", "source commit to running healthy"),
    ("change_failure_rate", "Change failure rate", "failed deployments / decided deployments"),
    ("time_to_restore", "Time to restore (median)", "failed deployment to healthy again"),
)


def _chart(board: Board, key: str, heading: str, axis: str) -> str:
    data = board.chart_data()
    head = "".join(f'<th scope="col">{e(label)}</th>' for label in data["labels"])
    body = "".join(
        f'<tr><th scope="row">{e(s["environment"])}</th>'
        + "".join(f"<td>{e(_cell(key, v))}</td>" for v in s[key])
        + "</tr>"
        for s in data["environments"]
    )
    period = (
        "day" if len(data["labels"]) < 2 or not data["labels"][0].startswith("week") else "week"
    )
    return (
        f'<figure class="chart" id="figure-{key}">'
        f"<figcaption><h3>{e(heading)}</h3><p>{e(axis)}, per {period} and "
        f'environment</p></figcaption><div class="canvas-box"><canvas id="chart-{key}" role="img" '
        f'aria-label="{e(heading)} per environment over time; '
        'the numbers are in the table below"></canvas></div>'
        f"<details><summary>{e(heading)}: the numbers</summary>"
        '<div class="scroll"><table><thead><tr>'
        f'<th scope="col">Environment</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></details></figure>"
    )


def _cell(key: str, value: float | int | None) -> str:
    if value is None:
        return "–"
    if key == "change_failure_rate":
        return f"{value:.0%}"
    return str(value) if key == "deployments" else dora.duration_text(value)


def metrics(board: Board) -> str:
    cols = (
        "Deployments",
        "Frequency",
        "Lead time (median)",
        "Lead time (p90)",
        "Change failure rate",
        "Time to restore (median)",
        "Time to restore (p90)",
        "Failing now",
    )
    table = (
        "<table><caption>DORA's four keys per environment, "
        + e(
            f"{board.window.start:%Y-%m-%d} to "
            f"{board.window.end:%Y-%m-%d} ({board.window.days:.0f} days)"
        )
        + "</caption><thead><tr>"
        '<th scope="col">Environment</th>'
        + "".join(f'<th scope="col">{c}</th>' for c in cols)
        + "</tr></thead>"
        "<tbody>"
        + "".join(_figures_row(env, f) for env, f in board.figures.items())
        + "</tbody></table>"
    )
    charts = "".join(_chart(board, *spec) for spec in CHARTS)
    return (
        '<section id="metrics" aria-labelledby="h-metrics">'
        '<h2 id="h-metrics">Delivery: DORA metrics</h2>'
        f"<p>From ship's commits alone (<a href=\"{DORA_GUIDE}\">DORA's "
        "definitions</a>; the README says how "
        f'each is counted).</p>{table}<div class="charts">{charts}</div></section>'
    )


def _event_row(board: Board, ev: Event) -> str:
    words, symbol, css = EVENTS.get(
        (ev.action, ev.outcome), EVENTS.get((ev.action, ""), (ev.action, "•", "info"))
    )
    return (
        f'<tr class="event-{e(ev.action)}"><td>{when(ev.time)}</td>'
        f"<td>{e(ev.environment)}</td><td>{e(ev.app)}</td>"
        f'<td><span class="state {css}"><span '
        f'aria-hidden="true">{symbol}</span> {e(words)}</span></td>'
        f"<td><code>{e(ev.release)}</code></td><td>{e(ev.title)}</td>"
        f"<td>{commit_ref(board, ev.sha)}</td></tr>"
    )


def timeline(board: Board) -> str:
    shown = board.timeline[:MAX_TIMELINE]
    more = len(board.timeline) - len(shown)
    cols = ("Time (UTC)", "Environment", "App", "Event", "Release", "Commit message", "Commit")
    note = (
        (
            f"<p>{more} older events are not shown here; "
            "<code>ship history ENV</code> lists them all.</p>"
        )
        if more
        else ""
    )
    return (
        '<section id="timeline" aria-labelledby="h-timeline"><h2 id="h-timeline">Timeline</h2>'
        "<table><caption>Releases, promotions, canary steps, "
        "outcomes, rollbacks and aborts, newest first, "
        "each with the commit that recorded it</caption><thead><tr>"
        + "".join(f'<th scope="col">{c}</th>' for c in cols)
        + "</tr></thead><tbody>"
        + "".join(_event_row(board, ev) for ev in shown)
        + f"</tbody></table>{note}</section>"
    )


def render(board: Board, refresh: int = 0, assets: str = "assets/") -> str:
    """The page; `refresh` seconds makes it reload itself (ship serve)."""
    data = json.dumps(board.chart_data()).replace("</", "<\\/")
    reload = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    built = (
        f"Built from git at {commit_ref(board, board.head)} on <code>{e(board.branch)}</code>, "
        f"{when(board.generated)} UTC"
        + (f"; this page reloads every {refresh} s" if refresh else "")
        + "."
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{reload}'
        f"<title>{e(board.title)}: releases</title>"
        f'<link rel="stylesheet" href="{assets}dashboard.css"></head><body>'
        f"<header><h1>{e(board.title)}: releases</h1><p>{built} "
        f"<strong>Health:</strong> {e(board.cluster_note)}.</p>"
        '<nav aria-label="Sections"><ul><li><a href="#environments">Environments</a></li>'
        '<li><a href="#canaries">Canaries</a></li><li><a href="#metrics">Metrics</a></li>'
        '<li><a href="#timeline">Timeline</a></li></ul></nav></header><main>'
        + environments(board)
        + canaries(board)
        + metrics(board)
        + timeline(board)
        + "</main><footer><p>Made by <code>ship dashboard</code>. "
        "Charts: Chart.js, vendored in ship (MIT "
        f'licence, <a href="{assets}chart.js.LICENSE.md">text</a>).</p></footer>'
        f'<script id="ship-data" type="application/json">{data}</script>'
        f'<script src="{assets}{CHART_JS}"></script><script '
        f'src="{assets}dashboard.js"></script></body></html>\n'
    )
