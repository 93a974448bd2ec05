"""A campaign's standings lock: bonus pages share it, a recount of the standings holds it
alone, so no page adds a credit under a ranking's old rules while the standings are
counted anew under a correction's. PostgreSQL advisory locks for the transaction; on
SQLite the write lock every such transaction takes already serialises them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.hashing import keccak
from ledger.store.locks import is_sqlite


def _key(campaign_id: str) -> int:
    """A signed 64-bit advisory lock key of its own for each campaign."""
    return int.from_bytes(keccak(b"carbon-ledger/standings\x00" + campaign_id.encode())[:8],
                          "big", signed=True)


def share_standings(session: Session, campaign_id: str) -> None:
    """Wait for a recount of the campaign's standings to end; others may share it."""
    if not is_sqlite(session):
        session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _key(campaign_id)})


def hold_standings(session: Session, campaign_id: str) -> None:
    """Wait for every bonus page of the campaign to end and hold off new ones to the end
    of the transaction."""
    if not is_sqlite(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _key(campaign_id)})
