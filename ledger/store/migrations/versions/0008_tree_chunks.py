"""Sealed trees in rows of 32 nodes (``batch_tree_chunks``) instead of one BLOB per tree
(``batch_trees``), so a proof reads the rows its nodes are in and not the whole tree
(#24). Every stored tree is cut into rows, one tree at a time, then ``batch_trees`` goes.

The row size is written out here, not imported: this migration must keep doing what it
did whatever the code later does.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ROW_BYTES = 32 * 32  # 32 nodes of 32 bytes
_INSERT_ROWS = 4096

_old = sa.table("batch_trees", sa.column("batch_id", sa.Integer()),
                sa.column("nodes", sa.LargeBinary()))
_new = sa.table("batch_tree_chunks", sa.column("batch_id", sa.Integer()),
                sa.column("chunk", sa.Integer()), sa.column("nodes", sa.LargeBinary()))


def upgrade() -> None:
    op.create_table(
        "batch_tree_chunks",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"],
                                name="fk_batch_tree_chunks_batch_id_batches"),
        sa.PrimaryKeyConstraint("batch_id", "chunk"),
    )
    conn = op.get_bind()
    batch_ids = list(conn.execute(sa.select(_old.c.batch_id).order_by(_old.c.batch_id)).scalars())
    for batch_id in batch_ids:  # one tree in memory at a time
        nodes = memoryview(conn.execute(sa.select(_old.c.nodes)
                                        .where(_old.c.batch_id == batch_id)).scalar_one())
        rows = -(-len(nodes) // _ROW_BYTES)
        for start in range(0, rows, _INSERT_ROWS):
            conn.execute(sa.insert(_new), [
                {"batch_id": batch_id, "chunk": c,
                 "nodes": bytes(nodes[c * _ROW_BYTES : (c + 1) * _ROW_BYTES])}
                for c in range(start, min(start + _INSERT_ROWS, rows))])
    op.drop_table("batch_trees")


def downgrade() -> None:
    op.create_table(
        "batch_trees",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"],
                                name="fk_batch_trees_batch_id_batches"),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    conn = op.get_bind()
    batch_ids = list(conn.execute(sa.select(_new.c.batch_id).distinct()
                                  .order_by(_new.c.batch_id)).scalars())
    for batch_id in batch_ids:
        parts = conn.execute(sa.select(_new.c.nodes).where(_new.c.batch_id == batch_id)
                             .order_by(_new.c.chunk)).scalars()
        conn.execute(sa.insert(_old), [{"batch_id": batch_id,
                                        "nodes": b"".join(bytes(p) for p in parts)}])
    op.drop_table("batch_tree_chunks")
