"""A citizen's pages of entries are read down one index, for #19's bytes an entry and
#24's time-ordered ingest: ``ix_entries_citizen_seq`` (citizen, seq) is dropped. A page
of one behaviour is read down ``ix_entries_citizen_behaviour_seq`` as before; a page of
every behaviour is now the merge of each behaviour's next rows down that same index
(``ledger.views.citizen_entries``). The dropped index took about 42 bytes an entry on
PostgreSQL as a running service fills it, and it was a page written at a random place by
every commit: a submission for 1,000 citizens touched some 1,000 of its pages once the
ledger was large. ``ix_entries_citizen`` (citizen, time) stays: a citizen's statement
for a period and a partner's report find entries by it.

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


def downgrade() -> None:
    op.create_index("ix_entries_citizen_seq", "ledger_entries", ["citizen_id", "seq"])
