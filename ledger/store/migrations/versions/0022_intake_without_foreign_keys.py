"""On PostgreSQL the tables intake writes for every record lose their foreign keys:
``activity_records`` (partner, citizen, duplicate_of), ``ledger_entries``,
``daily_totals``, ``monthly_totals`` and ``citizen_totals`` (citizen). Each was a trigger
running one query per row written, about 17 ms of server CPU a 1,000 records
(docs/benchmarks.md, "Intake on PostgreSQL without foreign keys, its lists as text").
Intake writes only citizens it has read and locked in its own transaction, and nothing
deletes citizens, partners or records.

SQLite keeps them: there the check is a lookup of a cached rowid, and dropping a
constraint would rebuild the ledger's two largest tables
(:func:`ledger.store.models.intake_key`).

Downgrade adds them back (PostgreSQL checks the rows it has as it does).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

#: (table, column, referenced table) of each key, named as 0001, 0002 and 0005 named them
_KEYS = (
    ("activity_records", "citizen_id", "citizens"),
    ("activity_records", "partner_id", "partners"),
    ("activity_records", "duplicate_of", "activity_records"),
    ("ledger_entries", "citizen_id", "citizens"),
    ("daily_totals", "citizen_id", "citizens"),
    ("monthly_totals", "citizen_id", "citizens"),
    ("citizen_totals", "citizen_id", "citizens"),
)


def _name(table: str, column: str, target: str) -> str:
    return f"fk_{table}_{column}_{target}"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, target in _KEYS:
        op.drop_constraint(_name(table, column, target), table, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, target in _KEYS:
        op.create_foreign_key(_name(table, column, target), table, target, [column], ["id"])
