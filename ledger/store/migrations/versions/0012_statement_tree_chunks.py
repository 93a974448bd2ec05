"""Month statements' trees in rows of 32 nodes (``statement_tree_chunks``), as batches'
trees are since 0008, instead of one BLOB per month (``statements.nodes``): a citizen's
proof reads the rows its nodes are in, not the whole tree (#20). Every stored statement
tree is cut into rows, one at a time, then the column goes.

The row size is written out here, not imported: this migration must keep doing what it
did whatever the code later does.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ROW_BYTES = 32 * 32  # 32 nodes of 32 bytes
_INSERT_ROWS = 4096

_statements = sa.table("statements", sa.column("period", sa.Integer()),
                       sa.column("nodes", sa.LargeBinary()))
_chunks = sa.table("statement_tree_chunks", sa.column("period", sa.Integer()),
                   sa.column("chunk", sa.Integer()), sa.column("nodes", sa.LargeBinary()))


def upgrade() -> None:
    op.create_table(
        "statement_tree_chunks",
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["period"], ["statements.period"],
                                name="fk_statement_tree_chunks_period_statements"),
        sa.PrimaryKeyConstraint("period", "chunk"),
    )
    conn = op.get_bind()
    periods = list(conn.execute(sa.select(_statements.c.period)
                                .order_by(_statements.c.period)).scalars())
    for period in periods:  # one tree in memory at a time
        nodes = memoryview(conn.execute(sa.select(_statements.c.nodes)
                                        .where(_statements.c.period == period)).scalar_one())
        rows = -(-len(nodes) // _ROW_BYTES)
        for start in range(0, rows, _INSERT_ROWS):
            conn.execute(sa.insert(_chunks), [
                {"period": period, "chunk": c,
                 "nodes": bytes(nodes[c * _ROW_BYTES : (c + 1) * _ROW_BYTES])}
                for c in range(start, min(start + _INSERT_ROWS, rows))])
    with op.batch_alter_table("statements") as batch:
        batch.drop_column("nodes")


def downgrade() -> None:
    with op.batch_alter_table("statements") as batch:
        batch.add_column(sa.Column("nodes", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    periods = list(conn.execute(sa.select(_statements.c.period)
                                .order_by(_statements.c.period)).scalars())
    for period in periods:
        parts = conn.execute(sa.select(_chunks.c.nodes).where(_chunks.c.period == period)
                             .order_by(_chunks.c.chunk)).scalars()
        conn.execute(sa.update(_statements).where(_statements.c.period == period)
                     .values(nodes=b"".join(bytes(p) for p in parts)))
    with op.batch_alter_table("statements") as batch:
        batch.alter_column("nodes", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("statement_tree_chunks")
