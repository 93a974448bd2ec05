"""The ledger's rules for partner records and redemptions, as specifications."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import rfc8785
from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite

from ledger import accounts
from ledger.entries import ENTRY_COLUMNS
from ledger.errors import InsufficientPoints, InvalidInput, OutOfStock
from ledger.hashing import keccak
from ledger.intake.rules import RECORD_COLUMNS, Quantified, prepare_records
from ledger.intake.service import OperatorSubmission, record_submission, submit_records
from ledger.leaf import credit_entry_id, decode_leaf
from ledger.redemption import redeem
from ledger.store import intake as sql
from ledger.store.models import ActivityRecord, LedgerEntry
from tests.conftest import CST, a_record


def submit(db, partner, records):
    with db.session(write_lock=True) as s:
        return submit_records(s, partner=s.merge(partner), records=records)


def points(db, citizen) -> int:
    with db.session() as s:
        return accounts.balance(s, citizen.id)


def count(db, model) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_resubmitted_record_is_credited_once(db, make_partner, make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    record = a_record(citizen.pseudonym, quantity=3200, record_id="ride-1")
    first = submit(db, partner, [record])
    again = submit(db, partner, [record, dict(record)])
    assert first.outcomes[0].status == "accepted" and first.outcomes[0].reduction_grams == 155
    assert [o.status for o in again.outcomes] == ["duplicate", "duplicate"]
    assert points(db, citizen) == 155
    assert count(db, LedgerEntry) == 1


def test_same_id_with_other_content_is_rejected_naming_record_id(db, make_partner,
                                                                  make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    submit(db, partner, [a_record(citizen.pseudonym, record_id="ride-1", quantity=1000)])
    [outcome] = submit(db, partner, [a_record(citizen.pseudonym, record_id="ride-1",
                                              quantity=9000)]).outcomes
    assert (outcome.status, outcome.field) == ("rejected", "record_id")


@pytest.mark.parametrize(("change", "field"), [
    ({"record_id": ""}, "record_id"),
    ({"citizen": "c_nobody_here"}, "citizen"),
    ({"behaviour": "SKATEBOARD"}, "behaviour"),
    ({"behaviour": "METRO"}, "behaviour"),  # a bike-share partner may not report metro rides
    ({"quantity": 0}, "quantity"),
    ({"quantity": -5}, "quantity"),
    ({"quantity": 2.5}, "quantity"),
    ({"quantity": True}, "quantity"),
    ({"quantity": 180_000}, "quantity"),  # 180 km in one ride: implausible
    ({"occurred_at": "2099-01-01T00:00:00+08:00"}, "occurred_at"),
    ({"occurred_at": "2026-01-01T08:00:00"}, "occurred_at"),  # no UTC offset
    ({"occurred_at": "2020-01-01T08:00:00+08:00"}, "occurred_at"),  # before methodology v1
    ({"colour": "green"}, "colour"),
])
def test_bad_records_are_rejected_naming_the_field_and_write_nothing(
        db, make_partner, make_citizen, change, field) -> None:
    partner, citizen = make_partner(), make_citizen()
    good = a_record(citizen.pseudonym, record_id="good")
    bad = {**a_record(citizen.pseudonym, record_id="bad"), **change}
    if "occurred_at" in change:
        bad.pop("ended_at", None)  # the time at fault is the start, not the trip's length
    result = submit(db, partner, [bad, good])
    assert (result.outcomes[0].status, result.outcomes[0].field) == ("rejected", field)
    assert result.outcomes[1].status == "accepted"
    assert count(db, ActivityRecord) == 1 and count(db, LedgerEntry) == 1


def test_daily_cap_credits_the_remainder_then_nothing(db, make_partner, make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    # all five rides in one local day, whenever the test runs: an hour ago, or, if that
    # is near local midnight, the evening before (it failed in CI at 01:13 UTC+8)
    now = datetime.now(CST)
    base = 1.0 if now.hour + now.minute / 60 >= 1.5 else now.hour + now.minute / 60 + 2.0
    rides = [a_record(citizen.pseudonym, quantity=8000, record_id=f"r{i}",
                      hours_ago=base + i / 60)
             for i in range(4)]  # 389 g each; the cycling cap is 1000 g a day
    outcomes = submit(db, partner, rides).outcomes
    assert [o.reduction_grams for o in outcomes] == [389, 389, 222, 0]
    assert [o.capped for o in outcomes] == [False, False, True, True]
    assert count(db, LedgerEntry) == 3
    later = submit(db, partner, [a_record(citizen.pseudonym, quantity=8000, record_id="r9",
                                          hours_ago=base + 4 / 60)])
    assert later.outcomes[0].reduction_grams == 0  # a later submission the same day too


def test_a_failed_transaction_writes_nothing(db, make_partner, make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    with pytest.raises(RuntimeError), db.session(write_lock=True) as s:
        submit_records(s, partner=s.merge(partner), records=[a_record(citizen.pseudonym)])
        raise RuntimeError("the process dies before commit")
    assert count(db, ActivityRecord) == 0 and count(db, LedgerEntry) == 0
    assert points(db, citizen) == 0


def test_stored_record_is_canonical_and_the_leaf_holds_no_pseudonym(db, make_partner,
                                                                     make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    record = {**a_record(citizen.pseudonym), "details": {"z": 1, "a": "单车"}}
    submit(db, partner, [record])
    with db.session() as s:
        stored = s.scalar(select(ActivityRecord))
        entry = s.scalar(select(LedgerEntry))
    assert stored.raw.encode() == rfc8785.dumps(record)
    assert stored.record_hash == keccak(rfc8785.dumps(record)) == entry.record_hash
    values = decode_leaf(entry.leaf)
    assert (values.quantity, values.reduction_grams, values.points, values.kind) == (
        entry.quantity, entry.reduction_grams, entry.points, 1)
    assert citizen.pseudonym.encode() not in entry.leaf
    assert values.account == citizen.account


def credited(db, make_partner, make_citizen, grams_rides: int = 2):
    partner, citizen = make_partner(), make_citizen()
    submit(db, partner, [a_record(citizen.pseudonym, quantity=10_000, record_id=f"r{i}",
                                  hours_ago=1 + i / 60) for i in range(grams_rides)])
    with db.session(write_lock=True) as s:
        accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=300, stock=2)
    return citizen


def do_redeem(db, citizen, key: str, reward: str = "coffee"):
    with db.session(write_lock=True) as s:
        return redeem(s, citizen=s.merge(citizen), reward_code=reward, idempotency_key=key,
                      operator_address=b"\x0a" * 20)


def test_redemption_debits_points_and_stock_once_per_key(db, make_partner, make_citizen) -> None:
    citizen = credited(db, make_partner, make_citizen)  # 2 x 487 g = 974 points
    first, replay1 = do_redeem(db, citizen, "k1")
    again, replay2 = do_redeem(db, citizen, "k1")
    assert (replay1, replay2, again.entry_id) == (False, True, first.entry_id)
    assert points(db, citizen) == 974 - 300
    with db.session() as s:
        debit = s.scalar(select(LedgerEntry).where(LedgerEntry.kind == 2))
    assert (debit.behaviour, debit.points, debit.reduction_grams) == ("REDEMPTION", 300, 0)


def test_insufficient_points_or_stock_refuse_and_write_nothing(db, make_partner,
                                                               make_citizen) -> None:
    citizen = credited(db, make_partner, make_citizen, grams_rides=1)  # 487 points
    do_redeem(db, citizen, "k1")
    with pytest.raises(InsufficientPoints):
        do_redeem(db, citizen, "k2")
    with db.session() as s:
        assert s.scalar(select(accounts.Reward.stock)) == 1  # the failed try took no stock
    with db.session(write_lock=True) as s:
        accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=1, stock=0)
    with pytest.raises(OutOfStock):
        do_redeem(db, citizen, "k3")
    assert points(db, citizen) == 187
    with pytest.raises(InvalidInput):
        do_redeem(db, citizen, "")


def test_records_prepared_for_a_partner_that_changed_are_assessed_again(db, make_partner,
                                                                        make_citizen) -> None:
    """Records are assessed before the write lock; if the partner's kind or key changed in
    between, the ledger decides them for the partner as it is when they are written."""
    partner, citizen = make_partner(kind="bike_share"), make_citizen()
    records = [a_record(citizen.pseudonym, behaviour="METRO", quantity=8000, record_id="m-1"),
               a_record(citizen.pseudonym, quantity=3200, record_id="b-1")]
    stale = prepare_records(records, kind="maas", address=b"\x11" * 20, now=int(time.time()))
    assert all(isinstance(q, Quantified) for _, _, q in stale.good)  # as a MaaS partner's
    with db.session(write_lock=True) as s:
        metro, bike = record_submission(s, OperatorSubmission(stale, int(time.time())),
                                        partner=s.merge(partner)).outcomes
    assert (metro.status, metro.field) == ("rejected", "behaviour")
    assert bike.status == "accepted"
    assert bike.entry_id == "0x" + credit_entry_id(partner.signing_address, "b-1").hex()


def test_bulk_rows_are_built_in_the_order_sqlite_binds_them() -> None:
    """The hot path hands its row tuples to the driver as they are when the compiled
    statement binds the columns in that order (no per-row reordering)."""
    dialect = sqlite.dialect()
    for statement, columns in ((sql._INSERT_RECORDS, RECORD_COLUMNS),
                               (sql._INSERT_ENTRIES, ENTRY_COLUMNS),
                               (sql._ADD_POINTS, ("add", "cid"))):
        compiled = sql._compiled(statement, dialect, tuple(columns))
        assert tuple(compiled.positiontup) == tuple(columns)
        assert sql._compiled(statement, dialect, tuple(columns)) is compiled
