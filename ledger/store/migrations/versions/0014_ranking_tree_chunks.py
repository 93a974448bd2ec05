"""Closed rankings' trees in rows of 32 nodes (``ranking_tree_chunks``), as batches' and
month statements' trees are (0008, 0012), instead of one BLOB per ranking
(``campaign_rankings.nodes``): a participant's rank proof reads the rows its nodes are
in, not the whole tree (#21). Every stored ranking tree is cut into rows, one at a time,
then the column goes.

The row size is written out here, not imported: this migration must keep doing what it
did whatever the code later does.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ROW_BYTES = 32 * 32  # 32 nodes of 32 bytes
_INSERT_ROWS = 4096

_rankings = sa.table("campaign_rankings", sa.column("campaign_id", sa.String()),
                     sa.column("nodes", sa.LargeBinary()))
_chunks = sa.table("ranking_tree_chunks", sa.column("campaign_id", sa.String()),
                   sa.column("chunk", sa.Integer()), sa.column("nodes", sa.LargeBinary()))


def upgrade() -> None:
    op.create_table(
        "ranking_tree_chunks",
        sa.Column("campaign_id", sa.String(length=24), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign_rankings.campaign_id"],
                                name="fk_ranking_tree_chunks_campaign_id_campaign_rankings"),
        sa.PrimaryKeyConstraint("campaign_id", "chunk"),
    )
    conn = op.get_bind()
    owners = list(conn.execute(sa.select(_rankings.c.campaign_id)
                               .order_by(_rankings.c.campaign_id)).scalars())
    for owner in owners:  # one tree in memory at a time
        nodes = memoryview(conn.execute(sa.select(_rankings.c.nodes)
                                        .where(_rankings.c.campaign_id == owner)).scalar_one())
        rows = -(-len(nodes) // _ROW_BYTES)
        for start in range(0, rows, _INSERT_ROWS):
            conn.execute(sa.insert(_chunks), [
                {"campaign_id": owner, "chunk": c,
                 "nodes": bytes(nodes[c * _ROW_BYTES : (c + 1) * _ROW_BYTES])}
                for c in range(start, min(start + _INSERT_ROWS, rows))])
    with op.batch_alter_table("campaign_rankings") as batch:
        batch.drop_column("nodes")


def downgrade() -> None:
    with op.batch_alter_table("campaign_rankings") as batch:
        batch.add_column(sa.Column("nodes", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    owners = list(conn.execute(sa.select(_rankings.c.campaign_id)
                               .order_by(_rankings.c.campaign_id)).scalars())
    for owner in owners:
        parts = conn.execute(sa.select(_chunks.c.nodes).where(_chunks.c.campaign_id == owner)
                             .order_by(_chunks.c.chunk)).scalars()
        conn.execute(sa.update(_rankings).where(_rankings.c.campaign_id == owner)
                     .values(nodes=b"".join(bytes(p) for p in parts)))
    with op.batch_alter_table("campaign_rankings") as batch:
        batch.alter_column("nodes", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("ranking_tree_chunks")
