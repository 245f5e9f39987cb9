"""Canary judgment: is the canary acceptable beside the stable, given how much was measured?

Pure: standard library only. It never sends a request, reads ship.yaml or touches a cluster.
The analysis loop measures each round (per track: requests, errors, latencies), adds the round
into running `Tally`s for the canary and the stable, and calls `decide(canary, stable, policy)`.
FAIL ends the bake at once; PASS and INCONCLUSIVE let it go on; the call at the end of the bake
(`final=True`) turns INCONCLUSIVE into FAIL, so a canary passes on evidence, never on silence.

Method. Each check is Wald's sequential probability ratio test on a Bernoulli rate (A. Wald,
"Sequential tests of statistical hypotheses", Ann. Math. Statist. 16 (1945) 117-186): the share
of canary requests that failed, and the share slower than max_latency_ms (p95 ≤ max_latency_ms
is the same as "at most 5% slower"). Around a tolerated rate t it weighs H0: p = t/2
(acceptable) against H1: p = 2t (bad) by the log-likelihood ratio of the whole tally, and says
FAIL at ln((1-β)/α), PASS at ln(β/(1-α)), INCONCLUSIVE between. Under H0 the likelihood ratio
is a martingale, so the chance it ever reaches the FAIL bound is ≤ α/(1-β) however often one
looks (Ville's inequality): judging after every round adds no false aborts, where today's
per-round ratio test does (20 requests at ≥ 95% in each of 7 rounds aborts a canary with 2%
errors ~35% of the time). We chose it over a group-sequential two-proportion z-test because a
bake sees a handful of errors, where the normal approximation fails, and because it needs no
schedule of looks. Truncation at the end of the bake only adds aborts, never passes.

What is tolerated: t = min(max_error_rate, stable's bound + margin), the bound being Wilson's
(1927) one-sided upper bound on the stable's error rate at 1-α. The threshold always holds, as
in Argo Rollouts and Flagger: a canary over it fails even beside an equally bad stable (a bad
stable must not wave a bad canary through). The baseline only tightens it: once the stable has
shown it does clearly better, the canary may be at most `margin` worse than that bound. The
bound, not the stable's observed rate, gives the canary the benefit of the stable's doubt: a
stable seen briefly, or lucky in a small sample, leaves the limit in force. Wald's bounds are
exact for a fixed t; tests/rollout/test_judge.py simulates the combination.

Latency comes as one value per request (the HTTP check) or as a histogram (a gateway's buckets).
It is judged against max_latency_ms only (the stable's p95 is printed for context: two
tail quantiles of a few dozen samples differ by noise), and only from min_latency_samples (20)
on: below that a p95 is the slowest of a handful.

Defaults: REQUESTS_PER_ROUND = 40 per track, α = 1%, β = 5%, margin = half the limit. A 5 s
interval over a 30 s bake is 7 rounds (t = 0, 5, …, 30 s), 280 requests per track. Simulated
beside a stable with 2% errors: a canary with 2% is aborted ~0.2% of the time, one at the 5%
limit ~55%, one with 12% ~100%. At 20 requests per round the same rule aborts ~6% of the 2%
canaries: a pass on evidence needs more requests than a pass on silence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from statistics import NormalDist

REQUESTS_PER_ROUND = 40  # per track and round: what the default policy needs over a 30 s bake
SLOW_SHARE = 0.05  # p95 ≤ limit ⟺ at most this share of requests is slower than the limit


class Decision(Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Tally:
    """What one track answered: in one round, or summed (`+`) over the bake so far."""

    requests: int = 0
    errors: int = 0  # not the expected status, a connection error or a timeout
    latencies_ms: tuple[float, ...] = ()  # one per request, when latency is judged
    # Or a latency histogram, as a gateway counts it: (upper bound in ms, requests at or under
    # it), cumulative, the last bound math.inf; added bucket by bucket.
    buckets: tuple[tuple[float, int], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.errors <= self.requests:
            raise ValueError(
                f"a tally of {self.requests} requests cannot have {self.errors} errors"
            )

    def __add__(self, other: Tally) -> Tally:
        merged: dict[float, int] = {}
        for le, n in self.buckets + other.buckets:
            merged[le] = merged.get(le, 0) + n
        return Tally(
            self.requests + other.requests,
            self.errors + other.errors,
            self.latencies_ms + other.latencies_ms,
            tuple(sorted(merged.items())),
        )

    @classmethod
    def of(
        cls,
        statuses: Iterable[int | None],
        latencies_ms: Iterable[float] = (),
        expect_status: int = 200,
    ) -> Tally:
        """One round of an HTTP check: a status per request, None for a connection error."""
        statuses = list(statuses)
        return cls(
            len(statuses), sum(1 for s in statuses if s != expect_status), tuple(latencies_ms)
        )

    @property
    def rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class JudgePolicy:
    """What the canary must show, and how sure the judge must be. See `http_policy`."""

    # 1 - success_ratio; above it the canary fails, whatever the stable does
    max_error_rate: float = 0.05
    margin: float = 0.025  # how much worse than the stable's upper bound the canary may be
    max_latency_ms: float | None = None  # p95 limit; None: latency is not judged
    alpha: float = 0.01  # chance of aborting a canary at half the tolerated rate
    beta: float = 0.05  # chance of passing a canary at twice the tolerated rate
    min_latency_samples: int = 20  # fewer latencies than this: p95 not judged yet

    def __post_init__(self) -> None:
        if not 0 < self.max_error_rate < 1:
            raise ValueError(
                f"max_error_rate {self.max_error_rate} must be between 0 and 1 (exclusive)"
            )
        if not (0 < self.alpha < 0.5 and 0 < self.beta < 0.5):
            raise ValueError(f"alpha {self.alpha} and beta {self.beta} must be between 0 and 0.5")
        if self.margin < 0:
            raise ValueError(f"margin {self.margin} must not be negative")


@dataclass(frozen=True)
class Verdict:
    """The judgment after a round, e.g. `canary 30/280 errors (10.7%) vs stable 5/280 (1.8%),
    tolerated ≤ 5.0% (the limit): over the limit with 99.9% confidence [FAIL]`."""

    decision: Decision
    confidence: float  # probability, at even prior odds, of the reading the summary states
    summary: str  # every number the decision rests on, then [PASS], [FAIL] or [INCONCLUSIVE]

    def __str__(self) -> str:
        return self.summary


def http_policy(
    success_ratio: float = 0.95,
    max_latency_ms: float | None = 1000.0,
    alpha: float = 0.01,
    beta: float = 0.05,
) -> JudgePolicy:
    """The policy for an HTTP check's numbers (config.HttpCheck), without importing config."""
    # "Never an error" cannot be shown by sampling; success_ratio 1.0 is read as 99.9%.
    limit = max(1.0 - success_ratio, 0.001)
    return JudgePolicy(
        max_error_rate=limit,
        margin=limit / 2,
        max_latency_ms=max_latency_ms,
        alpha=alpha,
        beta=beta,
    )


def requests_to_pass(policy: JudgePolicy) -> int:
    """Error-free canary requests needed before a PASS is possible: a bake that cannot
    gather this many (rounds × requests per round) can only fail."""
    low, high = _hypotheses(policy.max_error_rate)
    needed = math.ceil(_pass_bound(policy) / math.log((1 - high) / (1 - low)))
    return needed if policy.max_latency_ms is None else max(needed, policy.min_latency_samples)


def decide(canary: Tally, stable: Tally, policy: JudgePolicy, *, final: bool = False) -> Verdict:
    """Judge the tallies summed over the bake so far; `final` at the bake's end (no
    INCONCLUSIVE)."""
    checks = [_errors(canary, stable, policy, final=final)]
    if policy.max_latency_ms is not None:
        checks.append(_latency(canary, stable, policy, final=final))
    failed = [c for c in checks if c.decision is Decision.FAIL]
    open_ = [c for c in checks if c.decision is Decision.INCONCLUSIVE]
    deciding = (failed or open_ or [min(checks, key=lambda c: c.confidence)])[0]
    summary = "; ".join(c.text for c in checks) + f" [{deciding.decision.name}]"
    return Verdict(deciding.decision, deciding.confidence, summary)


@dataclass(frozen=True)
class _Check:
    decision: Decision
    confidence: float
    text: str


def _errors(canary: Tally, stable: Tally, policy: JudgePolicy, *, final: bool) -> _Check:
    if canary.requests == 0:
        if final:
            return _Check(
                Decision.FAIL, 0.5, "no data: the canary answered no requests in the whole bake"
            )
        return _Check(Decision.INCONCLUSIVE, 0.5, "canary: no requests yet")
    vs = (
        f"stable {stable.errors}/{stable.requests} ({stable.rate:.1%})"
        if stable.requests
        else "stable: no requests"
    )
    tolerated, why = _tolerated(stable, policy)
    bad = "worse than the stable" if tolerated < policy.max_error_rate else "over the limit"
    head = f"canary {canary.errors}/{canary.requests} errors ({canary.rate:.1%}) vs {vs}, {why}"
    return _sequential(
        head, bad, _llr(canary.errors, canary.requests, tolerated), policy, final=final
    )


def _latency(canary: Tally, stable: Tally, policy: JudgePolicy, *, final: bool) -> _Check:
    limit = policy.max_latency_ms or 0.0  # only called with a limit
    n, slow, p95 = _timed(canary, limit)
    if n < policy.min_latency_samples:
        if final:
            return _Check(
                Decision.FAIL,
                0.5,
                f"p95 not shown: {n} latencies in the whole bake "
                f"({policy.min_latency_samples} needed)",
            )
        return _Check(
            Decision.INCONCLUSIVE,
            0.5,
            f"p95 not judged yet: {n} latencies ({policy.min_latency_samples} needed)",
        )
    stable_n, _, stable_p95 = _timed(stable, limit)
    context = f" (stable p95 {stable_p95})" if stable_n else ""
    head = (
        f"p95 {p95} vs ≤ {limit:.0f}ms{context}, "
        f"{slow}/{n} slower ({slow / n:.1%}, ≤ {SLOW_SHARE:.0%} tolerated)"
    )
    return _sequential(head, "too slow", _llr(slow, n, SLOW_SHARE), policy, final=final)


def _timed(tally: Tally, limit: float) -> tuple[int, int, str]:
    """(requests timed, slower than `limit`, p95 as text), from the latencies or the histogram.
    A histogram counts as slow every request above the largest bound at or under the limit (a
    request it cannot place is not given the benefit of the doubt), and gives the p95 as the
    bound of the bucket it falls in."""
    if not tally.buckets:
        samples = tally.latencies_ms
        return len(samples), sum(1 for ms in samples if ms > limit), f"{_p95(samples):.0f}ms"
    # single latencies (a top-up) go into the histogram's buckets
    buckets = (
        (
            tally
            + Tally(buckets=bucketed(tally.latencies_ms, tuple(le for le, _ in tally.buckets)))
        ).buckets
        if tally.latencies_ms
        else tally.buckets
    )
    n = buckets[-1][1]
    under = max((count for le, count in buckets if le <= limit), default=0)
    p95 = next((le for le, count in buckets if count >= 0.95 * n), math.inf)
    if p95 != math.inf:
        return n, n - under, f"≤ {p95:.0f}ms"
    finite = [le for le, _ in buckets if le != math.inf]
    return n, n - under, f"> {finite[-1]:.0f}ms" if finite else "unknown"


def bucketed(
    latencies_ms: tuple[float, ...], bounds: tuple[float, ...]
) -> tuple[tuple[float, int], ...]:
    """Single latencies as a cumulative histogram with `bounds`."""
    return tuple((b, sum(1 for ms in latencies_ms if ms <= b)) for b in bounds)


def _llr(hits: int, n: int, tolerated: float) -> float:
    """Wald's log-likelihood ratio of `hits` of `n`, bad against acceptable, around `tolerated`."""
    low, high = _hypotheses(tolerated)
    return hits * math.log(high / low) + (n - hits) * math.log((1 - high) / (1 - low))


def _sequential(head: str, bad: str, llr: float, policy: JudgePolicy, *, final: bool) -> _Check:
    """Wald's sequential test at `llr` (_llr), read out as a check: `bad` names the failure."""
    p_bad = _logistic(llr)
    if llr >= math.log((1 - policy.beta) / policy.alpha):
        return _Check(Decision.FAIL, p_bad, f"{head}: {bad} with {_conf(p_bad)} confidence")
    if llr <= _pass_bound(policy):
        return _Check(
            Decision.PASS, 1 - p_bad, f"{head}: acceptable with {_conf(1 - p_bad)} confidence"
        )
    lean, conf = (bad, p_bad) if p_bad >= 0.5 else ("acceptable", 1 - p_bad)
    if final:
        needed = _conf(1 - _logistic(_pass_bound(policy)))
        return _Check(
            Decision.FAIL,
            conf,
            f"{head}: not shown acceptable in the bake "
            f"(leaning {lean} at {_conf(conf)}; a pass needs {needed})",
        )
    return _Check(
        Decision.INCONCLUSIVE, conf, f"{head}: undecided, leaning {lean} at {_conf(conf)}"
    )


def _tolerated(stable: Tally, policy: JudgePolicy) -> tuple[float, str]:
    """The canary's tolerated error rate, and the words that explain where it comes from."""
    bound = _upper_bound(stable.errors, stable.requests, 1 - policy.alpha)
    if bound + policy.margin < policy.max_error_rate:
        t = bound + policy.margin
        return t, f"tolerated ≤ {t:.1%} (stable's bound {bound:.1%} + {policy.margin:.1%})"
    return policy.max_error_rate, f"tolerated ≤ {policy.max_error_rate:.1%} (the limit)"


def _upper_bound(errors: int, n: int, confidence: float) -> float:
    """Wilson's score bound on a rate (good at 0 errors, unlike p ± z·se); 1.0 with no data."""
    if n == 0:
        return 1.0
    z = _z(confidence)
    p = errors / n
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (p + z * z / (2 * n) + spread) / (1 + z * z / n))


@lru_cache(maxsize=8)
def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(confidence)


def _hypotheses(tolerated: float) -> tuple[float, float]:
    """H0 and H1 a factor of 2 either side of `tolerated`, so the test's even point sits near
    it; H1 stays below 1 for tolerated rates over a third."""
    return tolerated / 2, min(2 * tolerated, (1 + tolerated) / 2)


def _pass_bound(policy: JudgePolicy) -> float:
    return math.log(policy.beta / (1 - policy.alpha))


def _logistic(llr: float) -> float:
    """P(H1) at even prior odds, without overflow for long tallies."""
    if llr >= 0:
        return 1 / (1 + math.exp(-llr))
    e = math.exp(llr)
    return e / (1 + e)


def _conf(p: float) -> str:
    # Floored and capped, so that 99.96% reads 99.9%: no sample makes the judge 100% sure.
    return f"{min(math.floor(p * 1000), 999) / 10:.1f}%"


def _p95(values: tuple[float, ...]) -> float:
    """Nearest-rank p95, as analysis.p95 computes it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
