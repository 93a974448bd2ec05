"""The audit's quick re-reading of a plain raw record says what ``parse_record`` says: any
record it accepts, ``parse_record`` accepts with the same behaviour, quantity and time,
so skipping the canonical form and its hash weakens no check; and the records intake
writes take the quick way."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.records import MAX_DURATION_SECONDS, parse_record, plain_record

MANY = settings(max_examples=3000, deadline=None)

# Text near each rule's edges: blank, non-printable, long, lone surrogates, RFC 3339 times
# with and without an offset.
TEXT = st.one_of(
    st.text(max_size=140), st.sampled_from(["", " ", "\t", "a\x00", "\ud800", "x" * 33,
                                            "x" * 65, "x" * 129, "CYCLING", "c_1"]),
    st.sampled_from(["2026-11-30T08:00:00+08:00", "2026-11-30T08:00:00", "2026-11-30",
                     "2026-11-30T08:00:00Z", "not a time", "9999-12-31T23:59:59+00:00",
                     "0001-01-01T00:00:00+00:00"]))
SAFE = 2**53 - 1
INTS = st.one_of(st.integers(-5, 5), st.integers(1, 2**40),
                 st.sampled_from([SAFE - 1, SAFE, SAFE + 1, 2**62, 2**62 + 301, 2**63, 2**64]))
TIMES = st.one_of(INTS, TEXT, st.none(), st.booleans(), st.floats(allow_nan=False))
VALUES = st.one_of(TEXT, INTS, st.none(), st.booleans(), st.floats(allow_nan=False),
                   st.lists(st.integers(), max_size=2), st.dictionaries(TEXT, INTS, max_size=2))
# Each member mostly well formed, so that records near the quick reading's edges are many.
NAMES = st.one_of(st.sampled_from(["r-1", "c_7884d4ec3e3560a99805da38", "CYCLING"]), TEXT)
RECORDS = st.fixed_dictionaries(
    {"record_id": st.one_of(NAMES, VALUES), "citizen": st.one_of(NAMES, VALUES),
     "behaviour": st.one_of(st.sampled_from(["CYCLING", "METRO"]), TEXT, VALUES),
     "quantity": st.one_of(INTS, VALUES), "occurred_at": TIMES},
    optional={"ended_at": TIMES, "details": VALUES, "extra": VALUES})


def parsed(value: Any) -> tuple[str, int, int] | None:
    try:
        record = parse_record(value, now=2**62)  # the audit's own call
    except (InvalidInput, ValueError):
        return None
    return record.behaviour, record.quantity, record.occurred_at


def stored(value: Any) -> Any:
    """What the audit reads back from a stored record (JSON, through orjson)."""
    return orjson.loads(orjson.dumps(value))


@MANY
@given(RECORDS, st.integers(-2, MAX_DURATION_SECONDS + 2))
@example({"record_id": "r", "citizen": "c", "behaviour": "CYCLING", "quantity": SAFE + 1,
          "occurred_at": 1}, 0)
@example({"record_id": "r", "citizen": "c", "behaviour": "CYCLING", "quantity": 1,
          "occurred_at": SAFE + 1}, 0)
@example({"record_id": "r", "citizen": "c", "behaviour": "CYCLING", "quantity": 1,
          "occurred_at": 0}, -1)
@example({"record_id": "r", "citizen": "c", "behaviour": "CYCLING", "quantity": 1,
          "occurred_at": SAFE - 1}, 2)
@example({"record_id": "r", "citizen": "c", "behaviour": "CYCLING", "quantity": 1,
          "occurred_at": -1}, 0)
def test_what_the_quick_reading_accepts_parse_record_accepts_alike(record, gap) -> None:
    if type(record.get("occurred_at")) is int and "ended_at" not in record and gap >= 0:
        record = {**record, "ended_at": record["occurred_at"] + gap}  # often near the edge
    try:
        value = stored(record)
    except (orjson.JSONEncodeError, TypeError):
        return  # not JSON: no stored record is
    quick = plain_record(value)
    if quick is not None:
        assert quick == parsed(value), value


def test_records_as_intake_writes_them_take_the_quick_way() -> None:
    base = {"record_id": "bench-1", "citizen": "c_7884d4ec3e3560a99805da38",
            "behaviour": "CYCLING", "quantity": 500}
    for times in ({"occurred_at": 1_794_773_803, "ended_at": 1_794_773_928},
                  {"occurred_at": 1_794_773_803},
                  {"occurred_at": "2026-11-30T08:00:00+08:00",
                   "ended_at": "2026-11-30T08:10:00+08:00"}):
        value = stored({**base, **times})
        assert plain_record(value) == parsed(value) is not None


def test_what_the_quick_reading_refuses_is_left_to_parse_record() -> None:
    """Each rule of ``parse_record`` broken once, with and without an end time, and a
    record with details: the quick reading takes none of them."""
    with_end = {"record_id": "r-1", "citizen": "c_1", "behaviour": "CYCLING",
                "quantity": 500, "occurred_at": 1_794_773_803, "ended_at": 1_794_773_928}
    without_end = {k: v for k, v in with_end.items() if k != "ended_at"}
    for good in (with_end, without_end):
        assert plain_record(good) is not None
        refused_alike(good)


def refused_alike(good: dict[str, Any]) -> None:
    for change in ({"quantity": 0}, {"quantity": -1}, {"quantity": True}, {"quantity": 1.5},
                   {"quantity": SAFE + 1}, {"occurred_at": 0}, {"occurred_at": -1},
                   {"occurred_at": "2026-11-30"},
                   {"occurred_at": SAFE + 1}, {"ended_at": 1_794_773_802},
                   {"ended_at": 1_794_773_803 + MAX_DURATION_SECONDS + 1},
                   {"ended_at": None}, {"record_id": ""}, {"record_id": "x" * 129},
                   {"citizen": " "}, {"citizen": "a\x07"}, {"behaviour": "x" * 33},
                   {"behaviour": 7}, {"details": {}}, {"unknown": 1}):
        assert plain_record({**good, **change}) is None, change
    for name in ("record_id", "citizen", "behaviour", "quantity", "occurred_at"):
        assert plain_record({k: v for k, v in good.items() if k != name}) is None, name
