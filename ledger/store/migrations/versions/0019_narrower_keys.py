"""Narrower keys, for #19's bytes an entry (PostgreSQL as a running service holds them,
its indexes filled in random order):

- ``entry_locator`` is keyed by the first 16 bytes of an entry id (``entry_key``), not
  all 32; readers match the whole id on the entry the key leads to (see
  ``EntryLocator``). Its columns are ordered so that PostgreSQL pads none of them.
- ``ix_city_presence_day`` is on (scope, day), not (scope, day, citizen): PostgreSQL
  then keeps one key per day of a scope and a list of row pointers behind it. On SQLite
  the index of a table without rowids ends with the primary key's columns whatever it
  names, so it holds the same rows as before.
- ``activity_records.submission_id`` holds the submission id's 32 bytes, not its 66
  hexadecimal characters.

Upgrade rebuilds ``entry_locator`` (its rows copied in key order), builds the index again
and converts the submission ids (PostgreSQL rewrites ``activity_records`` in place;
SQLite rewrites it through a copy, one submission's records at a time by its index
first). Downgrade does the reverse: the locator's whole ids come back from the entries.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_KEY = 16  # ledger.store.models.ENTRY_KEY_BYTES when this was written


def _locator(narrow: bool) -> None:
    """``entry_locator`` again, keyed by the id's first bytes or by all of it."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    key = "entry_key" if narrow else "entry_id"
    width = _KEY if narrow else 32
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column(key, sa.LargeBinary(length=width), nullable=False)]
    if not narrow:  # the order 0003 made it in
        columns = [columns[2], *columns[:2]]
    op.create_table("entry_locator_new", *columns,
                    sa.PrimaryKeyConstraint(key, name=None if sqlite else "entry_locator_pkey_new"),
                    sqlite_with_rowid=False)
    if narrow:
        source = f"SELECT seq, batch_id, substr(entry_id, 1, {_KEY}) AS k FROM entry_locator"
    else:  # each key leads to its entry, which holds the whole id
        source = ("SELECT l.seq, l.batch_id, e.entry_id AS k FROM entry_locator AS l "
                  "JOIN ledger_entries AS e ON e.seq = l.seq")
    op.execute(f"INSERT INTO entry_locator_new (seq, batch_id, {key}) "
               f"SELECT seq, batch_id, k FROM ({source}) AS s ORDER BY k")
    op.drop_table("entry_locator")
    op.rename_table("entry_locator_new", "entry_locator")
    if not sqlite:
        op.execute("ALTER TABLE entry_locator RENAME CONSTRAINT entry_locator_pkey_new "
                   "TO entry_locator_pkey")


def _presence_index(columns: list[str]) -> None:
    op.drop_index("ix_city_presence_day", table_name="city_presence")
    op.create_index("ix_city_presence_day", "city_presence", columns)


def _submission_ids(to_bytes: bool) -> None:
    conn = op.get_bind()
    old, new = ((sa.String(length=66), sa.LargeBinary(length=32)) if to_bytes
                else (sa.LargeBinary(length=32), sa.String(length=66)))
    if conn.dialect.name != "sqlite":
        using = ("decode(substr(submission_id, 3), 'hex')" if to_bytes
                 else "'0x' || encode(submission_id, 'hex')")
        op.alter_column("activity_records", "submission_id", type_=new, existing_type=old,
                        postgresql_using=using)
        return
    # a submission's records share its id: one update per submission, by the column's index
    ids = conn.execute(sa.text("SELECT DISTINCT submission_id FROM activity_records "
                               "WHERE submission_id IS NOT NULL")).scalars().all()
    if ids:
        conn.execute(sa.text("UPDATE activity_records SET submission_id = :new "
                             "WHERE submission_id = :old"),
                     [{"old": i, "new": bytes.fromhex(i[2:]) if to_bytes
                       else "0x" + bytes(i).hex()} for i in ids])
    with op.batch_alter_table("activity_records") as batch:
        batch.alter_column("submission_id", type_=new, existing_type=old)


def upgrade() -> None:
    _locator(narrow=True)
    _presence_index(["scope", "day"])
    _submission_ids(to_bytes=True)


def downgrade() -> None:
    _submission_ids(to_bytes=False)
    _presence_index(["scope", "day", "citizen_id"])
    _locator(narrow=False)
