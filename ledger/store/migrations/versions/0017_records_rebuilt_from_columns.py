"""``activity_records.raw`` is NULL when the record is exactly its columns and its
citizen's pseudonym (``ledger.records.rebuilt_record``): most records are, and their text
was about 150 of an entry's bytes on disk (#19). Readers rebuild the text from the
columns; a record with anything more (``details``, times written as RFC 3339, a behaviour
spelled otherwise) keeps its text, and so does an erased citizen's (``{"erased":true}``).

Upgrade makes the column nullable and drops the text of every record it can rebuild
exactly, a chunk at a time; downgrade writes the text back first. As with 0016, the files
keep their size until ``VACUUM`` (SQLite) or ``VACUUM FULL activity_records``
(PostgreSQL).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.records import rebuilt_record
from ledger.store.bulk import update_column

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_CHUNK = 20_000
_READ = sa.text(
    "SELECT r.id, r.raw, r.partner_record_id, c.pseudonym, r.behaviour, r.quantity, "
    "r.occurred_at, r.ended_at FROM activity_records AS r LEFT JOIN citizens AS c "
    "ON c.id = r.citizen_id WHERE r.id > :after ORDER BY r.id LIMIT :n")


def _rewrite(drop: bool) -> None:
    """Drop the text of every record it rebuilds to (``drop``), or write it back."""
    conn = op.get_bind()
    after = -1
    while rows := conn.execute(_READ, {"after": after, "n": _CHUNK}).all():
        after = rows[-1][0]
        changed: list[tuple[int, str | None]] = []
        for rid, raw, record_id, pseudonym, behaviour, quantity, at, end in rows:
            if pseudonym is None or (raw is None) == drop:
                continue
            rebuilt = rebuilt_record(record_id, pseudonym, behaviour, quantity, at, end).decode()
            if not drop:
                changed.append((rid, rebuilt))
            elif raw == rebuilt:
                changed.append((rid, None))
        if not changed:
            continue
        update_column(conn, "activity_records", "id", "raw", "text", changed)


def upgrade() -> None:
    with op.batch_alter_table("activity_records") as batch:
        batch.alter_column("raw", existing_type=sa.Text(), nullable=True)
    _rewrite(drop=True)


def downgrade() -> None:
    _rewrite(drop=False)
    with op.batch_alter_table("activity_records") as batch:
        batch.alter_column("raw", existing_type=sa.Text(), nullable=False)
