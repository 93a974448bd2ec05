"""The database locks writers take beside their transactions, in one place, and the
backend branches that take them.

SQLite has one writer at a time already (the session's write lock, :mod:`ledger.store.sqlite`),
so on SQLite these are no-ops. On PostgreSQL a citizen's ledger is locked by its row of
``citizens`` (``FOR NO KEY UPDATE``, released at COMMIT or ROLLBACK): one lock per
citizen, kept in the row rather than in the server's shared lock table, so a submission
can hold a thousand of them and two submissions wait for each other only if they share a
citizen. It does not conflict with the ``KEY SHARE`` locks that foreign keys to the
citizen take. Sealing takes a table lock; migrations and a campaign's standings advisory
locks.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.hashing import keccak

# Writers that lock several citizens take them in the order (id % CITIZEN_LOCK_BUCKETS, id),
# every one the same (so two never deadlock): the order of the buckets the citizens shared
# when their locks were advisory ones, kept so that every writer's order stayed the same.
CITIZEN_LOCK_BUCKETS = 1024
# pg_advisory_xact_lock key: "carbonle" as an int64, so two processes never migrate at once.
MIGRATION_LOCK = int.from_bytes(b"carbonle", "big") >> 1


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def lock_citizen(session: Session, citizen_id: int) -> None:
    """Wait for other writers to this citizen's ledger and hold them off to the end of the
    transaction (submissions crediting them take the same lock,
    :meth:`ledger.store.intake.IntakeStore.load_snapshot`)."""
    if not is_sqlite(session):
        session.execute(text("SELECT 1 FROM citizens WHERE id = :c FOR NO KEY UPDATE"),
                        {"c": citizen_id})


def hold_off_entry_writers(session: Session) -> None:
    """Until this transaction ends, wait for every transaction that has written ledger
    entries and hold new ones off (reads go on).

    On PostgreSQL a seq is drawn at INSERT, but transactions commit in any order: an entry
    with a lower seq may still be uncommitted when a higher one is visible, and would fall
    below max(seq) into no batch. EXCLUSIVE waits for every transaction that has written
    entries (each holds ROW EXCLUSIVE from its INSERT on). Sequences hand out values in
    order (CACHE 1), so later inserts get more. SQLite's single writer needs nothing."""
    if not is_sqlite(session):
        session.connection().exec_driver_sql("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")


def _standings_key(campaign_id: str) -> int:
    """A signed 64-bit advisory lock key of its own for each campaign's standings."""
    return int.from_bytes(keccak(b"carbon-ledger/standings\x00" + campaign_id.encode())[:8],
                          "big", signed=True)


def share_standings(session: Session, campaign_id: str) -> None:
    """Wait for a recount of the campaign's standings to end; bonus pages share this lock,
    so no page adds a credit under a ranking's old rules while a correction's recount runs.
    SQLite's write lock serialises them already."""
    if not is_sqlite(session):
        session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"),
                        {"k": _standings_key(campaign_id)})


def hold_standings(session: Session, campaign_id: str) -> None:
    """Wait for every bonus page of the campaign to end and hold off new ones to the end
    of the transaction (a recount of its standings)."""
    if not is_sqlite(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": _standings_key(campaign_id)})
