"""Ledger entries: the one way an entry and its leaf are made, and the ways they are read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput, NotFound
from ledger.leaf import LeafValues, behaviour_code, decode_leaf, encode_leaf
from ledger.models import LedgerEntry

#: An entry's columns in the order :func:`entry_values` gives them (``seq`` is assigned).
ENTRY_COLUMNS = ("entry_id", "citizen_id", "kind", "behaviour", "quantity", "reduction_grams",
                 "points", "methodology", "occurred_at", "record_hash", "partner_address", "leaf")


def entry_values(entry_id: bytes, citizen_id: int, account: bytes, kind: int, behaviour: str,
                 quantity: int, reduction_grams: int, points: int, methodology: int,
                 occurred_at: int, record_hash: bytes, partner_address: bytes) -> tuple[Any, ...]:
    """An entry's column values in :data:`ENTRY_COLUMNS` order, its stored leaf encoding
    exactly those columns. A tuple, so bulk paths insert many with one executemany."""
    leaf = encode_leaf((entry_id, account, kind, behaviour_code(behaviour), quantity,
                        reduction_grams, points, methodology, occurred_at, record_hash,
                        partner_address))
    return (entry_id, citizen_id, kind, behaviour, quantity, reduction_grams, points,
            methodology, occurred_at, record_hash, partner_address, leaf)


def entry_row(**fields: Any) -> dict[str, Any]:
    """:func:`entry_values` by column name."""
    return dict(zip(ENTRY_COLUMNS, entry_values(**fields), strict=True))


def make_entry(**fields: Any) -> LedgerEntry:
    """:func:`entry_row` as an ORM object, for units of work that add one at a time."""
    return LedgerEntry(**entry_row(**fields))


def parse_entry_id(text: str) -> bytes:
    """An entry id as the dump and the proof bundle print it: 0x + 64 hex digits."""
    raw = text[2:] if text.startswith("0x") else text
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise InvalidInput(f"{text!r} is not a 32-byte hex entry id", field="entry_id")
    return value


def get_entry(session: Session, entry_id: bytes) -> LedgerEntry:
    entry = session.scalar(select(LedgerEntry).where(LedgerEntry.entry_id == entry_id))
    if entry is None:
        raise NotFound(f"no entry 0x{entry_id.hex()}", field="entry_id")
    return entry


def leaf_values(entry: LedgerEntry) -> LeafValues:
    """The values that were sealed: decoded from the stored leaf, not the columns."""
    return decode_leaf(entry.leaf)
