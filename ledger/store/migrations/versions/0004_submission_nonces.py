"""Signed submissions, version 2: each keeps the nonce and deadline its partner signed,
and a partner's nonce is used once (a unique index on partner and nonce). Submissions
received before are kept as they are, without either (NULL, which the index allows
many times).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UNIQUE = "uq_submissions_partner_nonce"


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("nonce", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("deadline", sa.BigInteger(), nullable=True))
    op.create_index(_UNIQUE, "submissions", ["partner_id", "nonce"], unique=True)


def downgrade() -> None:
    op.drop_index(_UNIQUE, table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("deadline")
        batch.drop_column("nonce")
