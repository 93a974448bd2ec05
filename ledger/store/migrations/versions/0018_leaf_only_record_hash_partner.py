"""An entry's record hash and partner address are kept in its leaf only: the columns
``ledger_entries.record_hash`` and ``partner_address`` held the leaf's bytes again (about
55 bytes an entry, #19), and no query selects or filters by them. ``LedgerEntry`` reads
them from the leaf (its ``record_hash`` and ``partner_address`` properties); the audit
holds the leaf's record hash to the raw record, as it held the column's.

Upgrade drops the two columns (SQLite rewrites the table; PostgreSQL gives the bytes back
when rows are rewritten: ``VACUUM FULL ledger_entries``). Downgrade adds them back and
fills them from the leaves, a chunk of entries at a time.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from operator import itemgetter

import sqlalchemy as sa
from alembic import op

from ledger.leaf import LEAF_PARTNER, LEAF_RECORD_HASH
from ledger.store.bulk import fill_entry_columns

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_CHUNK = 20_000
_COLUMNS = (("record_hash", 32, LEAF_RECORD_HASH), ("partner_address", 20, LEAF_PARTNER))


def upgrade() -> None:
    for column, _, _ in _COLUMNS:  # both backends drop a plain column in place
        op.execute(f"ALTER TABLE ledger_entries DROP COLUMN {column}")


def downgrade() -> None:
    for column, width, _ in _COLUMNS:
        op.add_column("ledger_entries", sa.Column(column, sa.LargeBinary(length=width)))
    fill_entry_columns(op.get_bind(), [(column, "bytea", itemgetter(place))
                                       for column, _, place in _COLUMNS], chunk=_CHUNK)
    with op.batch_alter_table("ledger_entries") as batch:
        for column, width, _ in _COLUMNS:
            batch.alter_column(column, existing_type=sa.LargeBinary(length=width),
                               nullable=False)
