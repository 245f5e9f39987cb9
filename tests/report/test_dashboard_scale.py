"""The dashboard with 1,000 releases: a repository of 6,000 of ship's commits (each release goes
dev → uat → prod, each step recorded healthy; every tenth prod release rolled back), made with
`git fast-import`. The page keeps its timeline to 1,000 rows (data.json has every event), and
Chromium still draws it with a silent console. Times are printed, never asserted (README:
"Speed is never asserted in tests")."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time

import git
import pytest

from pipeline.commands import observe
from pipeline.report.dashboard.model import MAX_TIMELINE
from tests.fakes import GOOD, fake_context, fake_project
from tests.report.test_dashboard import browse

pytestmark = pytest.mark.slow  # 1,000 releases and Chromium: the full suite runs it, `make unit` does not

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
RELEASES = 1000


def _commit(mark: int, when: dt.datetime, title: str, trailers: dict[str, str]) -> str:
    body = title + "\n\n" + "".join(f"Ship-{k}: {v}\n" for k, v in trailers.items())
    stamp = int(when.timestamp())
    return (f"commit refs/heads/main\nmark :{mark}\ncommitter ship <ship@example.com> {stamp} +0000\n"
            f"data {len(body.encode())}\n{body}\n" + ("from refs/heads/main^0\n" if mark == 1 else "") + "\n")


def history(n: int) -> str:
    out, mark = [], 0
    for i in range(n):
        source = START + dt.timedelta(hours=6 * i)
        rid = f"r{source:%Y%m%d-%H%M%S}-{i:07x}"
        steps = [("release", "dev", 10), ("record", "dev", 12), ("promote", "uat", 30), ("record", "uat", 32),
                 ("promote", "prod", 60), ("record", "prod", 62)]
        for action, env, minutes in steps:
            mark += 1
            fields = {"Action": action, "Release": rid, "App": "hellok8s", "Environment": env, "Image": GOOD}
            fields |= {"Outcome": "healthy"} if action == "record" else {}
            out.append(_commit(mark, source + dt.timedelta(minutes=minutes), f"{action}({env}): hellok8s@{rid}", fields))
        if i % 10 == 9:
            mark += 1
            fields = {"Action": "rollback", "Release": "r0", "App": "hellok8s", "Environment": "prod",
                      "Replaced": rid, "Outcome": "rolled back to", "Replaced-Outcome": "rolled back"}
            out.append(_commit(mark, source + dt.timedelta(minutes=90), f"rollback(prod): {rid} → r0: slow", fields))
    return "".join(out)


def test_a_thousand_releases(tmp_path, capsys):
    fake_project(tmp_path)
    stream = history(RELEASES)
    t0 = time.monotonic()
    subprocess.run(["git", "-C", str(tmp_path), "fast-import", "--quiet"], input=stream.encode(), check=True)
    imported = time.monotonic() - t0
    assert int(git.Repo(tmp_path).git.rev_list("--count", "HEAD")) == 1 + 6 * RELEASES + RELEASES // 10
    ctx, _, _ = fake_context(tmp_path, [])
    ctx.clock.now = lambda: START + dt.timedelta(hours=6 * RELEASES)  # type: ignore[method-assign]
    t0 = time.monotonic()
    result = observe.dashboard(ctx, tmp_path / "site", live=False, since="90d")
    built = time.monotonic() - t0
    assert len(result.board.timeline) == 6 * RELEASES + RELEASES // 10
    page = (tmp_path / "site/index.html").read_text()
    assert page.count('<tr class="event-') == MAX_TIMELINE and "older events are not shown here" in page
    prod = result.board.figures["prod"]
    assert (prod.deployments, prod.failed) == (360, 36)  # 90 days of a release every 6 hours; every tenth rolled back
    t0 = time.monotonic()
    dom, console = browse(tmp_path / "site/index.html")
    loaded = time.monotonic() - t0
    assert console == [] and 'data-charts-rendered="4"' in dom
    ready = int(re.search(r'data-ready-ms="(\d+)"', dom).group(1))  # navigation to charts drawn, in the page
    with capsys.disabled():
        print(f"\n1,000 releases ({len(result.board.timeline)} commits): fast-import {imported:.1f}s, "
              f"ship dashboard {built:.2f}s, page {len(page) // 1024} KiB, page ready in {ready} ms "
              f"(Chromium start to exit {loaded:.1f}s)")
