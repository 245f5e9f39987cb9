"""The canary judge: tables of tallies, one assert per case, and a seeded simulation of the
default policy over the default bake (a round every 5 s for 30 s: 7 rounds, the first at t = 0)."""

import bisect
import itertools
import math
import operator
import random

import pytest

from pipeline.rollout import judge
from pipeline.rollout.judge import REQUESTS_PER_ROUND, Decision, Tally

PASS, FAIL, OPEN = Decision.PASS, Decision.FAIL, Decision.INCONCLUSIVE
ERRORS = judge.http_policy(0.95, max_latency_ms=None)
LATENCY = judge.http_policy(0.95, max_latency_ms=500)
ROUNDS = 7


def fast(n: int) -> tuple[float, ...]:
    return (100.0,) * n


def slow(n: int) -> tuple[float, ...]:
    return (900.0,) * n


# name: (canary, stable, policy, final, decision)
DECISIONS = {
    "no data yet: inconclusive": (Tally(), Tally(), ERRORS, False, OPEN),
    "no data at the end of the bake: fail": (Tally(), Tally(), ERRORS, True, FAIL),
    "few requests: inconclusive": (Tally(10, 0), Tally(10, 0), ERRORS, False, OPEN),
    "few requests at the end of the bake: fail": (Tally(10, 0), Tally(10, 0), ERRORS, True, FAIL),
    "clean canary beside a clean stable: pass": (Tally(80, 1), Tally(80, 1), ERRORS, False, PASS),
    "a burst of errors in the first round: fail at once": (Tally(40, 8), Tally(40, 1), ERRORS, False, FAIL),
    "at the limit, mid-bake: inconclusive": (Tally(280, 15), Tally(280, 5), ERRORS, False, OPEN),
    "at the limit for the whole bake: not shown acceptable": (Tally(280, 15), Tally(280, 5), ERRORS, True, FAIL),
    "bad stable does not let a bad canary pass": (Tally(280, 34), Tally(280, 34), ERRORS, True, FAIL),
    "better canary beside a bad stable: pass": (Tally(280, 3), Tally(280, 30), ERRORS, True, PASS),
    "under the limit but worse than a clean stable: fail": (Tally(2000, 80), Tally(2000, 0), ERRORS, False, FAIL),
    "under the limit and no worse than the stable: pass": (Tally(2000, 80), Tally(2000, 80), ERRORS, False, PASS),
    "under the limit, stable unseen: the limit alone: pass": (Tally(2000, 80), Tally(), ERRORS, False, PASS),
    "slow, too few latencies: not judged": (Tally(15, 0, slow(15)), Tally(15, 0, fast(15)), LATENCY, False, OPEN),
    "slow p95 with enough latencies: fail": (Tally(40, 0, fast(30) + slow(10)), Tally(40, 0, fast(40)), LATENCY,
                                             False, FAIL),
    "fast p95: pass": (Tally(80, 0, fast(80)), Tally(80, 1, fast(80)), LATENCY, False, PASS),
    "a few slow requests within the p95: pass": (Tally(280, 2, fast(275) + slow(5)), Tally(280, 2, fast(280)),
                                                 LATENCY, True, PASS),
    "latency asked for, none measured: fail at the end": (Tally(280, 2), Tally(280, 2), LATENCY, True, FAIL),
}


@pytest.mark.parametrize("name", DECISIONS)
def test_decision(name):
    canary, stable, policy, final, expected = DECISIONS[name]
    assert judge.decide(canary, stable, policy, final=final).decision is expected


# name: (canary, stable, policy, final, summary)
SUMMARIES = {
    "fail names counts, rates, tolerance and confidence": (
        Tally(120, 12), Tally(118, 2), ERRORS, False,
        "canary 12/120 errors (10.0%) vs stable 2/118 (1.7%), tolerated ≤ 5.0% (the limit): "
        "over the limit with 99.9% confidence [FAIL]"),
    "worse than the stable names the stable's bound": (
        Tally(2000, 80), Tally(2000, 0), ERRORS, False,
        "canary 80/2000 errors (4.0%) vs stable 0/2000 (0.0%), tolerated ≤ 2.8% (stable's bound 0.3% + 2.5%): "
        "worse than the stable with 99.9% confidence [FAIL]"),
    "inconclusive says which way it leans": (
        Tally(120, 9), Tally(118, 2), ERRORS, False,
        "canary 9/120 errors (7.5%) vs stable 2/118 (1.7%), tolerated ≤ 5.0% (the limit): "
        "undecided, leaning over the limit at 97.3% [INCONCLUSIVE]"),
    "not shown acceptable says what a pass needs": (
        Tally(280, 15), Tally(280, 5), ERRORS, True,
        "canary 15/280 errors (5.4%) vs stable 5/280 (1.8%), tolerated ≤ 5.0% (the limit): "
        "not shown acceptable in the bake (leaning acceptable at 60.2%; a pass needs 95.1%) [FAIL]"),
    "no data": (Tally(), Tally(), ERRORS, True, "no data: the canary answered no requests in the whole bake [FAIL]"),
    "latency beside errors": (
        Tally(40, 0, fast(30) + slow(10)), Tally(40, 0, fast(40)), LATENCY, False,
        "canary 0/40 errors (0.0%) vs stable 0/40 (0.0%), tolerated ≤ 5.0% (the limit): acceptable with 96.0% "
        "confidence; p95 900ms vs ≤ 500ms (stable p95 100ms), 10/40 slower (25.0%, ≤ 5% tolerated): "
        "too slow with 99.9% confidence [FAIL]"),
}


@pytest.mark.parametrize("name", SUMMARIES)
def test_summary(name):
    canary, stable, policy, final, expected = SUMMARIES[name]
    assert str(judge.decide(canary, stable, policy, final=final)) == expected


def test_confidence_is_that_of_the_deciding_check():
    # The errors check alone would say 96% (acceptable); the latency check fails at > 99.9%.
    verdict = judge.decide(Tally(40, 0, fast(30) + slow(10)), Tally(40, 0, fast(40)), LATENCY)
    assert verdict.confidence > 0.999


def test_rounds_add_up():
    rounds = [Tally.of([200, 200, 503, None], [10, 20, 30, 1000]), Tally.of([200, 204], [5, 6], expect_status=204)]
    assert sum(rounds, Tally()) == Tally(6, 3, (10, 20, 30, 1000, 5, 6))


def test_http_policy_from_a_check():
    assert judge.http_policy(0.95, 500) == judge.JudgePolicy(1 - 0.95, (1 - 0.95) / 2, 500)


def test_success_ratio_one_is_read_as_999_per_mille():
    assert judge.http_policy(1.0).max_error_rate == 0.001


def test_default_bake_gathers_enough_requests_to_pass():
    assert judge.requests_to_pass(judge.http_policy()) <= ROUNDS * REQUESTS_PER_ROUND


@pytest.mark.parametrize("bad", [dict(max_error_rate=0), dict(alpha=0.5), dict(beta=0), dict(margin=-0.01)])
def test_policy_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        judge.JudgePolicy(**bad)


def test_tally_rejects_more_errors_than_requests():
    with pytest.raises(ValueError):
        Tally(3, 4)


def binomial(n: int, p: float):
    """A Binomial(n, p) sampler by inverse CDF: one random() per draw keeps 5,000 bakes fast."""
    cdf = list(itertools.accumulate(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)))
    return lambda rng: min(bisect.bisect_left(cdf, rng.random()), n)


def aborted(rng: random.Random, canary, stable) -> bool:
    """One bake as the analysis loop runs it: judge after every round, stop at the first FAIL."""
    c = s = Tally()
    for r in range(ROUNDS):
        c += Tally(REQUESTS_PER_ROUND, canary(rng))
        s += Tally(REQUESTS_PER_ROUND, stable(rng))
        verdict = judge.decide(c, s, ERRORS, final=r == ROUNDS - 1)
        if verdict.decision is FAIL:
            return True
    return verdict.decision is not PASS


# name: (canary error rate, stable error rate, comparison, bound on the share of bakes aborted, bakes)
SIMULATIONS = {
    "canary 2% beside stable 2%": (0.02, 0.02, "<", 0.01, 5000),
    "canary 12% beside stable 2%": (0.12, 0.02, ">", 0.99, 5000),
    # The stable's bound must not turn a clean stable's luck into aborts; a bad stable excuses nothing.
    "canary 2% beside a cleaner stable 0.5%": (0.02, 0.005, "<", 0.01, 2000),
    "canary 12% beside a stable as bad": (0.12, 0.12, ">", 0.99, 2000),
}


@pytest.mark.parametrize("name", SIMULATIONS)
def test_simulated_abort_rate(name):
    canary, stable, op, bound, bakes = SIMULATIONS[name]
    rng = random.Random(name)
    draw_canary, draw_stable = binomial(REQUESTS_PER_ROUND, canary), binomial(REQUESTS_PER_ROUND, stable)
    aborts = sum(aborted(rng, draw_canary, draw_stable) for _ in range(bakes))
    rate = aborts / bakes
    print(f"{name}: {aborts}/{bakes} bakes aborted ({rate:.2%}; {ROUNDS} rounds × {REQUESTS_PER_ROUND} requests)")
    assert {"<": operator.lt, ">": operator.gt}[op](rate, bound)


def histogram(fast: int, slow: int) -> tuple[tuple[float, int], ...]:
    """A gateway's cumulative buckets: `fast` requests under 250ms, `slow` ones between 1s and 2.5s."""
    return ((250.0, fast), (1000.0, fast), (2500.0, fast + slow), (math.inf, fast + slow))


@pytest.mark.parametrize("canary, decision, words", [
    (Tally(80, 0, buckets=histogram(80, 0)), PASS, "p95 ≤ 250ms vs ≤ 500ms (stable p95 ≤ 250ms), 0/80 slower"),
    (Tally(80, 0, buckets=histogram(40, 40)), FAIL, "p95 ≤ 2500ms vs ≤ 500ms (stable p95 ≤ 250ms), 40/80 slower"),
    (Tally(10, 0, buckets=histogram(10, 0)), OPEN, "p95 not judged yet: 10 latencies"),
], ids=["fast", "slow", "too few"])
def test_latency_from_a_gateways_histogram(canary, decision, words):
    verdict = judge.decide(canary, Tally(800, 0, buckets=histogram(800, 0)), LATENCY)
    assert verdict.decision is decision and words in verdict.summary, verdict.summary


def test_histograms_add_bucket_by_bucket():
    assert Tally(2, 0, buckets=histogram(1, 1)) + Tally(3, 1, buckets=histogram(3, 0)) == \
        Tally(5, 1, buckets=histogram(4, 1))


def test_single_latencies_beside_a_histogram_go_into_its_buckets():
    mixed = Tally(40, 0, (100.0,) * 10 + (2000.0,) * 10, buckets=histogram(20, 0))
    verdict = judge.decide(mixed, Tally(), LATENCY)
    assert "10/40 slower" in verdict.summary, verdict.summary
