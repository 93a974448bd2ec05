"""Ledger entries: the one way an entry and its leaf are made, and the ways they are read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CompoundSelect, bindparam, func, null, select, union_all
from sqlalchemy.orm import Session

from ledger.errors import NotFound
from ledger.hashing import parse_hex32
from ledger.leaf import behaviour_code, encode_stored_leaf, expand_leaf
from ledger.store.models import Batch, EntryLocator, LedgerEntry, entry_key

#: An entry's columns in the order :func:`entry_values` gives them (``seq`` is assigned).
#: The entry id, quantity, methodology, record hash and partner's address are in the leaf
#: only (migrations 0018 and 0021).
ENTRY_COLUMNS = ("citizen_id", "kind", "behaviour", "reduction_grams", "points", "occurred_at",
                 "leaf")


def entry_values(entry_id: bytes, citizen_id: int, account: bytes, kind: int, behaviour: str,
                 quantity: int, reduction_grams: int, points: int, methodology: int,
                 occurred_at: int, record_hash: bytes, partner_address: bytes) -> tuple[Any, ...]:
    """An entry's column values in :data:`ENTRY_COLUMNS` order, its leaf encoding exactly
    those columns with what only the leaf holds (the id, account, quantity, methodology,
    record hash and partner), in its stored form (:class:`ledger.store.models.StoredLeaf`):
    a tuple for bulk paths, which insert many through the driver."""
    leaf = encode_stored_leaf((entry_id, account, kind, behaviour_code(behaviour), quantity,
                               reduction_grams, points, methodology, occurred_at, record_hash,
                               partner_address))
    return (citizen_id, kind, behaviour, reduction_grams, points, occurred_at, leaf)


def entry_row(**fields: Any) -> dict[str, Any]:
    """:func:`entry_values` by column name, the leaf in its ABI form, as the ORM and
    SQLAlchemy's statements read and write it."""
    row = dict(zip(ENTRY_COLUMNS, entry_values(**fields), strict=True))
    row["leaf"] = expand_leaf(row["leaf"])
    return row


def make_entry(**fields: Any) -> LedgerEntry:
    """:func:`entry_row` as an ORM object, for units of work that add one at a time."""
    return LedgerEntry(**entry_row(**fields))


def parse_entry_id(text: str) -> bytes:
    """An entry id as the dump and the proof bundle print it: 0x + 64 hex digits (the 0x
    may be left out; nothing else may surround or split the digits)."""
    return parse_hex32(text if text.startswith("0x") else "0x" + text, field="entry_id")


def sealed_through(session: Session) -> int:
    """The last seq any batch holds (0 before the first): entries above it are unsealed."""
    # Core on the session's connection: this is on the proof path, as cheap as it gets
    return session.connection().execute(_SEALED_THROUGH).scalar() or 0


_SEALED_THROUGH = select(Batch.last_seq).order_by(Batch.id.desc()).limit(1)


def find_entry(entry_columns: Sequence[Any], batch_columns: Sequence[Any] = ()) -> CompoundSelect:
    """A query for the entry whose id is bound as ``entry_id``: ``entry_columns`` of it
    and ``batch_columns`` of its batch (NULL while it is unsealed), one row or none.

    A sealed entry is found through :class:`EntryLocator`; an unsealed one by scanning the
    entries above the last seq any batch holds, read in the same statement (one snapshot,
    one round trip: an entry sealed meanwhile is found in one arm or the other). ``LIMIT
    1`` ends it at the locator's row, so the bound is read and the scan runs only for
    unsealed or unknown ids."""
    sealed = (select(*entry_columns, *batch_columns).select_from(EntryLocator)
              .join(LedgerEntry, LedgerEntry.seq == EntryLocator.seq)
              .join(Batch, Batch.id == EntryLocator.batch_id)
              .where(EntryLocator.entry_key == entry_key(bindparam("entry_id")),
                     LedgerEntry.entry_id == bindparam("entry_id")))
    unsealed = (select(*entry_columns, *[null().label(c.key) for c in batch_columns])
                .where(LedgerEntry.seq > func.coalesce(_SEALED_THROUGH.scalar_subquery(), 0),
                       LedgerEntry.entry_id == bindparam("entry_id")))
    return union_all(sealed, unsealed).limit(1)


_FIND_SEQ = find_entry([LedgerEntry.seq])


def get_entry(session: Session, entry_id: bytes) -> LedgerEntry:
    seq = session.scalar(_FIND_SEQ, {"entry_id": entry_id})
    entry = None if seq is None else session.get(LedgerEntry, seq)
    if entry is None:
        raise NotFound(f"no entry 0x{entry_id.hex()}", field="entry_id")
    return entry


def oldest_unanchored_batch(session: Session) -> int | None:
    """When the oldest batch not yet anchored was sealed (unix seconds), or None."""
    return session.scalar(select(func.min(Batch.sealed_at)).where(Batch.status != "anchored"))
