"""Building a batch's tree from the database with forked worker processes, each on its own
connection: the same leaves as one process reads, and the parent's pool still works."""

from __future__ import annotations

import os
import random

import pytest
from sqlalchemy import func, insert, select

from ledger import batch_builder, merkle
from ledger.batch_builder import build_tree_from_db
from ledger.store.database import Database
from ledger.store.models import LedgerEntry

FORKS_ABOVE = 50_000  # batch_builder reads a seq range narrower than this in one process


def test_forked_workers_read_the_same_leaves_as_one_process(db: Database, make_citizen) -> None:
    citizen = make_citizen()
    # A few hundred entries spread over a seq range wide enough to fork (seq may have gaps).
    last = FORKS_ABOVE + 10_000
    seqs = list(range(1, last + 1, 199)) + [last]
    rows = [{"seq": q, "entry_id": os.urandom(32), "citizen_id": citizen.id, "kind": 1,
             "behaviour": "CYCLING", "quantity": 1, "reduction_grams": 1, "points": 1,
             "methodology": 1, "occurred_at": q, "record_hash": bytes(32),
             "partner_address": bytes(20), "leaf": os.urandom(352)} for q in seqs]
    with db.engine.begin() as conn:
        conn.execute(insert(LedgerEntry), rows)
    one = build_tree_from_db(db.engine, 1, last, workers=1)
    forked = build_tree_from_db(db.engine, 1, last, workers=2)
    assert one is not None and one.leaf_count == len(seqs)
    assert forked == one
    with db.session() as s:  # the parent's pooled connections survived the children
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == len(seqs)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64, 1000, 4097])
def test_inner_nodes_hashed_by_forked_workers_equal_one_process(monkeypatch, n: int) -> None:
    """The subtrees split across workers (into shared memory) make OZ's tree, for full
    and for ragged bottom levels."""
    monkeypatch.setattr(batch_builder, "PARALLEL_INNER_ABOVE", 0)  # fork at any size
    rng = random.Random(n)
    hashes = b"".join(rng.randbytes(32) for _ in range(n))
    leaves = sorted(hashes[i : i + 32] for i in range(0, len(hashes), 32))
    expected = merkle.build_tree(leaves)
    for workers in (1, 2, 3):
        built = batch_builder.tree_from_leaf_hashes(hashes, workers=workers)
        assert bytes(built.nodes) == expected, workers
        assert built.root == merkle.root(expected) and built.leaf_count == n
