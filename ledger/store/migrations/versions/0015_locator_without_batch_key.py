"""``entry_locator.batch_id`` loses its foreign key to ``batches``: checking it for each of
a batch's rows was more than half of the locator's insert on PostgreSQL (measured at
1,000,000 rows, docs/benchmarks.md, seal throughput). The sealer writes a batch's
rows in the transaction that writes the batch, batches are never deleted, and the audit
checks every entry's row against its batch.

On SQLite a constraint cannot be dropped: the table is built again without it, still
WITHOUT ROWID, its rows copied in key order.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_FK = "fk_entry_locator_batch_id_batches"


def _rebuild(with_key: bool) -> None:
    """SQLite: ``entry_locator`` again, with or without the key, holding the same rows."""
    keys = ([sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=_FK)]
            if with_key else [])
    op.create_table(
        "entry_locator_new",
        sa.Column("entry_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        *keys,
        sa.PrimaryKeyConstraint("entry_id"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO entry_locator_new (entry_id, seq, batch_id) "
               "SELECT entry_id, seq, batch_id FROM entry_locator ORDER BY entry_id")
    op.drop_table("entry_locator")
    op.rename_table("entry_locator_new", "entry_locator")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_key=False)
    else:
        op.drop_constraint(_FK, "entry_locator", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_key=True)
    else:
        op.create_foreign_key(_FK, "entry_locator", "batches", ["batch_id"], ["id"])
