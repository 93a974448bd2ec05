"""Costs that follow the request, not the ledger (#24): ``citizen_totals``, what each
citizen's records of each behaviour add up to (a citizen's page reads it instead of their
entries, and de-duplication looks back as far as the citizen's longest record of the
behaviour instead of 31 days), and the indexes a citizen's pages of entries are read in
(``seq`` order within a citizen, and within a citizen and behaviour). Filled from the
ledger as it stands.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PAGES = "ix_entries_citizen_seq"
_PAGES_BY_BEHAVIOUR = "ix_entries_citizen_behaviour_seq"


def upgrade() -> None:
    op.create_table(
        "citizen_totals",
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("behaviour", sa.String(length=32), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("longest", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"],
                                name="fk_citizen_totals_citizen_id_citizens"),
        sa.PrimaryKeyConstraint("citizen_id", "kind", "behaviour"),
    )
    op.create_index(_PAGES, "ledger_entries", ["citizen_id", "seq"])
    op.create_index(_PAGES_BY_BEHAVIOUR, "ledger_entries", ["citizen_id", "behaviour", "seq"])
    # The entries' sums, then the records' longest interval (records of a behaviour with
    # no entry, all capped to nothing or duplicates, get a row of zeros)
    op.execute("INSERT INTO citizen_totals (citizen_id, kind, behaviour, entries, grams, "
               "points, longest) SELECT citizen_id, kind, behaviour, count(*), "
               "sum(reduction_grams), sum(points), 0 FROM ledger_entries "
               "GROUP BY citizen_id, kind, behaviour")
    op.execute("INSERT INTO citizen_totals (citizen_id, kind, behaviour, entries, grams, "
               "points, longest) SELECT DISTINCT r.citizen_id, 1, r.behaviour, 0, 0, 0, 0 "
               "FROM activity_records AS r WHERE r.citizen_id IS NOT NULL AND NOT EXISTS "
               "(SELECT 1 FROM citizen_totals AS t WHERE t.citizen_id = r.citizen_id "
               "AND t.kind = 1 AND t.behaviour = r.behaviour)")
    op.execute("UPDATE citizen_totals SET longest = COALESCE((SELECT "
               "max(COALESCE(r.ended_at, r.occurred_at) - r.occurred_at) FROM activity_records "
               "AS r WHERE r.citizen_id = citizen_totals.citizen_id AND r.behaviour = "
               "citizen_totals.behaviour), 0) WHERE kind = 1")


def downgrade() -> None:
    op.drop_index(_PAGES_BY_BEHAVIOUR, table_name="ledger_entries")
    op.drop_index(_PAGES, table_name="ledger_entries")
    op.drop_table("citizen_totals")
