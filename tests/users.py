"""A test helper playing users: GET requests through the gateway at a steady rate, in threads.

Bounded in count and in time, and loopback only: it refuses any URL that is not 127.0.0.1 or
localhost, so a test can never load anything but the lab. Answers are counted by status and by
the X-Track header hellok8s sets; a request the gateway did not answer counts as None.
"""

from __future__ import annotations

import collections
import threading
import time

import httpx

LOOPBACK = ("127.0.0.1", "localhost")


class Users:
    """`with Users(url, host, rate=20):` users at `rate` requests/s through the gateway at `url`
    (Host: `host`) until the block ends, `limit` requests are sent or `seconds` pass."""

    def __init__(self, url: str, host: str, rate: float = 5.0, limit: int = 20_000, seconds: float = 600.0,
                 workers: int = 4, path: str = "/"):
        if httpx.URL(url).host not in LOOPBACK:
            raise ValueError(f"users only play against the lab on loopback, not {url}")
        self.url, self.host, self.path = url, host, path
        self.rate, self.limit, self.seconds, self.workers = rate, limit, seconds, workers
        self.answers: collections.Counter = collections.Counter()  # (status or None, track) -> count
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Users:
        self._until = time.monotonic() + self.seconds
        self._threads = [threading.Thread(target=self._play, daemon=True, name=f"user-{i}")
                         for i in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self) -> None:
        """Until every request is sent (`limit`) or the time is up (`seconds`)."""
        for t in self._threads:
            t.join(timeout=self.seconds + 30)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _take(self) -> bool:
        with self._lock:
            if self.sent >= self.limit or time.monotonic() >= self._until:
                return False
            self.sent += 1
            return True

    def _play(self) -> None:
        # Each worker keeps its share of the rate; a slow answer delays only its own worker.
        pause = self.workers / self.rate
        with httpx.Client(base_url=self.url, headers={"Host": self.host}, timeout=10) as client:
            while not self._stop.is_set() and self._take():
                started = time.monotonic()
                try:
                    answer = client.get(self.path)
                    key = (answer.status_code, answer.headers.get("X-Track", ""))
                except httpx.HTTPError:
                    key = (None, "")
                with self._lock:
                    self.answers[key] += 1
                self._stop.wait(max(0.0, pause - (time.monotonic() - started)))

    def by_track(self) -> dict[str, tuple[int, int]]:
        """track -> (answers, 5xx answers)."""
        out: dict[str, tuple[int, int]] = {}
        with self._lock:
            for (status, track), n in self.answers.items():
                total, errors = out.get(track, (0, 0))
                out[track] = (total + n, errors + (n if status is None or status >= 500 else 0))
        return out


if __name__ == "__main__":  # hack/demo.sh: python -m tests.users URL HOST RATE SECONDS
    import sys

    url, host, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    with Users(url, host, rate=rate, seconds=seconds) as users:
        users.wait()
    print(f"users sent {users.sent} requests through {url} (Host: {host}): "
          + ", ".join(f"{track or '?'} {n} answers, {e} errors" for track, (n, e) in sorted(users.by_track().items())))
