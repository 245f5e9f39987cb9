"""The traffic input of the canary analysis: users' requests through the gateway, judged.

Each round reads the gateway's counters for the canary and for the stable from Prometheus at one
instant (counters.py), adds the increase since the last reading to the bake's running tallies and
asks judge.decide, as the HTTP check does with its own GETs. The first round only reads where the
counters stand. Silence never passes:

    too few requests        the judge stays undecided; at the end of the bake (and of max_bake)
                            the step fails, naming the counts and how many a pass needs
    top_up                  a round in which users sent the canary fewer than top_up_requests is
                            topped up with GETs of the top_up URL, both tracks alike, said in the
                            verdict
    Prometheus silent       (no answer, an error) the round is undecided; the next reading counts
                            the gap, and if Prometheus is still silent at the end, the step fails
    no series               (a wrong provider, metrics not scraped, no request yet) undecided, named
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pipeline.config import TrafficInput
from pipeline.rollout import counters, judge
from pipeline.rollout.counters import Reading

SAYS = "users' traffic through the gateway"
# Analysis.get: (url, timeout, params) -> (status, body)
Get = Callable[..., tuple[int | None, bytes]]


def prometheus_answer(body: bytes) -> dict[str, Any]:
    """Prometheus's JSON answer; {} for an empty body or one that is not a JSON object.
    (json.loads, not httpx.Response(...).json(): this runs for every query of every round.)"""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class UserTraffic:
    """One analysis check: the canary against the stable on users' requests, round by round."""

    def __init__(
        self,
        traffic: TrafficInput,
        tracks: dict[str, dict[str, str]],
        get: Get,
        fill: Callable[[str, dict[str, str]], str],
        now: Callable[[], float] = time.time,
    ):
        """`tracks`: placeholder values (and the Service's port) for "canary" and "stable"; `get`
        and `fill` are the analysis's (cluster Services through the API server's proxy)."""
        self.traffic, self.get, self.now = traffic, get, now
        self.selectors = {t: counters.selectors(traffic, tracks[t]) for t in ("canary", "stable")}
        self.prometheus = fill(traffic.prometheus, tracks["canary"]).rstrip("/") + "/api/v1/query"
        self.top_up = {t: fill(traffic.top_up, tracks[t]) for t in tracks} if traffic.top_up else {}
        self.policy = judge.http_policy(traffic.success_ratio, traffic.max_latency_ms)
        self.last: dict[str, Reading] | None = None
        self.tallies = {"canary": judge.Tally(), "stable": judge.Tally()}
        self.topped = 0  # synthetic GETs per track added so far
        self.seen: set[str] = set()  # tracks whose series the gateway has had
        whose = "your" if traffic.provider == "prometheus" else traffic.provider
        self.name = f"{SAYS} ({whose} counters in Prometheus)"

    def measure(self, *, final: bool) -> tuple[bool | None, str]:
        """(passed, summary) after one round; None: undecided."""
        readings = self._read()
        # Prometheus is silent: undecided, and the next reading counts the gap
        if isinstance(readings, str):
            return None, f"{readings}; {self._so_far()}"
        if self.last is None:
            self.last, self.seen = readings, {t for t in readings if readings[t].seen}
            return None, f"counting from now ({self._counted(readings)})"
        rounds = {t: counters.tally(self.last[t], readings[t], self.selectors[t]) for t in readings}
        self.seen |= {t for t in readings if readings[t].seen}
        gone = [t for t in readings if t in self.seen and not readings[t].seen]
        self.last = readings
        note = self._top_up(rounds)
        for t in rounds:
            self.tallies[t] += rounds[t]
        canary, stable = self.tallies["canary"], self.tallies["stable"]
        verdict = judge.decide(canary, stable, self.policy, final=final)
        passed = {judge.Decision.PASS: True, judge.Decision.FAIL: False}.get(verdict.decision)
        if judge.decide(canary, stable, self.policy).decision is judge.Decision.INCONCLUSIVE:
            note += self._why_undecided(readings, gone, final=final)
        # the notes go before the verdict's [PASS]/[FAIL]/[INCONCLUSIVE]
        cut = verdict.summary.rfind(" [")
        return passed, verdict.summary[:cut] + note + verdict.summary[cut:]

    def _why_undecided(self, readings: dict[str, Reading], gone: list[str], *, final: bool) -> str:
        """What keeps the evidence short: vanished or missing series, too few requests at the
        end."""
        unseen = [t for t in ("canary", "stable") if not readings[t].seen]
        note = ""
        if gone:
            note = (
                f"; the gateway's series for the {' and the '.join(gone)} "
                "are gone (the gateway stopped, or its "
                "metrics are no longer scraped)"
            )
        elif unseen:
            note = f"; no series for the {' and the '.join(unseen)} yet: {self._unseen(unseen[0])}"
        needed, sent = judge.requests_to_pass(self.policy), self.tallies["canary"].requests
        if (final or unseen) and sent < needed:
            note += (
                f"; too few requests: the canary was sent {sent} "
                f"(a pass needs at least {needed} without an error)"
            )
        return note

    def _read(self) -> dict[str, Reading] | str:
        """Both tracks' counters at one instant (the same window for both), or why Prometheus is
        silent."""
        at = f"{self.now():.3f}"
        readings = {}
        for track, s in self.selectors.items():
            found = [self._query(q, at) if q else {} for q in (s.requests, s.errors, s.buckets)]
            silent = next((f for f in found if isinstance(f, str)), None)
            if silent is not None:
                return silent
            readings[track] = Reading(*found)  # type: ignore[arg-type]
        return readings

    def _query(self, promql: str, at: str) -> dict[counters.Series, float] | str:
        status, body = self.get(self.prometheus, 10.0, {"query": promql, "time": at})
        parsed = prometheus_answer(body)
        if status != 200 or parsed.get("status") != "success":
            why = (
                "no answer"
                if status is None
                else f"HTTP {status} {parsed.get('error', '')}".strip()
            )
            return f"Prometheus at {self.traffic.prometheus} did not answer ({why})"
        return counters.series(parsed)

    def _top_up(self, rounds: dict[str, judge.Tally]) -> str:
        """GETs of the top_up URL for both tracks when users sent the canary too few this round."""
        short = self.traffic.top_up_requests - rounds["canary"].requests
        if not self.top_up or short <= 0:
            return ""
        for t, url in self.top_up.items():
            statuses, latencies = [], []
            for _ in range(short):
                start = time.monotonic()
                statuses.append(self.get(url, 2.0, None)[0])
                latencies.append((time.monotonic() - start) * 1000)
            # the judge puts them in the histogram
            rounds[t] = rounds[t] + judge.Tally.of(statuses, latencies)
        self.topped += short
        return (
            f" (topped up with {short} synthetic GETs per track this round, {self.topped} in all)"
        )

    def _counted(self, readings: dict[str, Reading]) -> str:
        seen = [t for t in readings if readings[t].seen]
        return (
            f"series for {' and '.join(seen)}"
            if seen
            else f"no series yet: {self._unseen('stable')}"
        )

    def _unseen(self, track: str) -> str:
        return (
            f"{self.selectors[track].requests} has no "
            "series (no request through the gateway yet, the "
            f"wrong provider, or the gateway's metrics are not scraped)"
        )

    def _so_far(self) -> str:
        c, s = self.tallies["canary"], self.tallies["stable"]
        return f"so far canary {c.errors}/{c.requests} errors, stable {s.errors}/{s.requests}"
