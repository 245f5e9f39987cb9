"""The dashboard as files, and the same page served live.

    DIR/index.html     the page (works opened from disk, from GitHub Pages or a workflow artifact)
    DIR/data.json      everything on it, for scripts, with the whole timeline
    DIR/assets/        Chart.js (vendored, see assets/VENDOR.md), dashboard.js, dashboard.css

Nothing on the page loads from the network. `serve` answers on 127.0.0.1 only, from memory: the
page is built again when HEAD moved or `interval` seconds passed, and reloads itself as often.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from pathlib import Path

from pipeline import paths
from pipeline.errors import ConfigError
from pipeline.progress import Progress, quiet
from pipeline.report.dashboard.model import Board
from pipeline.report.dashboard.page import ASSETS, render

CHART_JS_VERSION = "4.6.1"
FILES = (*ASSETS, "chart.js.LICENSE.md")
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
}


def asset(name: str) -> bytes:
    return resources.files("pipeline.report.dashboard").joinpath("assets", name).read_bytes()


def site_files() -> list[str]:
    return ["index.html", "data.json", ".nojekyll", *[f"assets/{name}" for name in FILES]]


def write(out: Path, board: Board, *, force: bool = False) -> list[Path]:
    """Write the site into `out` (created if needed; ship's files in it are replaced). Refused when
    `out` is a symlink or holds one, or holds files ship did not write (unless `force`)."""
    paths.output_folder(out, site_files(), force=force)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    written = [out / "index.html", out / "data.json", out / ".nojekyll"]
    written[0].write_text(render(board))
    written[1].write_text(json.dumps(board.to_json(), indent=1, default=str) + "\n")
    written[2].write_text("")  # GitHub Pages: serve the files as they are
    for name in FILES:
        (out / "assets" / name).write_bytes(asset(name))
        written.append(out / "assets" / name)
    return written


class Live:
    """The page and its data, built again when HEAD moved or `interval` seconds passed."""

    def __init__(
        self, build: Callable[[], Board], root: Path, interval: float, progress: Progress = quiet
    ):
        self.build, self.root, self.interval, self.progress = build, root, interval, progress
        self.page, self.data, self.head, self.built = b"", b"", "", 0.0

    def _head(self) -> str:
        proc = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        return proc.stdout.strip()

    def refresh(self) -> None:
        head = self._head()
        if self.page and head == self.head and time.monotonic() - self.built < self.interval:
            return
        board = self.build()
        self.page = render(board, refresh=max(1, round(self.interval))).encode()
        self.data = json.dumps(board.to_json(), default=str).encode()
        self.head, self.built = head, time.monotonic()
        self.progress(f"page built from {head[:7] or 'an empty repository'}: {board.cluster_note}")


def allowed_hosts(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"localhost:{port}"}


def handler(live: Live) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ship-serve"

        def do_GET(self) -> None:
            # A page on another site may point its own name at 127.0.0.1 (DNS rebinding) and read
            # this one: only requests that name this very address are answered.
            port = int(self.server.server_address[1])  # type: ignore[index]
            if self.headers.get("Host", "") not in allowed_hosts(port):
                body = b"unknown Host header\n"
                self.send_response(421)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html", "/data.json"):
                live.refresh()
                body, kind = (
                    (live.data, TYPES[".json"])
                    if path == "/data.json"
                    else (live.page, TYPES[".html"])
                )
            elif path.startswith("/assets/") and path[len("/assets/") :] in FILES:
                name = path[len("/assets/") :]
                body, kind = asset(name), TYPES[Path(name).suffix]
            else:
                body, kind = b"not found\n", "text/plain"
                self.send_response(404)
            if kind != "text/plain":
                self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            live.progress(f"{self.address_string()} {format % args}")

    return Handler


def serve(live: Live, port: int, ready: Callable[[str], None] = quiet) -> None:
    """Answer on 127.0.0.1:`port` until interrupted (Ctrl-C)."""
    try:
        server = HTTPServer(("127.0.0.1", port), handler(live))
    except OSError as exc:
        raise ConfigError(
            f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror})"
        ) from exc
    live.refresh()
    ready(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
