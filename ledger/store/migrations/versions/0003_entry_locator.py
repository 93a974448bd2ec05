"""Entries are found by id through a locator written at sealing, not an index kept at
ingest: ``ledger_entries`` loses its unique index on ``entry_id`` and ``entry_locator``
(entry id → seq, batch) is filled for every entry already sealed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UNIQUE = "uq_ledger_entries_entry_id"


def upgrade() -> None:
    op.create_table(
        "entry_locator",
        sa.Column("entry_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"],
                                name="fk_entry_locator_batch_id_batches"),
        sa.PrimaryKeyConstraint("entry_id"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO entry_locator (entry_id, seq, batch_id) "
        "SELECT e.entry_id, e.seq, b.id FROM batches AS b JOIN ledger_entries AS e "
        "ON e.seq BETWEEN b.first_seq AND b.last_seq ORDER BY e.entry_id")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint(_UNIQUE, type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.create_unique_constraint(_UNIQUE, ["entry_id"])
    op.drop_table("entry_locator")
