"""A raw record that is exactly its columns is stored without its text (#19) and rebuilt
by its readers; the audit holds it to the sealed recordHash as before, so a changed column
is found; migration 0017 drops and restores the texts, on both backends."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from ledger import accounts
from ledger.audit import audit_batch
from ledger.entries import ENTRY_COLUMNS, entry_row
from ledger.hashing import keccak
from ledger.intake.service import submit_records
from ledger.records import MAX_DURATION_SECONDS, parse_record, rebuilt_record
from ledger.store.models import ActivityRecord, Citizen, LedgerEntry
from tests.test_migrations import run_alembic

_printable = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S")),
                     min_size=1, max_size=20).filter(str.strip)


@given(_printable, _printable, st.integers(1, 2**53 - 1), st.integers(1, 2**40),
       st.one_of(st.none(), st.integers(0, MAX_DURATION_SECONDS)))
def test_a_plain_record_is_its_columns_rebuilt(record_id: str, citizen: str, quantity: int,
                                              at: int, duration: int | None) -> None:
    record = {"record_id": record_id, "citizen": citizen, "behaviour": "CYCLING",
              "quantity": quantity, "occurred_at": at}
    if duration is not None:
        record["ended_at"] = at + duration
    parsed = parse_record(record, now=2**62)
    assert rebuilt_record(parsed.record_id, parsed.citizen, parsed.behaviour, parsed.quantity,
                          parsed.occurred_at, parsed.ended_at) == parsed.canonical


def _records(db, partner, citizen, *extra: dict) -> list[str]:  # type: ignore[no-untyped-def]
    """Submit a plain record and ``extra`` ones; their stored texts, in order."""
    now = int(time.time())
    plain = {"record_id": "plain-1", "citizen": citizen.pseudonym, "behaviour": "CYCLING",
             "quantity": 3000, "occurred_at": now - 7200, "ended_at": now - 6000}
    with db.session(write_lock=True) as s:
        outcomes = submit_records(s, partner=s.merge(partner), records=[plain, *extra]).outcomes
    assert all(o.entry_id for o in outcomes), outcomes
    with db.session() as s:
        return list(s.scalars(select(ActivityRecord.raw).order_by(ActivityRecord.id)))


def test_only_a_record_that_is_its_columns_loses_its_text(db, make_partner, make_citizen,
                                                         sealer) -> None:
    partner, citizen = make_partner(), make_citizen()
    now = int(time.time())
    detailed = {"record_id": "detailed-1", "citizen": citizen.pseudonym, "behaviour": "CYCLING",
                "quantity": 2000, "occurred_at": now - 3 * 3600, "ended_at": now - 3 * 3600 + 900,
                "details": {"bike": "B-17"}}
    rfc3339 = {"record_id": "rfc-1", "citizen": citizen.pseudonym, "behaviour": "CYCLING",
               "quantity": 1500, "occurred_at": time.strftime(
                   "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 4 * 3600)),
               "ended_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 4 * 3600 + 900))}
    raws = _records(db, partner, citizen, detailed, rfc3339)
    assert raws[0] is None
    assert raws[1] is not None and '"details"' in raws[1]
    assert raws[2] is not None and "T" in raws[2]
    [batch] = sealer.seal()
    with db.session() as s:
        report = audit_batch(s, batch.id)
    assert report.ok and report.credits == 3, report.problems


def test_a_changed_column_of_a_rebuilt_record_is_found(db, make_partner, make_citizen,
                                                      sealer) -> None:
    """No text to compare with does not hide a change: the rebuilt record no longer hashes
    to the sealed recordHash."""
    partner, citizen = make_partner(), make_citizen()
    assert _records(db, partner, citizen) == [None]
    [batch] = sealer.seal()
    with db.session() as s:
        s.execute(update(ActivityRecord).values(quantity=ActivityRecord.quantity + 1))
    with db.session() as s:
        problems = audit_batch(s, batch.id).problems
    assert len(problems) == 1 and problems[0].endswith(
        "the raw record does not hash to the sealed recordHash"), problems


def test_a_rebuilt_record_unlike_its_entry_is_found(db, make_partner, make_citizen,
                                                   sealer) -> None:
    """The audit takes a rebuilt record's behaviour, quantity and time from the columns it
    was rebuilt from, not from parsing it again: a record changed together with its
    entry's recordHash and leaf (so the hash holds) is still named, as a stored text is."""
    partner, citizen = make_partner(), make_citizen()
    assert _records(db, partner, citizen) == [None]
    [batch] = sealer.seal()
    with db.session() as s:
        record = s.scalar(select(ActivityRecord))
        entry = s.scalar(select(LedgerEntry).where(LedgerEntry.entry_id == record.entry_id))
        record.quantity += 1
        rehashed = keccak(rebuilt_record(record.partner_record_id, citizen.pseudonym,
                                         record.behaviour, record.quantity,
                                         record.occurred_at, record.ended_at))
        values = {name: getattr(entry, name) for name in ENTRY_COLUMNS if name != "leaf"}
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == entry.seq).values(
            leaf=entry_row(**values, entry_id=entry.entry_id, quantity=entry.quantity,
                           methodology=entry.methodology, account=entry.leaf[32:64],
                           record_hash=rehashed, partner_address=entry.partner_address)["leaf"]))
    with db.session() as s:
        problems = audit_batch(s, batch.id).problems
    assert problems[0].endswith("the raw record's behaviour, quantity or time differ from "
                                "the entry"), problems
    assert [p.split(" 0x")[0] for p in problems[1:]] == ["the leaves give root",
                                                         "the leaves give content hash"]


def test_an_erased_citizens_records_keep_no_rebuildable_text(db, make_partner, make_citizen,
                                                            sealer) -> None:
    partner, citizen = make_partner(), make_citizen()
    assert _records(db, partner, citizen) == [None]
    with db.session(write_lock=True) as s:
        accounts.erase_citizen(s, s.get_one(Citizen, citizen.id))
    with db.session() as s:
        assert list(s.scalars(select(ActivityRecord.raw))) == ['{"erased":true}']


def test_the_migration_drops_the_texts_it_can_rebuild_and_restores_them(
        db, make_partner, make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    now = int(time.time())
    detailed = {"record_id": "d-1", "citizen": citizen.pseudonym, "behaviour": "CYCLING",
                "quantity": 2000, "occurred_at": now - 3 * 3600,
                "ended_at": now - 3 * 3600 + 900, "details": {"k": 1}}
    assert [raw is None for raw in _records(db, partner, citizen, detailed)] == [True, False]
    with db.session() as s:
        before = list(s.scalars(select(ActivityRecord.raw).order_by(ActivityRecord.id)))
    run_alembic(db.engine, "downgrade", "0016")
    with db.session() as s:
        restored = list(s.scalars(text("SELECT raw FROM activity_records ORDER BY id")))
    assert restored[1] == before[1]
    assert restored[0] == rebuilt_record("plain-1", citizen.pseudonym, "CYCLING", 3000,
                                         now - 7200, now - 6000).decode()
    run_alembic(db.engine, "upgrade", "head")
    with db.session() as s:
        assert list(s.scalars(select(ActivityRecord.raw).order_by(ActivityRecord.id))) == before
