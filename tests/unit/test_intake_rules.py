"""Intake's rules as specifications, over hand-built snapshots: no database, milliseconds.

The same rules run against real databases in tests/test_ledger_rules.py and
tests/test_methodology_rules.py; here each one is pinned down on its own. Times are fixed
(methodology v2 is in force), so every figure below is the same on every run.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from ledger.errors import InvalidInput
from ledger.intake.rules import (
    MAX_RECORDS_PER_SUBMISSION,
    RECORD_COLUMNS,
    Decision,
    Neighbour,
    Quantified,
    Snapshot,
    decide,
    prepare_records,
)
from ledger.leaf import KIND_CREDIT, credit_entry_id
from ledger.methodology import methodology_in_force, submission_window
from ledger.records import parse_record, rebuilt_record

CST = timezone(timedelta(hours=8))
NOW = int(datetime(2026, 3, 10, 20, 0, tzinfo=CST).timestamp())
RULES = methodology_in_force(NOW)  # v2: cycling 1000 g a day, 20,000 g a month, 30 km/h,
CYCLING = RULES.behaviour("CYCLING")  # 6 rides an hour, reports within 120 s are one ride
BIKES, MAAS = 1, 2  # partner ids
ADDRESS = b"\x11" * 20  # the bike-share partner's signing address
ANN, BO = (1, b"\xa1" * 32), (2, b"\xb2" * 32)  # citizen id and account
CITIZENS = {"c_ann": ANN, "c_bo": BO}


def ride(record_id: str, *, citizen: str = "c_ann", metres: int = 3200, minutes_ago: int = 120,
         minutes: int = 20) -> dict:
    start = NOW - minutes_ago * 60
    return {"record_id": record_id, "citizen": citizen, "behaviour": "CYCLING",
            "quantity": metres, "occurred_at": start, "ended_at": start + minutes * 60}


def short_ride(record_id: str, *, minutes_ago: int) -> dict:
    """A kilometre in four minutes: six of them fit in an hour."""
    return ride(record_id, metres=1000, minutes_ago=minutes_ago, minutes=4)


def decided(records: list[dict], snapshot: Snapshot | None = None, *, partner_id: int = BIKES,
            kind: str = "bike_share", window: bool = False) -> Decision:
    prepared = prepare_records(records, kind=kind, address=ADDRESS, now=NOW,
                               window=submission_window(NOW) if window else None)
    return decide(snapshot if snapshot is not None else Snapshot(citizens=CITIZENS), prepared,
                  partner_id=partner_id, now=NOW, submission_id=b"\x5b")


def statuses(decision: Decision) -> list[tuple[str, str | None]]:
    return [(o.status, o.field) for o in decision.outcomes]


def neighbour(row_id: int, record: dict, *, partner_id: int = MAAS,
              duplicate: bool = False) -> Neighbour:
    return Neighbour(row_id, partner_id, record["occurred_at"], record["ended_at"],
                     parse_record(record, now=NOW).record_hash, duplicate)


def day_of(record: dict) -> int:
    return RULES.local_day(record["occurred_at"])


# Duplicates of one partner's own records


def test_a_record_id_received_before_is_a_duplicate_if_the_content_is_the_same() -> None:
    first = ride("r1")
    known = {"r1": parse_record(first, now=NOW).record_hash}
    decision = decided([first, {**ride("r1"), "quantity": 9000}],
                       Snapshot(known=known, citizens=CITIZENS))
    assert statuses(decision) == [("duplicate", None), ("rejected", "record_id")]
    assert decision.outcomes[0].reason == "already received; credited once"
    assert decision.records == decision.credits == [] and decision.points == {}


def test_a_record_sent_twice_in_one_submission_is_credited_once() -> None:
    decision = decided([ride("r1"), ride("r1")])
    assert statuses(decision) == [("accepted", None), ("duplicate", None)]
    assert len(decision.records) == len(decision.credits) == 1


def test_the_same_record_id_from_another_partner_is_another_record() -> None:
    """Record ids are the partner's own: the snapshot holds only this partner's."""
    decision = decided([ride("r1")], Snapshot(known={}, citizens=CITIZENS), partner_id=MAAS,
                       kind="maas")
    assert statuses(decision) == [("accepted", None)]


# Citizens


def test_an_unknown_or_erased_citizen_is_rejected_naming_citizen() -> None:
    decision = decided([ride("r1", citizen="c_gone")])
    assert statuses(decision) == [("rejected", "citizen")]
    assert decision.outcomes[0].reason == "unknown citizen" and decision.records == []


# A credit and what it writes


def test_a_credit_writes_its_record_its_entry_and_the_points() -> None:
    record = ride("r1", metres=8000)
    [outcome] = (decision := decided([record])).outcomes
    grams = CYCLING.reduction_grams(8000)
    entry_id = credit_entry_id(ADDRESS, "r1")
    assert (outcome.status, outcome.reduction_grams, outcome.points, outcome.capped) == (
        "accepted", grams, RULES.points(grams), False)
    assert outcome.entry_id == "0x" + entry_id.hex()
    [row] = decision.records
    assert dict(zip(RECORD_COLUMNS, row, strict=True)) == {
        "partner_id": BIKES, "partner_record_id": "r1", "citizen_id": ANN[0],
        "behaviour": "CYCLING", "quantity": 8000, "occurred_at": record["occurred_at"],
        "ended_at": record["ended_at"], "raw": None,  # it is its columns: no text kept
        "record_hash": outcome.record_hash, "status": "credited", "duplicate_of": None,
        "entry_id": entry_id, "submission_id": b"\x5b", "received_at": NOW}
    assert rebuilt_record("r1", record["citizen"], "CYCLING", 8000, record["occurred_at"],
                          record["ended_at"]) == parse_record(record, now=NOW).canonical
    assert decision.credits == [(entry_id, ANN[0], ANN[1], KIND_CREDIT, "CYCLING", 8000, grams,
                                 RULES.points(grams), RULES.version, record["occurred_at"],
                                 outcome.record_hash, ADDRESS)]
    assert decision.points == {ANN[0]: RULES.points(grams)}
    assert decision.days == {(ANN[0], "CYCLING", day_of(record)): grams}


# Caps


def test_the_daily_cap_credits_the_remainder_then_nothing() -> None:
    rides = [ride(f"r{i}", metres=8000, minutes_ago=120 + 30 * i) for i in range(4)]
    grams = CYCLING.reduction_grams(8000)  # 389 g: the third ride meets the 1000 g cap
    decision = decided(rides)
    assert [o.reduction_grams for o in decision.outcomes] == [grams, grams, 1000 - 2 * grams, 0]
    assert [o.capped for o in decision.outcomes] == [False, False, True, True]
    assert decision.outcomes[3].reason == "daily or monthly cap reached: nothing credited"
    assert [dict(zip(RECORD_COLUMNS, r, strict=True))["status"] for r in decision.records] == [
        "credited", "credited", "credited", "capped"]
    assert len(decision.credits) == 3


def test_the_daily_cap_counts_what_earlier_submissions_credited() -> None:
    record = ride("r1", metres=8000)
    key = (ANN[0], "CYCLING", day_of(record))
    snapshot = Snapshot(citizens=CITIZENS, days={key: 900})
    [outcome] = decided([record], snapshot).outcomes
    assert (outcome.reduction_grams, outcome.capped) == (100, True)
    other_day = Snapshot(citizens=CITIZENS, days={(ANN[0], "CYCLING", day_of(record) - 1): 1000})
    assert decided([record], other_day).outcomes[0].reduction_grams == CYCLING.reduction_grams(8000)


def test_the_monthly_cap_counts_what_earlier_submissions_credited() -> None:
    record = ride("r1", metres=8000)
    month = (ANN[0], "CYCLING", RULES.local_month(record["occurred_at"]))
    assert CYCLING.monthly_cap_grams == 20_000
    snapshot = Snapshot(citizens=CITIZENS, months={month: 19_950})
    decision = decided([record], snapshot)
    assert (decision.outcomes[0].reduction_grams, decision.outcomes[0].capped) == (50, True)
    assert decision.months[month] == 20_000


def test_caps_count_per_citizen() -> None:
    record = ride("r1", metres=8000)
    full = Snapshot(citizens=CITIZENS, days={(ANN[0], "CYCLING", day_of(record)): 1000})
    decision = decided([record, ride("r2", citizen="c_bo", metres=8000)], full)
    assert [o.reduction_grams for o in decision.outcomes] == [0, CYCLING.reduction_grams(8000)]


# Plausibility, on the record alone


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"quantity": 50_001}, "quantity", "implausible: above 50000 m per record"),
    ({"ended_at": None}, "ended_at", "required for CYCLING: the trip's end time"),
    ({"quantity": 20_000, "minutes": 10}, "quantity", "implausible: 120.0 km/h on average"),
    ({"behaviour": "METRO"}, "behaviour", "a bike_share partner may not report METRO"),
    ({"behaviour": "SKATEBOARD"}, "behaviour", "unknown behaviour 'SKATEBOARD'"),
])
def test_an_implausible_or_unreportable_record_is_rejected_naming_the_field(
        change: dict, field: str, reason: str) -> None:
    record = ride("bad", minutes=change.pop("minutes", 20))
    for name, value in change.items():
        if value is None:
            record.pop(name)
        else:
            record[name] = value
    decision = decided([record, ride("good")])
    assert statuses(decision) == [("rejected", field), ("accepted", None)]
    assert decision.outcomes[0].reason.startswith(reason)
    assert len(decision.records) == 1


def test_a_record_is_assessed_again_for_a_partner_whose_kind_changed() -> None:
    metro = {**ride("m1"), "behaviour": "METRO"}
    stale = prepare_records([metro], kind="maas", address=b"\x22" * 20, now=NOW)
    assert isinstance(stale.good[0][2], Quantified)
    now_bikes = stale.for_partner("bike_share", ADDRESS)
    assert now_bikes.good[0][2] == ("behaviour", "a bike_share partner may not report METRO")
    assert stale.for_partner("maas", b"\x22" * 20) is stale


# The same behaviour reported by another partner


def test_a_ride_another_partner_reported_is_a_duplicate_pointing_to_the_first_report() -> None:
    theirs = ride("theirs", minutes_ago=121)  # a minute apart: the same ride
    snapshot = Snapshot(citizens=CITIZENS,
                        neighbours={(ANN[0], "CYCLING"): [neighbour(7, theirs)]})
    decision = decided([ride("ours")], snapshot)
    [outcome] = decision.outcomes
    assert (outcome.status, outcome.field, outcome.reduction_grams) == ("duplicate",
                                                                        "occurred_at", 0)
    assert outcome.duplicate_of == "0x" + neighbour(7, theirs).record_hash.hex()
    row = dict(zip(RECORD_COLUMNS, decision.records[0], strict=True))
    assert (row["status"], row["duplicate_of"], row["entry_id"]) == ("duplicate", 7, None)
    assert decision.credits == [] and decision.points == {}


def test_a_report_absorbs_one_report_of_each_other_partner_at_most() -> None:
    theirs = ride("theirs")
    snapshot = Snapshot(citizens=CITIZENS,
                        neighbours={(ANN[0], "CYCLING"): [neighbour(7, theirs)]})
    decision = decided([ride("ours-1"), ride("ours-2", minutes_ago=119)], snapshot)
    assert statuses(decision) == [("duplicate", "occurred_at"), ("accepted", None)]
    already = Snapshot(citizens=CITIZENS, matched={7: {BIKES}},
                       neighbours={(ANN[0], "CYCLING"): [neighbour(7, theirs)]})
    assert statuses(decided([ride("ours-3")], already)) == [("accepted", None)]


@pytest.mark.parametrize(("theirs", "why"), [
    ({"partner_id": BIKES}, "the same partner's other ride is another ride"),
    ({"duplicate": True}, "a duplicate credited nothing, so nothing to point to"),
    ({"minutes_ago": 150}, "ended more than twice the window before ours began"),
])
def test_a_report_that_is_not_the_same_ride_is_credited(theirs: dict, why: str) -> None:
    record = ride("theirs", minutes_ago=theirs.pop("minutes_ago", 120))
    snapshot = Snapshot(citizens=CITIZENS,
                        neighbours={(ANN[0], "CYCLING"): [neighbour(7, record, **theirs)]})
    assert statuses(decided([ride("ours")], snapshot)) == [("accepted", None)], why


def test_records_of_this_submission_are_never_duplicates_of_each_other_across_partners() -> None:
    """Only a stored report wins: within one submission every record is the partner's."""
    decision = decided([ride("a"), ride("b", minutes_ago=119)])
    assert statuses(decision) == [("accepted", None), ("accepted", None)]


# Rates


def test_more_rides_in_an_hour_than_the_methodology_allows_are_rejected() -> None:
    assert CYCLING.max_records_per_hour == 6
    earlier = [neighbour(i, short_ride(f"e{i}", minutes_ago=180 + 5 * i), partner_id=BIKES)
               for i in range(5)]
    snapshot = Snapshot(citizens=CITIZENS, neighbours={(ANN[0], "CYCLING"): earlier})
    decision = decided([short_ride("sixth", minutes_ago=150),
                        short_ride("seventh", minutes_ago=145),
                        short_ride("later", minutes_ago=60)], snapshot)
    assert statuses(decision) == [("accepted", None), ("rejected", "occurred_at"),
                                  ("accepted", None)]
    assert decision.outcomes[1].reason == ("implausible: more than 6 CYCLING records for this "
                                           "citizen within an hour")


def test_a_duplicate_does_not_count_toward_the_hourly_rate() -> None:
    def six_earlier(*, first_is_duplicate: bool) -> Snapshot:
        earlier = [neighbour(i, short_ride(f"e{i}", minutes_ago=180 + 5 * i), partner_id=BIKES,
                             duplicate=first_is_duplicate and i == 0) for i in range(6)]
        return Snapshot(citizens=CITIZENS, neighbours={(ANN[0], "CYCLING"): earlier})

    def next_ride(snapshot: Snapshot) -> list[tuple[str, str | None]]:
        return statuses(decided([short_ride("next", minutes_ago=150)], snapshot))

    assert next_ride(six_earlier(first_is_duplicate=False)) == [("rejected", "occurred_at")]
    assert next_ride(six_earlier(first_is_duplicate=True)) == [("accepted", None)]


# The submission window


def test_a_record_older_than_the_submission_window_is_rejected_naming_occurred_at() -> None:
    days = submission_window(NOW).days
    old = ride("old", minutes_ago=(days + 1) * 24 * 60)
    recent = ride("recent", minutes_ago=(days - 1) * 24 * 60)
    decision = decided([old, recent], window=True)
    assert statuses(decision) == [("rejected", "occurred_at"), ("accepted", None)]
    assert decision.outcomes[0].reason.startswith(f"more than {days} days before it was received")
    assert statuses(decided([old])) == [("accepted", None)]  # no window: the operator's choice


def test_a_malformed_record_is_rejected_naming_its_field_and_keeps_its_place() -> None:
    decision = decided([ride("ok-1"), {"record_id": "x", "quantity": 0}, "not an object",
                        ride("ok-2", minutes_ago=100)])
    assert statuses(decision) == [("accepted", None), ("rejected", "quantity"),
                                  ("rejected", "record"), ("accepted", None)]
    assert [o.index for o in decision.outcomes] == [0, 1, 2, 3]
    assert decision.outcomes[1].record_id == "x"


def test_a_submission_holds_at_most_the_maximum_of_records() -> None:
    with pytest.raises(InvalidInput) as refused:
        prepare_records([{}] * (MAX_RECORDS_PER_SUBMISSION + 1), kind="bike_share",
                        address=ADDRESS, now=NOW)
    assert refused.value.field == "records"


# The rules themselves


def test_deciding_leaves_the_snapshot_as_it_was() -> None:
    record = ride("r1", metres=8000)
    snapshot = Snapshot(
        known={"old": b"\x01" * 32}, citizens=CITIZENS, matched={7: {MAAS}},
        days={(ANN[0], "CYCLING", day_of(record)): 100},
        months={(ANN[0], "CYCLING", RULES.local_month(record["occurred_at"])): 100},
        neighbours={(ANN[0], "CYCLING"): [neighbour(7, ride("theirs", minutes_ago=300))]})
    before = copy.deepcopy(snapshot)
    first = decided([record, ride("r2", minutes_ago=60)], snapshot)
    assert snapshot == before
    again = decided([record, ride("r2", minutes_ago=60)], snapshot)
    assert (again.outcomes, again.records, again.credits) == (first.outcomes, first.records,
                                                              first.credits)


def test_the_rules_load_without_sqlalchemy() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, ledger.intake.rules; print(sorted(m for m in "
         "sys.modules if m.split('.')[0] == 'sqlalchemy'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
