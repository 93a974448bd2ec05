"""The database locks writers take beside their transactions, in one place: every
advisory-lock namespace and the backend branches that take them.

SQLite has one writer at a time already (the session's write lock, :mod:`ledger.store.sqlite`),
so on SQLite these are no-ops; on PostgreSQL they are transaction-scoped advisory locks
(released at COMMIT or ROLLBACK) and, for sealing, a table lock.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CITIZEN_LOCKS = 0x43_4C  # advisory-lock namespace for "a citizen's ledger"
PARTNER_LOCKS = 0x50_52  # ... and for "a partner's record ids"
# Citizens share this many locks (id modulo): PostgreSQL's lock table holds some thousands
# in all, and a submission may name 50,000 citizens.
CITIZEN_LOCK_BUCKETS = 1024
# pg_advisory_xact_lock key: "carbonle" as an int64, so two processes never migrate at once.
MIGRATION_LOCK = int.from_bytes(b"carbonle", "big") >> 1


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def lock_citizen(session: Session, citizen_id: int) -> None:
    """Wait for other writers to this citizen's ledger (submissions crediting them take
    the same lock, :meth:`ledger.store.intake.IntakeStore.lock_citizens`)."""
    if not is_sqlite(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :bucket)"),
                        {"ns": CITIZEN_LOCKS, "bucket": citizen_id % CITIZEN_LOCK_BUCKETS})


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
