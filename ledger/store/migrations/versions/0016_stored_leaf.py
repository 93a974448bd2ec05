"""An entry's leaf is stored without its ABI padding (``ledger.leaf.store_leaf``): 185
bytes instead of 352, about a tenth of an entry's bytes on disk all included (#19).
Reads give the ABI form back (``ledger.store.models.StoredLeaf``), so nothing that hashes,
proves or shows a leaf changes.

Every canonical leaf is rewritten, a chunk of entries at a time; one that is not
canonical (its padding not zero: written by hand, never by the ledger) is left as it is,
and the audit still names it. The database's files keep their size until space is given
back: ``VACUUM`` on SQLite, ``VACUUM FULL ledger_entries`` on PostgreSQL (each rewrites
the table, so run it when the ledger is quiet); new entries reuse the freed pages anyway.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from ledger.leaf import ENCODED_SIZE, STORED_SIZE, expand_leaf, store_leaf
from ledger.store.bulk import update_column

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_CHUNK = 20_000


def _rewrite(length: int, change: Callable[[bytes], bytes]) -> None:
    """Every leaf of ``length`` bytes replaced by ``change`` of it, in chunks of seq."""
    conn = op.get_bind()
    after = -1
    while True:
        rows = conn.execute(sa.text(
            "SELECT seq, leaf FROM ledger_entries WHERE seq > :after ORDER BY seq LIMIT :n"),
            {"after": after, "n": _CHUNK}).all()
        if not rows:
            return
        after = rows[-1][0]
        changed = []
        for seq, leaf in rows:
            leaf = bytes(leaf)
            if len(leaf) == length:
                with contextlib.suppress(ValueError):  # not canonical: kept as it is
                    changed.append((seq, change(leaf)))
        if not changed:
            continue
        update_column(conn, "ledger_entries", "seq", "leaf", "bytea", changed)


def upgrade() -> None:
    _rewrite(ENCODED_SIZE, store_leaf)


def downgrade() -> None:
    _rewrite(STORED_SIZE, expand_leaf)
