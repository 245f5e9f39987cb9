"""`ship summary`: a Markdown account of the pipeline for a GitHub Actions job summary.

Reads git only (each environment's release record, ledger and canary state), so any job can
append it to `$GITHUB_STEP_SUMMARY`: a table of what runs where with the last outcome and its
reason, a Mermaid diagram of the promotion path (dev → uat → prod) coloured by outcome, and the
headline DORA numbers of the last 30 days (metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Environment, ShipConfig, Slot
from pipeline.gitops.ledger import Outcome
from pipeline.gitops.workspace import Workspace
from pipeline.report import mdtext
from pipeline.report import metrics as dora
from pipeline.report.deployments import replay
from pipeline.report.events import read_events


@dataclass(frozen=True)
class EnvironmentLine:
    environment: str
    release: str | None
    image: str | None
    canary: str | None
    last: str | None  # the newest ledger entry's release id
    outcome: Outcome | None
    reason: str
    app: str | None = None


def gather(workspace: Workspace, slot: Slot) -> EnvironmentLine:
    """One app's line in its environment."""
    rel = workspace.current_release(slot)
    state = workspace.canary_state(slot)
    entries = workspace.ledger(slot).entries
    last = entries[-1] if entries else None
    return EnvironmentLine(
        slot.env.name,
        rel.ref if rel else None,
        rel.image if rel else None,
        state.describe() if state else None,
        last.release.ref if last else None,
        last.outcome if last else None,
        last.reason if last else "",
        slot.app,
    )


def gather_all(workspace: Workspace, env: Environment) -> list[EnvironmentLine]:
    """A line per app released in ENV, or ENV's own (empty) line when nothing is released there."""
    lines = [gather(workspace, slot) for slot in workspace.slots(env)]
    return lines or [EnvironmentLine(env.name, None, None, None, None, None, "")]


def merged(lines: list[EnvironmentLine]) -> EnvironmentLine:
    """An environment's apps as one node: its releases, canaries and the worst last outcome."""
    worst = next((x for x in lines if x.outcome is not None and x.outcome.failed), lines[-1])
    return EnvironmentLine(
        lines[0].environment,
        "<br/>".join(x.release for x in lines if x.release) or None,
        None,
        "; ".join(x.canary for x in lines if x.canary) or None,
        worst.last,
        worst.outcome,
        worst.reason,
    )


def _node_class(line: EnvironmentLine) -> str:
    if line.outcome is not None and line.outcome.failed:
        return "failed"
    if line.canary or line.outcome in (Outcome.PENDING, Outcome.CANARY):
        return "progressing"
    return "healthy" if line.release else "empty"


def _label(line: EnvironmentLine) -> str:
    parts = [f"<b>{line.environment}</b>", line.release or "nothing released"]
    if line.canary:
        parts.append(line.canary.split(" (")[0])
    if line.outcome is not None and line.outcome.failed:
        parts.append(f"{line.last} {line.outcome.value}")
    return "<br/>".join(parts).replace('"', "'")


def mermaid(cfg: ShipConfig, lines: list[EnvironmentLine]) -> str:
    by_name = {line.environment: line for line in lines}
    out = ["flowchart LR"]
    for line in lines:
        out.append(f'  {line.environment}["{_label(line)}"]')
    for env in cfg.environments.values():
        if env.promotes_from and env.promotes_from in by_name and env.name in by_name:
            out.append(f"  {env.promotes_from} --> {env.name}")
    out += [
        "  classDef healthy fill:#dcfce7,stroke:#15803d",
        "  classDef progressing fill:#fef9c3,stroke:#a16207",
        "  classDef failed fill:#fee2e2,stroke:#b91c1c",
        "  classDef empty fill:#f3f4f6,stroke:#6b7280",
    ]
    for cls in ("healthy", "progressing", "failed", "empty"):
        members = [line.environment for line in lines if _node_class(line) == cls]
        if members:
            out.append(f"  class {','.join(members)} {cls}")
    return "\n".join(out)


def markdown(cfg: ShipConfig, workspace: Workspace, title: str = "ship") -> str:
    by_env = [gather_all(workspace, env) for env in cfg.environments.values()]
    rows = ["| Environment | Release | Image | Canary | Last outcome |", "|---|---|---|---|---|"]
    for line in (x for group in by_env for x in group):
        # Reasons come from people and canary notes from git: literal text, never Markdown.
        outcome = "-"
        if line.outcome:
            outcome = mdtext.text(
                f"{line.last} {line.outcome.value}" + (f": {line.reason}" if line.reason else "")
            )
        rows.append(
            f"| {line.environment} | {mdtext.text(line.release or '-')} "
            f"| {mdtext.code(line.image or '-')} "
            f"| {mdtext.text(line.canary or '-')} | {outcome} |"
        )
    graph = mermaid(cfg, [merged(group) for group in by_env])
    return (
        f"### {mdtext.text(title)}\n\n"
        + "\n".join(rows)
        + "\n\n```mermaid\n"
        + graph
        + "\n```\n\n"
        + delivery(cfg, workspace)
    )


def delivery(cfg: ShipConfig, workspace: Workspace, since: str = "30d") -> str:
    """The four keys' headline per environment, as Markdown lines."""
    history = replay(read_events(workspace.git.repo, cfg))
    win = dora.window(since, workspace.clock.now())
    lines = [
        f"- {env}: {dora.headline(dora.figures(history, win, env))}" for env in cfg.environments
    ]
    return (
        f"**Delivery, last {since}** (DORA metrics; `ship metrics` has more):\n\n"
        + "\n".join(lines)
        + "\n"
    )
