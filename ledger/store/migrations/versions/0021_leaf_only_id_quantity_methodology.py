"""An entry's id, quantity and methodology version are kept in its leaf only, as its
record hash and partner have been since 0018: the columns ``ledger_entries.entry_id``,
``quantity`` and ``methodology`` held the leaf's bytes again (about 48 bytes a row by
PostgreSQL's layout, #19). ``LedgerEntry`` reads them from the leaf; SQL reads an entry
id as the leaf's first 32 bytes (``ledger.store.models.leaf_entry_id``), the same in
the stored and the encoded form; the audit holds the leaf's quantity and version to the
raw record and the methodology.

Upgrade drops the three columns (SQLite rewrites the table; PostgreSQL gives the bytes
back when rows are rewritten: ``VACUUM FULL ledger_entries``). Downgrade adds them back
and fills them from the leaves, a chunk of entries at a time.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.leaf import LEAF_ENTRY_ID, LEAF_METHODOLOGY, LEAF_QUANTITY
from ledger.store.bulk import fill_entry_columns

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_CHUNK = 20_000
#: column, its type, PostgreSQL's name of it, and the value from a leaf's ABI form
_COLUMNS = (
    ("entry_id", sa.LargeBinary(length=32), "bytea", lambda leaf: leaf[LEAF_ENTRY_ID]),
    ("quantity", sa.BigInteger(), "bigint",
     lambda leaf: int.from_bytes(leaf[LEAF_QUANTITY], "big")),
    ("methodology", sa.Integer(), "integer",
     lambda leaf: int.from_bytes(leaf[LEAF_METHODOLOGY], "big")),
)


def upgrade() -> None:
    for column, _, _, _ in _COLUMNS:  # both backends drop a plain column in place
        op.execute(f"ALTER TABLE ledger_entries DROP COLUMN {column}")


def downgrade() -> None:
    for column, kind, _, _ in _COLUMNS:
        op.add_column("ledger_entries", sa.Column(column, kind))
    fill_entry_columns(op.get_bind(), [(column, pg_type, value)
                                       for column, _, pg_type, value in _COLUMNS], chunk=_CHUNK)
    with op.batch_alter_table("ledger_entries") as batch:
        for column, kind, _, _ in _COLUMNS:
            batch.alter_column(column, existing_type=kind, nullable=False)
