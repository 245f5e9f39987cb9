"""The ledger, pure: text in, text out, outcomes and the choice of a rollback target."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError, PromotionError
from pipeline.gitops.ledger import Ledger, Outcome
from pipeline.rollout.rollback import choose_target
from tests.gitops.test_overlay import release

R1, R2, R3 = (release(f"r2026112{i}-100000-aaaaaa{i}") for i in (1, 2, 3))


def ledger(*entries: tuple) -> Ledger:
    out = Ledger()
    for rel, outcome in entries:
        out = out.record(rel, outcome, "why" if outcome is Outcome.REJECTED else "", "2026-11-24T10:00:00Z")
    return out


def test_round_trip_keeps_config_values_and_outcomes():
    before = ledger((R1, Outcome.HEALTHY), (R2, Outcome.REJECTED))
    after = Ledger.parse(before.dumps())
    assert after == before and after.entries[0].release.config_data == {"MESSAGE": "hi"}
    assert before.dumps().startswith("# Written by ship")


def test_record_updates_in_place_and_keeps_config_values():
    led = ledger((R1, Outcome.PENDING)).record(R1.__class__(**{**R1.__dict__, "config_data": {}}), Outcome.HEALTHY, "",
                                               "t")
    assert [(e.release.id, e.outcome) for e in led.entries] == [(R1.id, Outcome.HEALTHY)]
    assert led.entries[0].release.config_data == {"MESSAGE": "hi"}


def test_an_override_is_kept_through_later_outcomes_and_only_written_when_there_is_one():
    note = "freeze overridden by Ann: hotfix (window 'weekend' (Fri 16:00 – Mon 08:00 Europe/Berlin))"
    led = Ledger().record(R1, Outcome.PENDING, "", "t1", note).record(R1, Outcome.HEALTHY, "", "t2")
    assert led.entries[0].override == note and Ledger.parse(led.dumps()) == led
    assert "override:" not in ledger((R2, Outcome.HEALTHY)).dumps()
    assert led.record(R1, Outcome.PENDING, "", "t3", "").entries[0].override == ""  # released again, without one


def test_an_unknown_outcome_names_the_release():
    text = ledger((R1, Outcome.HEALTHY)).dumps().replace("outcome: healthy", "outcome: fine")
    with pytest.raises(ConfigError, match=f"ledger.yaml: release {R1.id}: unknown outcome 'fine'"):
        Ledger.parse(text)


@pytest.mark.parametrize("outcome, runnable, failed", [
    (Outcome.PENDING, False, False), (Outcome.CANARY, False, False), (Outcome.HEALTHY, True, False),
    (Outcome.REJECTED, False, True), (Outcome.ROLLED_BACK, False, False), (Outcome.ROLLED_BACK_TO, True, False),
    (Outcome.ROLLBACK_FAILED, False, True),
])
def test_outcome_kinds(outcome, runnable, failed):
    assert (outcome.runnable, outcome.failed) == (runnable, failed)


def test_last_runnable_skips_rejected_and_the_current():
    led = ledger((R1, Outcome.HEALTHY), (R2, Outcome.REJECTED), (R3, Outcome.HEALTHY))
    assert led.last_runnable(excluding=R3.id).release.id == R1.id
    assert led.is_rejected(R2.id) and not led.is_rejected(R1.id)


CHOICES = [
    ("the previous healthy one", None, R1.id),
    ("an explicit healthy one", R1.id, R1.id),
]


@pytest.mark.parametrize("name, to, expected", CHOICES, ids=[c[0] for c in CHOICES])
def test_choose_target(name, to, expected):
    led = ledger((R1, Outcome.HEALTHY), (R2, Outcome.REJECTED), (R3, Outcome.HEALTHY))
    assert choose_target(led, R3, to).release.id == expected


@pytest.mark.parametrize("to, current, message", [
    ("r-unknown", R3, "release r-unknown is not in this environment's ledger"),
    (R2.id, R3, f"release {R2.id} was rejected \\(why\\)"),
    (R3.id, R3, f"release {R3.id} is already the current release"),
    (None, R1, "no earlier healthy release to roll back to"),
])
def test_choose_target_refusals(to, current, message):
    led = ledger((R1, Outcome.HEALTHY), (R2, Outcome.REJECTED), (R3, Outcome.HEALTHY))
    if current is R1:
        led = ledger((R1, Outcome.HEALTHY))
    with pytest.raises(PromotionError, match=message):
        choose_target(led, current, to)
