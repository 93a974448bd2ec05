"""City rollups in parts (#19, #25): ``city_cells`` and ``city_gaps`` gain a ``part`` in
their key, so two intakes adding to one day's cell write two rows instead of waiting on
one. On PostgreSQL each database session writes its own part (its backend pid); the
seal scheduler folds the parts of settled days back into part 0. SQLite has one writer
and only ever writes part 0. Existing rows become part 0.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_CELLS = ("day", "behaviour", "entries", "grams", "citizens")
_GAPS = ("scope", "day", "gap", "citizens")


def _cells(name: str, parts: bool) -> None:
    op.create_table(
        name,
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("behaviour", sa.String(length=32), nullable=False),
        *([sa.Column("part", sa.BigInteger(), nullable=False)] if parts else []),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("grams", sa.BigInteger(), nullable=False),
        sa.Column("citizens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "behaviour", *(["part"] if parts else [])),
        sqlite_with_rowid=False,
    )


def _gaps(name: str, parts: bool) -> None:
    op.create_table(
        name,
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("gap", sa.Integer(), nullable=False),
        *([sa.Column("part", sa.BigInteger(), nullable=False)] if parts else []),
        sa.Column("citizens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", "gap", *(["part"] if parts else [])),
        sqlite_with_rowid=False,
    )


def _swap(table: str, build: object, columns: tuple[str, ...], parts: bool) -> None:
    """Rebuild ``table`` with or without parts, its rows kept (summed when parts go)."""
    build(f"{table}_new", parts)  # type: ignore[operator]
    keys = [c for c in columns if c not in ("entries", "grams", "citizens")]
    sums = [c for c in columns if c not in keys]
    listed = ", ".join(columns)
    if parts:
        op.execute(f"INSERT INTO {table}_new ({listed}, part) SELECT {listed}, 0 FROM {table}")
    else:
        op.execute(f"INSERT INTO {table}_new ({listed}) SELECT {', '.join(keys)}, "
                   f"{', '.join(f'sum({c})' for c in sums)} FROM {table} "
                   f"GROUP BY {', '.join(keys)}")
    op.drop_table(table)
    op.rename_table(f"{table}_new", table)


def upgrade() -> None:
    _swap("city_cells", _cells, _CELLS, True)
    _swap("city_gaps", _gaps, _GAPS, True)
    for table in ("city_cells", "city_gaps"):
        op.create_index(f"ix_{table}_unfolded", table, ["part"],
                        postgresql_where=sa.text("part <> 0"), sqlite_where=sa.text("part <> 0"))


def downgrade() -> None:
    for table in ("city_cells", "city_gaps"):
        op.drop_index(f"ix_{table}_unfolded", table_name=table)
    _swap("city_cells", _cells, _CELLS, False)
    _swap("city_gaps", _gaps, _GAPS, False)
