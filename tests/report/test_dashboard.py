"""`ship dashboard` and `ship serve` on the story repository (tests/report/story.py): headless
Chromium (Debian's `chromium`) loads the page, the test reads what it rendered, checks the tables,
the canary row and the charts, that the console stayed silent, and saves a screenshot
(SHIP_SCREENSHOTS=docs writes docs/dashboard.png, which the README shows)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.commands import deploy, observe
from pipeline.report.dashboard import site
from tests.conftest import ROOT, free_port, wait_http
from tests.fakes import GOOD, fake_context

pytestmark = pytest.mark.slow  # a story repository, Chromium: the full suite runs these, `make unit` does not

URL = "https://github.com/example/shop/commit/{sha}"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: run `make deps` (hack/install-deps.sh installs Debian's chromium)",
                    pytrace=False)
    return found


def browse(page: Path, screenshot: Path | None = None, height: int = 1700) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and every console line Chromium logged."""
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
            "--v=0", f"--window-size=1280,{height}", "--virtual-time-budget=5000"]
    out: dict[str, str] = {}
    for mode in (["--dump-dom"], [f"--screenshot={screenshot}"] if screenshot else []):
        if not mode:
            continue
        proc = subprocess.run([*args, *mode, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out.setdefault("dom", proc.stdout)
        out["log"] = out.get("log", "") + proc.stderr
    return out["dom"], [line for line in out["log"].splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def site_dir(story, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    observe.dashboard(story.ctx, out, live=False, since="30d", commit_url=URL)
    return out


def test_the_site_is_the_page_its_data_and_the_vendored_assets(site_dir):
    names = sorted(str(p.relative_to(site_dir)) for p in site_dir.rglob("*") if p.is_file())
    assert names == [".nojekyll", "assets/chart.js.LICENSE.md", "assets/chart.umd.min.js", "assets/dashboard.css",
                     "assets/dashboard.js", "data.json", "index.html"]
    vendor = (ROOT / "pipeline/report/dashboard/assets/VENDOR.md").read_text()
    digest = hashlib.sha256((site_dir / "assets/chart.umd.min.js").read_bytes()).hexdigest()
    assert f"`{digest}`" in vendor and f"| version | {site.CHART_JS_VERSION} |" in vendor
    assert (site_dir / "assets/chart.umd.min.js").read_text().startswith(f"/*!\n * Chart.js v{site.CHART_JS_VERSION}")
    page = (site_dir / "index.html").read_text()
    loaded = re.findall(r'(?:src="|<link[^>]*href=")([^"]+)"', page)  # what the page loads: all of it local
    assert loaded == ["assets/dashboard.css", "assets/chart.umd.min.js", "assets/dashboard.js"]


def test_chromium_renders_tables_the_canary_and_four_charts_with_a_silent_console(story, site_dir, tmp_path):
    shots = Path(os.environ["SHIP_SCREENSHOTS"]) if os.environ.get("SHIP_SCREENSHOTS") else tmp_path
    shots = ROOT / shots if not shots.is_absolute() else shots
    shots.mkdir(parents=True, exist_ok=True)
    dom, console = browse(site_dir / "index.html", shots / "dashboard.png")
    assert console == []
    assert 'data-charts-rendered="4"' in dom  # dashboard.js drew every chart with Chart.js
    rows = re.findall(r'<tr><th scope="row">(dev|uat|prod)<br><small>hk-\1</small></th><td>hellok8s</td>', dom)
    assert rows == ["dev", "uat", "prod"]
    canary = re.search(r'<tr class="canary-row" data-environment="prod">(.*?)</tr>', dom).group(1)
    f = story.releases["F"]
    assert f"<code>{f}</code>" in canary and "1 of 1" in canary and "hellok8s 90%, hellok8s-canary 10%" in canary
    assert "held for a decision" in canary
    assert re.search(r"<th scope=\"row\">dev</th><td>5</td><td>1\.2/week</td><td>1h</td><td>1h</td>"
                     r"<td>33% \(2 of 6\)</td><td>5m</td><td>1d</td><td>no</td>", dom)
    timeline = re.findall(r'<tr class="event-(\w+)">', dom)
    assert len(timeline) == 31 and timeline[:2] == ["canary", "canary"] and "abort" in timeline
    head = story.ctx.workspace.git.head().sha
    assert f'<a href="https://github.com/example/shop/commit/{head}"><code title="{head}">{head[:7]}</code></a>' in dom
    png = (shots / "dashboard.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000


def test_live_without_a_cluster_says_so_and_shows_what_git_knows(story, tmp_path, monkeypatch):
    monkeypatch.chdir(story.root)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    out = CliRunner().invoke(app, ["dashboard", "--out", str(tmp_path / "site"), "--live"])
    assert out.exit_code == 0, out.output
    assert "health: cluster unreachable, so health is as git records it (dev: " in out.stdout
    page = (tmp_path / "site/index.html").read_text()
    assert "cluster unreachable" in page and "✓</span> healthy</span> <small>(git)</small>" in page


def test_serve_answers_and_refreshes_from_git(story, tmp_path):
    work = tmp_path / "repo"
    shutil.copytree(story.root, work, symlinks=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--interval", "1",
                             "--git-only"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        first = httpx.get(f"http://127.0.0.1:{port}/").text
        assert '<meta http-equiv="refresh" content="1">' in first and story.releases["F"] in first
        assert httpx.get(f"http://127.0.0.1:{port}/assets/chart.umd.min.js").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/nope").status_code == 404
        # DNS rebinding: a page of another site whose name now resolves to 127.0.0.1 gets nothing
        rebound = httpx.get(f"http://127.0.0.1:{port}/data.json", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 421 and "release" not in rebound.text
        assert httpx.get(f"http://localhost:{port}/").status_code == 200
        ctx, _, registry = fake_context(work, [])
        (work / "apps/hellok8s/config/dev.env").write_text("MESSAGE=seventh edition\nDB_URL=postgres://db\n")
        ctx.workspace.git.repo.git.commit("-qam", "seventh edition")
        registry.revision = ctx.workspace.git.head().sha  # the image was built from it
        released = deploy.release(ctx, "dev", None, deploy.ReleaseOptions(images=(GOOD,), sync=False)).release.id
        deadline = time.monotonic() + 10
        while released not in (page := httpx.get(f"http://127.0.0.1:{port}/").text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"<code>{released}</code>" in page
        assert released in httpx.get(f"http://127.0.0.1:{port}/data.json").json()["environments"][0]["release"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.strip() == f"stopped serving http://127.0.0.1:{port}/"
    assert f"serving http://127.0.0.1:{port}/ (refreshed from git every 1s or when HEAD moves; Ctrl-C stops)" in err
