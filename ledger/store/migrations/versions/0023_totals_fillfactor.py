"""On PostgreSQL the two tables keyed by citizen that intake updates in place for every
submission keep half of each page free: ``balances`` and ``citizen_totals``
(``fillfactor`` 50, :data:`ledger.store.models.UPDATED_IN_PLACE`).

PostgreSQL writes an update as a new row version. When the page holding the row has room
for it, the update is "heap-only" (HOT): no index gets a new entry, and the dead version
is pruned from the page without VACUUM. On full pages (the default ``fillfactor`` 100) 86
to 88 % of these two tables' updates were not HOT in the ingest benchmark; with half of
each page free, 83 to 99.7 % are. Their rows are one per citizen (and behaviour), so the
room costs less an entry as the ledger grows.

``daily_totals`` and ``monthly_totals`` keep full pages: a row per citizen, behaviour and
period grows with the ledger, and with half-empty pages too a ledger of 1,000,000 entries
took 1,590 bytes an entry as built, against 1,448 and the goal of 1,500 (docs/
benchmarks.md, "Totals updated in place, on pages with room").

The setting shapes pages written from now on; pages an older ledger filled keep their
rows until they are rewritten (``VACUUM FULL``), though VACUUM's freed space serves HOT
updates as well. SQLite has no such setting: its B-tree rewrites the row in place.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_TABLES = ("balances", "citizen_totals")
_FILLFACTOR = 50  # as ledger.store.models.UPDATED_IN_PLACE (a migration keeps its own copy)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
