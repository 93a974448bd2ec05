"""The public city report from rollups kept as credits are written (#24): ``city_cells``
(per local day and behaviour: entries, grams, distinct citizens), ``city_presence`` (the
citizens of each cell, and of each day in any behaviour) and ``city_gaps`` (per day, how
long since its citizens were last present: distinct citizens of any window by a sum).
Filled from the ledger as it stands, under the report's rules (credits received within
the settling time of their day's end).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.store.rollups import rebuild_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "city_cells",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("behaviour", sa.String(length=32), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.Column("citizens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "behaviour"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "city_presence",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "citizen_id", "day"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "city_gaps",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("gap", sa.Integer(), nullable=False),
        sa.Column("citizens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", "gap"),
        sqlite_with_rowid=False,
    )
    for statement in rebuild_sql(parts=False):
        op.execute(statement)
    op.create_index("ix_city_presence_day", "city_presence", ["scope", "day", "citizen_id"])


def downgrade() -> None:
    op.drop_index("ix_city_presence_day", table_name="city_presence")
    op.drop_table("city_gaps")
    op.drop_table("city_presence")
    op.drop_table("city_cells")
