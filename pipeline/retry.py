"""When to send a request to the API server or a registry again, and after how long.

    decide(policy, outcome, attempts, elapsed, rand, is_idempotent=…)
        ─► seconds to wait, or None: give up

A pure policy, in the spirit of client-go's (which retries on Retry-After, and GETs on a reset
connection) and of Flux's backoff: 429 is retried for any request (API Priority and Fairness
and registries refuse with it before acting on the request), honouring Retry-After; 5xx and a
connection lost after the request went out only for idempotent requests (GET, HEAD, PUT,
DELETE and server-side apply, whose repetition changes nothing); a connection that failed
before anything was sent for any request. Except, with `fail_fast`, a refused connection or a
host name that does not resolve: nothing listens there or the name is wrong, so the command
fails at once, as kubectl does (the cluster client asks for this until the server first
answers; after that a refused connection is a restart, and is retried). Waits grow
exponentially with jitter and stop at a bounded total, so a dead server fails the command in
`total` seconds, not never. `send` below is the thin loop that sleeps
and re-sends; it decides nothing itself.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
APPLY_PATCH = "application/apply-patch+yaml"
# 429: APF or a registry's rate limit refused the request before handling it. A 5xx may come
# after the server acted (a webhook timing out after etcd stored the object), so only an
# idempotent request is sent again after one.
NOT_ACTED = frozenset({429})
SERVER_ERRORS = frozenset({500, 502, 503, 504})
TOTAL_VARIABLE = "SHIP_RETRY_SECONDS"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 10  # requests in all, the first included
    base: float = 0.25  # the first backoff in seconds; doubled after each retry
    # the longest backoff between two attempts (a server's Retry-After may ask for more)
    cap: float = 8.0
    # never wait past this many seconds after the first attempt; 0 disables retries
    total: float = 45.0
    # the share of each backoff drawn at random, so clients do not retry in step
    jitter: float = 0.5


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: an HTTP status, or no response at all."""

    status: int | None = None  # None when no response came
    sent: bool = True  # False when the connection failed before the request went out
    retry_after: float | None = None  # the server's Retry-After, in seconds

    def describe(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}" + (
                f", Retry-After {self.retry_after:g}s" if self.retry_after is not None else ""
            )
        return "no connection" if not self.sent else "connection lost"


def idempotent(method: str, content_type: str | None = None) -> bool:
    """Repeating the request leaves the server as one success would have."""
    return method.upper() in IDEMPOTENT or (
        method.upper() == "PATCH" and content_type == APPLY_PATCH
    )


def retryable(outcome: Outcome, *, is_idempotent: bool) -> bool:
    if outcome.status is None:
        return is_idempotent or not outcome.sent
    if outcome.status in NOT_ACTED:
        return True
    return is_idempotent and outcome.status in SERVER_ERRORS


def backoff(policy: RetryPolicy, attempts: int, rand: float) -> float:
    """The wait after `attempts` failed attempts: exponential, capped, the jitter share random."""
    full = min(policy.cap, policy.base * 2 ** (attempts - 1))
    return full * (1 - policy.jitter) + full * policy.jitter * rand


def decide(
    policy: RetryPolicy,
    outcome: Outcome,
    attempts: int,
    elapsed: float,
    rand: float,
    *,
    is_idempotent: bool,
) -> float | None:
    """Seconds to wait before attempt `attempts + 1`, or None to give up.

    `elapsed`: seconds since the first attempt began; `rand`: a number in [0, 1) for the jitter.
    A Retry-After is honoured (never retried sooner), and spread by the jitter above it.
    """
    if not retryable(outcome, is_idempotent=is_idempotent) or attempts >= policy.attempts:
        return None
    wait = backoff(policy, attempts, rand)
    if outcome.retry_after is not None:
        wait = outcome.retry_after + policy.base * policy.jitter * rand
    if elapsed + wait > policy.total:
        return None
    return wait


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After as seconds: delta-seconds, or an HTTP date (then relative to `now`)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def unreachable(exc: BaseException | None) -> bool:
    """A refused connection or an unknown host name, anywhere in the exception's chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def http_failure(
    value: httpx.Response | httpx.HTTPError, *, fail_fast: bool = False
) -> Outcome | None:
    """How an httpx request failed, for `decide`; None for an answer to hand back as it is.
    `fail_fast`: a refused connection or unknown host is final (see the module docstring)."""
    if fail_fast and isinstance(value, httpx.ConnectError) and unreachable(value):
        return None
    if isinstance(value, httpx.HTTPError):
        # Nothing was sent when no connection could be made (or none was free in the pool).
        unsent = isinstance(value, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        return Outcome(None, sent=not unsent)
    if value.status_code in NOT_ACTED or value.status_code in SERVER_ERRORS:
        return Outcome(
            value.status_code,
            retry_after=parse_retry_after(
                value.headers.get("Retry-After"), dt.datetime.now(dt.UTC)
            ),
        )
    return None


def policy_from_env(environ: dict[str, str] | None = None) -> RetryPolicy:
    """The default policy, with SHIP_RETRY_SECONDS as its total when set (0: no retries)."""
    value = (environ if environ is not None else os.environ).get(TOTAL_VARIABLE, "")
    try:
        total = float(value) if value else RetryPolicy.total
    except ValueError:
        total = RetryPolicy.total
    return RetryPolicy(total=max(0.0, total))


T = TypeVar("T")


@dataclass(frozen=True)
class Sent:
    """What `send` ended with: the last attempt's value, how it ended, and the effort spent."""

    attempts: int
    elapsed: float  # seconds since the first attempt began
    outcome: Outcome | None  # None when the last attempt succeeded or is final

    def note(self, before: str = " (", after: str = ")") -> str:
        """`after N attempts in Ts`, between `before` and `after`; "" after one attempt."""
        return (
            f"{before}after {self.attempts} attempts in {self.elapsed:.1f}s{after}"
            if self.attempts > 1
            else ""
        )


@dataclass(frozen=True)
class Waiting:
    """What `send` sleeps, reads the time and draws its jitter with: the real ones by default,
    a test's own so it runs without waiting."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic  # seconds, for the policy's `total`
    rand: Callable[[], float] = random.random  # a number in [0, 1) for the jitter


def send(
    attempt: Callable[[], T],
    failure: Callable[[T], Outcome | None],
    policy: RetryPolicy,
    *,
    is_idempotent: bool,
    on_retry: Callable[[Outcome, int, float], None] | None = None,
    waiting: Waiting = Waiting(),
) -> tuple[T, Sent]:
    """Call `attempt` again while `failure` says it failed and the policy says to retry.

    `failure(value)`: None when the value is final (a success, or an answer no retry changes),
    else how the attempt failed. Returns the last value, and how many attempts it took.
    """
    monotonic = waiting.monotonic
    start = monotonic()
    attempts = 0
    while True:
        value = attempt()
        attempts += 1
        outcome = failure(value)
        if outcome is None:
            return value, Sent(attempts, monotonic() - start, None)
        wait = decide(
            policy,
            outcome,
            attempts,
            monotonic() - start,
            waiting.rand(),
            is_idempotent=is_idempotent,
        )
        if wait is None:
            return value, Sent(attempts, monotonic() - start, outcome)
        if on_retry is not None:
            on_retry(outcome, attempts, wait)
        waiting.sleep(wait)
