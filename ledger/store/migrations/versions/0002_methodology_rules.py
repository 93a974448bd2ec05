"""Methodology integrity rules: a record's end time (speed bounds, overlap), the pointer
from a cross-partner duplicate to the report that was credited, the index those checks
read through, and the monthly caps' running totals.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("activity_records") as batch:
        batch.add_column(sa.Column("ended_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("duplicate_of", BIG_ID, nullable=True))
        batch.create_foreign_key("fk_activity_records_duplicate_of_activity_records",
                                 "activity_records", ["duplicate_of"], ["id"])
        batch.create_index("ix_records_citizen_behaviour",
                           ["citizen_id", "behaviour", "occurred_at"])
    op.create_table(
        "monthly_totals",
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("behaviour", sa.String(length=32), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"],
                                name="fk_monthly_totals_citizen_id_citizens"),
        sa.PrimaryKeyConstraint("citizen_id", "behaviour", "month"),
    )


def downgrade() -> None:
    op.drop_table("monthly_totals")
    with op.batch_alter_table("activity_records") as batch:
        batch.drop_index("ix_records_citizen_behaviour")
        batch.drop_constraint("fk_activity_records_duplicate_of_activity_records",
                              type_="foreignkey")
        batch.drop_column("duplicate_of")
        batch.drop_column("ended_at")
