"""Entries found by id: through the locator once sealed, in the unsealed tail before, on
both backends; an id held twice stops sealing; the audit and the migration keep the
locator whole."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, inspect, select, text, update

from ledger.audit import audit_batch
from ledger.entries import find_entry, get_entry, sealed_through
from ledger.errors import LedgerError, NotFound
from ledger.intake.service import submit_records
from ledger.listings import citizen_ledger
from ledger.proofs import entry_proof
from ledger.sealing import locate
from ledger.store.database import Database
from ledger.store.models import ENTRY_KEY_BYTES, Batch, EntryLocator, LedgerEntry
from tests.conftest import a_record
from tests.test_migrations import run_alembic


@pytest.fixture
def credit(db: Database, make_partner, make_citizen):
    partner, citizen = make_partner(), make_citizen()
    made = iter(range(10**6))

    def add(n: int) -> list[bytes]:
        records = [a_record(citizen.pseudonym, quantity=1000, record_id=f"r{k}",
                            hours_ago=1 + k) for k in [next(made) for _ in range(n)]]
        with db.session(write_lock=True) as s:
            outcomes = submit_records(s, partner=s.merge(partner), records=records).outcomes
        assert [o.status for o in outcomes] == ["accepted"] * n
        return [bytes.fromhex(o.entry_id[2:]) for o in outcomes if o.entry_id]
    return add


def located(db: Database) -> dict[bytes, tuple[int, int]]:
    """Each located entry's whole id: its seq and batch. At head the locator holds the
    id's first bytes, and the entry its row leads to holds the rest; before 0019 the
    whole id."""
    narrow = "entry_key" in {c["name"] for c in inspect(db.engine).get_columns("entry_locator")}
    with db.session() as s:
        if not narrow:
            return {bytes(e): (seq, b) for e, seq, b in s.execute(text(
                "SELECT entry_id, seq, batch_id FROM entry_locator"))}
        rows = s.execute(text("SELECT l.entry_key, substr(e.leaf, 1, 32), l.seq, l.batch_id "
                              "FROM entry_locator AS l JOIN ledger_entries AS e "
                              "ON e.seq = l.seq"))  # an entry's id: its leaf's first 32 bytes
        found = {}
        for key, entry_id, seq, b in rows:
            assert bytes(entry_id)[:ENTRY_KEY_BYTES] == bytes(key)
            found[bytes(entry_id)] = (seq, b)
        return found


def seqs(db: Database, ids: list[bytes]) -> list[int]:
    with db.session() as s:
        return [get_entry(s, i).seq for i in ids]


def test_an_entry_is_found_by_id_unsealed_and_sealed(db, sealer, credit) -> None:
    first = credit(3)
    with db.session() as s:
        assert all(entry_proof(s, i).pending == f"entry 0x{i.hex()} is not sealed yet"
                   for i in first)
    assert seqs(db, first) == [1, 2, 3] and located(db) == {}
    [batch] = sealer.seal()
    later = credit(2)  # the tail: above the batch, not in the locator
    assert located(db) == {i: (seq, batch.id) for i, seq in zip(first, [1, 2, 3], strict=True)}
    with db.session() as s:
        assert all(entry_proof(s, i).bundle["batchId"] == batch.id for i in first)
        assert all(entry_proof(s, i).bundle is None for i in later)
        assert [get_entry(s, i).entry_id for i in first + later] == first + later
        with pytest.raises(NotFound, match="no entry 0x00"):
            get_entry(s, bytes(32))
        with pytest.raises(NotFound, match="no entry 0x00"):
            entry_proof(s, bytes(32))


def test_the_lookup_reads_the_sealed_bound_itself(db, sealer, credit) -> None:
    """One statement finds an entry on either side of the last seal: the bound is read in
    it, not bound by the caller (one round trip, one snapshot)."""
    [entry_id] = credit(1)
    query = find_entry([LedgerEntry.seq], [Batch.id])
    with db.session() as s:
        assert s.execute(query, {"entry_id": entry_id}).one() == (1, None)
    sealer.seal()
    [later] = credit(1)
    with db.session() as s:
        assert s.execute(query, {"entry_id": entry_id}).one() == (1, 1)
        assert s.execute(query, {"entry_id": later}).one() == (2, None)
        assert s.execute(query, {"entry_id": bytes(32)}).first() is None
        assert sealed_through(s) == 1


def test_a_proof_read_opens_no_transaction_on_postgresql(db, sealer, credit) -> None:
    """``Database.reads()`` (the proof service's connections) sends no BEGIN or ROLLBACK on
    PostgreSQL; on SQLite it is a read transaction, like a ``snapshot`` session."""
    [entry_id] = credit(1)
    sealer.seal()
    db = Database(db.url, pool_size=1, max_overflow=0)  # one connection: the same one twice
    with db.reads() as conn:
        assert entry_proof(conn, entry_id).bundle["batchId"] == 1
        driver = conn.connection.driver_connection
        if db.is_sqlite:
            assert driver.in_transaction
        else:
            assert driver.autocommit is True
            assert driver.info.transaction_status.name == "IDLE"
    with db.session(snapshot=True) as s:  # and the connection went back as it was
        s.scalar(select(func.count()).select_from(LedgerEntry))
        driver = s.connection().connection.driver_connection
        if not db.is_sqlite:
            assert driver.autocommit is False
            assert driver.info.transaction_status.name == "INTRANS"
    db.engine.dispose()


def _copy_entry(db: Database, entry_id: bytes) -> None:
    """A second entry with an existing id: what the ledger never makes itself."""
    columns = [c for c in LedgerEntry.__table__.columns if c.key != "seq"]
    with db.session(write_lock=True) as s:
        s.execute(insert(LedgerEntry).from_select(
            [c.key for c in columns],
            select(*columns).where(LedgerEntry.entry_id == entry_id)))


@pytest.mark.parametrize("where", ["in the same batch", "in an earlier batch"])
def test_an_id_held_by_two_entries_stops_sealing_and_is_named(db, sealer, credit,
                                                                where) -> None:
    ids = credit(2)
    if where == "in an earlier batch":
        sealer.seal()
    _copy_entry(db, ids[1])
    before = located(db)
    with pytest.raises(LedgerError, match=f"entry id 0x{ids[1].hex()} is held by two entries"):
        sealer.seal()
    with db.session() as s:  # nothing of the refused batch was written
        assert s.scalar(select(func.count()).select_from(Batch)) == len(before) // 2
    assert located(db) == before


def test_an_id_sharing_a_sealed_ids_key_is_not_that_entry(db, sealer, credit) -> None:
    """The locator's key is an id's first bytes: a lookup, a citizen's listing and the
    sealer hold the whole id, so another id with the same first bytes is not found as
    the sealed entry, and an entry holding one stops sealing."""
    ids = credit(2)
    [batch] = sealer.seal()
    twin = ids[1][:ENTRY_KEY_BYTES] + bytes(b ^ 0xFF for b in ids[1][ENTRY_KEY_BYTES:])
    with db.session() as s, pytest.raises(NotFound):
        get_entry(s, twin)
    _copy_entry(db, ids[1])
    with db.session(write_lock=True) as s:  # the copy, given the twin id (in its leaf)
        copy = s.scalar(select(LedgerEntry).where(LedgerEntry.seq > batch.last_seq))
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == copy.seq)
                  .values(leaf=twin + copy.leaf[32:]))
        statuses = {e["entryId"]: e["status"]
                    for e in citizen_ledger(s, s.get(LedgerEntry, 1).citizen_id)}
    in_batch = statuses["0x" + ids[0].hex()]
    assert in_batch != "pending" and statuses == {
        "0x" + ids[0].hex(): in_batch, "0x" + ids[1].hex(): in_batch, "0x" + twin.hex(): "pending"}
    with pytest.raises(LedgerError, match=f"entry id 0x{twin.hex()} shares its first "
                                          f"{ENTRY_KEY_BYTES} bytes, the locator's key"):
        sealer.seal()


def test_the_locator_keyed_by_an_ids_first_bytes_keeps_its_rows(db, sealer, credit) -> None:
    """0019: down to whole ids and up again, every sealed entry stays located."""
    credit(3)
    sealer.seal()
    credit(1)
    sealed = located(db)
    assert len(sealed) == 3
    run_alembic(db.engine, "downgrade", "0018")
    assert located(db) == sealed
    run_alembic(db.engine, "upgrade", "head")
    assert located(db) == sealed


def test_the_audit_names_an_entry_the_locator_lost(db, sealer, credit) -> None:
    ids = credit(2)
    [batch] = sealer.seal()
    with db.session(write_lock=True) as s:
        s.execute(delete(EntryLocator).where(EntryLocator.entry_key == ids[0][:ENTRY_KEY_BYTES]))
    with db.session() as s:
        problems = audit_batch(s, batch.id).problems
    assert problems == [f"entry 0x{ids[0].hex()}: the locator lacks it"]


def test_the_migration_fills_the_locator_for_every_sealed_entry(db, sealer, credit) -> None:
    credit(4)
    sealer.seal()
    credit(2)
    sealer.seal()
    credit(1)  # unsealed: not located
    sealed = located(db)
    assert len(sealed) == 6
    run_alembic(db.engine, "downgrade", "0002")  # the unique index back, the locator gone
    run_alembic(db.engine, "upgrade", "head")
    assert located(db) == sealed


def test_the_locator_loses_its_batch_key_and_keeps_its_rows(db, sealer, credit) -> None:
    """0015: no foreign key on ``batch_id`` (checking it was most of a seal's locator
    insert on PostgreSQL); on SQLite the rebuilt table is still WITHOUT ROWID. Down and up
    again, the rows stay."""
    def batch_keys() -> list[list[str]]:
        return [k["referred_columns"] for k in inspect(db.engine).get_foreign_keys("entry_locator")]

    def without_rowid() -> bool:
        with db.engine.connect() as conn:
            return "WITHOUT ROWID" in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'entry_locator'").scalar_one()

    credit(3)
    sealer.seal()
    sealed = located(db)
    assert batch_keys() == []
    run_alembic(db.engine, "downgrade", "0014")
    assert batch_keys() == [["id"]] and located(db) == sealed
    run_alembic(db.engine, "upgrade", "head")
    assert batch_keys() == [] and located(db) == sealed
    if db.is_sqlite:
        assert without_rowid()


def test_the_locators_sort_threads_are_given_back(db) -> None:
    """``locate`` lets SQLite's sort use threads for its one statement, then sets the
    pooled connection back to what it had."""
    with db.session(write_lock=True) as s:
        conn = s.connection()
        if db.is_sqlite:
            conn.exec_driver_sql("PRAGMA threads=3")
        locate(conn, 1, 1, 0, threads=2)  # an empty range: nothing to write
        if db.is_sqlite:
            assert conn.exec_driver_sql("PRAGMA threads").scalar() == 3
