"""One index keyed by citizen on the entries, for #19's bytes an entry and #24's
time-ordered ingest: ``ix_entries_citizen`` (citizen, occurred_at) and
``ix_entries_citizen_seq`` (citizen, seq) are dropped; ``ix_entries_citizen_behaviour_seq``
stays. A citizen's page of every behaviour is now the merge of each behaviour's next rows
down that index (``ledger.views.citizen_entries``). Each of the two dropped indexes took
about 46 bytes an entry on PostgreSQL as a running service fills it, and each was a page
written at a random place by every commit: a submission for 1,000 citizens touched some
1,000 pages of each once the ledger was large.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_entries_citizen_seq", table_name="ledger_entries")
    op.drop_index("ix_entries_citizen", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index("ix_entries_citizen", "ledger_entries", ["citizen_id", "occurred_at"])
    op.create_index("ix_entries_citizen_seq", "ledger_entries", ["citizen_id", "seq"])
