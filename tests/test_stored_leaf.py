"""An entry's leaf stored without its ABI padding (#19): 185 bytes on disk, the exact ABI
bytes to every reader, on both backends; migration 0016 rewrites a ledger's leaves and
back, and keeps a leaf that is not canonical as it is."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from ledger.audit import audit_batch
from ledger.batch_builder import _hash_stored, hash_leaves
from ledger.entries import entry_row, entry_values
from ledger.hashing import keccak
from ledger.leaf import (
    ENCODED_SIZE,
    STORED_SIZE,
    behaviour_code,
    encode_leaf,
    encode_stored_leaf,
    expand_leaf,
    store_leaf,
)
from ledger.proofs import entry_proof
from ledger.store.models import LedgerEntry
from tests.test_entry_locator import credit  # noqa: F401 - a fixture
from tests.test_migrations import run_alembic

_values = st.tuples(
    st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
    st.integers(0, 2**8 - 1), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=32),
    st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32),
    st.binary(min_size=20, max_size=20),
).map(lambda v: (*v[:3], behaviour_code(v[3]), *v[4:]))


@given(_values)
def test_a_stored_leaf_is_the_abi_leaf_without_its_padding(values: tuple) -> None:  # type: ignore[type-arg]
    encoded = encode_leaf(values)
    stored = store_leaf(encoded)
    assert len(stored) == STORED_SIZE and encode_stored_leaf(values) == stored
    assert expand_leaf(stored) == encoded


@given(st.lists(_values, min_size=1, max_size=8))
def test_the_sealer_expands_many_leaves_as_each_is_expanded(many: list) -> None:  # type: ignore[type-arg]
    """The numpy expansion over STORED_PLACES is expand_leaf's, a leaf at a time (and a
    chunk holding a value of another length is expanded leaf by leaf)."""
    stored = [encode_stored_leaf(values) for values in many]
    expected = b"".join(keccak(keccak(expand_leaf(leaf))) for leaf in stored)
    assert _hash_stored(stored, keccak) == expected
    assert _hash_stored([*stored, bytes(352)], keccak) == expected + keccak(keccak(bytes(352)))


@given(_values, st.integers(0, ENCODED_SIZE - 1), st.integers(1, 255))
def test_only_a_canonical_leaf_is_stored(values: tuple, at: int, byte: int) -> None:  # type: ignore[type-arg]
    """Changing any byte of the padding makes a leaf that cannot be stored (its change
    would be lost); a value byte changed is another canonical leaf, stored as such."""
    encoded = bytearray(encode_leaf(values))
    encoded[at] ^= byte
    changed = bytes(encoded)
    try:
        stored = store_leaf(changed)
    except ValueError:
        return
    assert expand_leaf(stored) == changed


@pytest.mark.parametrize("value", [b"", bytes(351), bytes(353), bytes(184), bytes(186)])
def test_a_value_of_another_length_is_refused_and_read_as_it_is(value: bytes) -> None:
    with pytest.raises(ValueError):
        store_leaf(value)
    assert expand_leaf(value) == value


def _stored_lengths(db) -> list[int]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return list(s.scalars(text("SELECT length(leaf) FROM ledger_entries ORDER BY seq")))


def _abi_from_columns(entry: LedgerEntry) -> bytes:
    return encode_leaf((entry.entry_id, entry.leaf[32:64], entry.kind,
                        behaviour_code(entry.behaviour), entry.quantity, entry.reduction_grams,
                        entry.points, entry.methodology, entry.occurred_at, entry.record_hash,
                        entry.partner_address))


def test_intake_stores_the_short_form_and_every_reader_gets_the_abi_form(
        db, sealer, credit) -> None:  # noqa: F811
    ids = credit(4)
    assert _stored_lengths(db) == [STORED_SIZE] * 4
    with db.session() as s:
        entries = list(s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)))
        assert all(e.leaf == _abi_from_columns(e) for e in entries)
        leaves = [e.leaf for e in entries]
    # the sealer's own read, through the driver on SQLite
    assert hash_leaves(db.engine, 1, 4) == b"".join(keccak(keccak(leaf)) for leaf in leaves)
    [batch] = sealer.seal()
    with db.session() as s:
        bundle = entry_proof(s, ids[0]).bundle
        assert bundle is not None and bundle["batchId"] == batch.id
        report = audit_batch(s, batch.id)
    assert report.ok and report.problems == []


def test_a_leaf_written_in_abi_form_is_stored_short(db, make_citizen) -> None:
    citizen = make_citizen()
    fields = dict(entry_id=os.urandom(32), citizen_id=citizen.id, account=citizen.account,
                  kind=2, behaviour="REDEMPTION", quantity=1, reduction_grams=0, points=1,
                  methodology=1, occurred_at=1_763_000_000, record_hash=bytes(32),
                  partner_address=bytes(20))
    row = entry_row(**fields)
    assert len(row["leaf"]) == ENCODED_SIZE
    assert entry_values(**fields)[-1] == store_leaf(row["leaf"])
    with db.session() as s:
        s.execute(LedgerEntry.__table__.insert(), [row])
    assert _stored_lengths(db) == [STORED_SIZE]
    with db.session() as s:
        assert s.scalar(select(LedgerEntry.leaf)) == row["leaf"]


def test_the_migration_rewrites_every_leaf_and_back(db, sealer, credit) -> None:  # noqa: F811
    ids = credit(5)
    [batch] = sealer.seal()
    odd = bytearray(encode_leaf((os.urandom(32),) * 2 + (1, behaviour_code("X"), 1, 1, 1, 1, 1,
                                                         bytes(32), bytes(20))))
    odd[0 + 64] = 7  # a non-zero padding byte: no leaf the ledger writes
    with db.session() as s:
        abi = {e.seq: e.leaf for e in s.scalars(select(LedgerEntry))}
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == 5).values(leaf=bytes(odd)))
    assert _stored_lengths(db) == [STORED_SIZE] * 4 + [ENCODED_SIZE]
    run_alembic(db.engine, "downgrade", "0015")
    assert _stored_lengths(db) == [ENCODED_SIZE] * 5
    with db.session() as s:
        raw = dict(s.execute(text("SELECT seq, leaf FROM ledger_entries")).all())
    assert {seq: bytes(leaf) for seq, leaf in raw.items() if seq != 5} == {
        seq: leaf for seq, leaf in abi.items() if seq != 5} and bytes(raw[5]) == bytes(odd)
    run_alembic(db.engine, "upgrade", "head")
    assert _stored_lengths(db) == [STORED_SIZE] * 4 + [ENCODED_SIZE]
    with db.session() as s:
        assert {e.seq: e.leaf for e in s.scalars(select(LedgerEntry)) if e.seq != 5} == {
            seq: leaf for seq, leaf in abi.items() if seq != 5}
        assert s.scalar(select(LedgerEntry.leaf).where(LedgerEntry.seq == 5)) == bytes(odd)
        assert entry_proof(s, ids[0]).bundle is not None
        problems = audit_batch(s, batch.id).problems
    # the entry's id is its leaf's first 32 bytes: the odd leaf's
    assert problems[0] == (f"entry 0x{bytes(odd[:32]).hex()}: leaf does not decode: not a "
                           "canonical leaf encoding: non-zero padding")
    assert [p.split(" 0x")[0] for p in problems[1:]] == [
        "the leaves give root", "the leaves give content hash"]


def test_the_columns_the_leaf_took_come_back_from_it(db, sealer, credit) -> None:  # noqa: F811
    """0021 down: each entry's id, quantity and methodology columns again, as its leaf
    holds them; up again: the same entries, and the batch still audits clean."""
    credit(3)
    [batch] = sealer.seal()
    with db.session() as s:
        kept = [(e.seq, e.entry_id, e.quantity, e.methodology)
                for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
    assert len(kept) == 3 and all(q > 0 and m > 0 for _, _, q, m in kept)
    run_alembic(db.engine, "downgrade", "0020")
    with db.session() as s:
        assert [(seq, bytes(i), q, m) for seq, i, q, m in s.execute(text(
            "SELECT seq, entry_id, quantity, methodology FROM ledger_entries ORDER BY seq"))
                ] == kept
    run_alembic(db.engine, "upgrade", "head")
    with db.session() as s:
        assert [(e.seq, e.entry_id, e.quantity, e.methodology)
                for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))] == kept
        assert audit_batch(s, batch.id).ok
