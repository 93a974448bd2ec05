"""Month statements and green-credit credentials (#20): ``statements`` (one local month's
tree of account totals and its anchoring), ``statement_leaves`` (each account's encoded
leaf and its totals per area) and ``green_credentials`` (issued credentials: status index,
citizen, holder key's address, revocation). New tables only; nothing to fill.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "statements",
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("through_batch_id", sa.BigInteger(), nullable=False),
        sa.Column("through_seq", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("leaf_count", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("built_at", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("contract_address", sa.String(length=42), nullable=True),
        sa.Column("tx_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("anchored_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("period"),
    )
    op.create_table(
        "statement_leaves",
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("leaf", sa.LargeBinary(length=288), nullable=False),
        sa.Column("areas", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"]),
        sa.ForeignKeyConstraint(["period"], ["statements.period"]),
        sa.PrimaryKeyConstraint("period", "citizen_id"),
    )
    op.create_index("ix_statement_leaves_citizen", "statement_leaves", ["citizen_id", "period"])
    op.create_table(
        "green_credentials",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.LargeBinary(length=20), nullable=False),
        sa.Column("first_period", sa.Integer(), nullable=False),
        sa.Column("last_period", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("revocation_tx", sa.LargeBinary(length=32), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_green_credentials_citizen_id", "green_credentials", ["citizen_id"])


def downgrade() -> None:
    op.drop_index("ix_green_credentials_citizen_id", table_name="green_credentials")
    op.drop_table("green_credentials")
    op.drop_index("ix_statement_leaves_citizen", table_name="statement_leaves")
    op.drop_table("statement_leaves")
    op.drop_table("statements")
