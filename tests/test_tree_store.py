"""Sealed trees stored in rows (#24): a proof reads O(log n) rows of its batch's tree and
equals the proof from the whole tree in memory; the migration cuts old one-BLOB trees
into rows and back."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, insert, select

from ledger import merkle
from ledger.store.database import Database
from ledger.store.models import Batch, BatchTreeChunk
from ledger.store.schema import alembic_config
from ledger.store.trees import (
    CHUNK_BYTES,
    CHUNK_NODES,
    RANKING_TREES,
    READ_AHEAD_ROWS,
    STATEMENT_TREES,
    ChunkCache,
    StoredTree,
    read_tree,
    store_tree,
)
from tests.test_migrations import engine_for, run_alembic


def random_tree(n: int, seed: int) -> tuple[list[bytes], bytes]:
    rng = random.Random(seed)
    leaves = sorted(merkle.hash_leaf(rng.randbytes(64)) for _ in range(n))
    return leaves, merkle.build_tree(leaves)


def add_batch(engine: Engine, batch_id: int, tree: bytes, *, table: str = "chunks") -> None:
    n = merkle.leaf_count(tree)
    with engine.begin() as conn:
        conn.execute(insert(Batch.__table__), [{
            "id": batch_id, "first_seq": batch_id * 10**6, "last_seq": batch_id * 10**6 + n - 1,
            "leaf_count": n, "root": merkle.root(tree), "content_hash": bytes(32),
            "status": "sealed", "sealed_at": int(time.time())}])
        if table == "chunks":
            store_tree(conn, batch_id, tree)
        else:  # the layout before the tree-chunks migration: one BLOB
            conn.execute(sa.text("INSERT INTO batch_trees (batch_id, nodes) VALUES (:b, :n)"),
                         {"b": batch_id, "n": tree})


@contextmanager
def tree_reads(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    """Every statement that reads ``batch_tree_chunks``, with its parameters."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if "batch_tree_chunks" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def bytes_returned(engine: Engine, statements: list[tuple[str, object]]) -> tuple[int, int]:
    """Run the recorded statements again, on the raw driver: (rows, bytes) they return.
    Counted here, not by the reader, so a reader that under-reports cannot pass."""
    rows = size = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            for row in cursor.fetchall():
                rows += 1
                size += sum(len(v) for v in row if isinstance(v, bytes | memoryview))
    finally:
        raw.close()
    return rows, size


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32, 33, 64, 65, 1000])
def test_stored_proofs_equal_the_in_memory_trees(db: Database, n: int) -> None:
    leaves, tree = random_tree(n, seed=n)
    add_batch(db.engine, 1, tree)
    with db.engine.connect() as conn:
        stored = StoredTree(conn, 1, n, root=merkle.root(tree))
        assert read_tree(conn, 1, n) == tree
        for leaf in leaves:
            index = merkle.find_leaf(tree, leaf)
            assert stored.find_leaf(leaf) == index
            assert stored.proof(index) == merkle.inclusion_proof(tree, index)
        # Not in the tree: below, above and between the leaves.
        for outsider in (b"\0" * 32, b"\xff" * 32, *(merkle.hash_leaf(os.urandom(64))
                                                    for _ in range(20))):
            assert StoredTree(conn, 1, n, root=merkle.root(tree)).find_leaf(outsider) is None


def proof_cost(db: Database, n: int, samples: int) -> tuple[int, int, float, float]:
    """(most rows, most bytes, mean rows, mean queries) one cold proof reads, over
    ``samples`` leaves."""
    leaves, tree = random_tree(n, seed=7 * n)
    add_batch(db.engine, n, tree)
    worst_rows = worst_bytes = total = queries = 0
    for leaf in random.Random(n).sample(leaves, samples):
        with db.engine.connect() as conn, tree_reads(db.engine) as statements:
            stored = StoredTree(conn, n, n, root=merkle.root(tree))  # no cache: cold
            index = stored.find_leaf(leaf)
            assert index is not None
            assert stored.proof(index) == merkle.inclusion_proof(tree, index)
        rows, size = bytes_returned(db.engine, statements)
        assert (rows, size) == (stored.rows_read, stored.bytes_read)
        worst_rows, worst_bytes = max(worst_rows, rows), max(worst_bytes, size)
        total += rows
        queries += len(statements)
    return worst_rows, worst_bytes, total / samples, queries / samples


def test_a_proof_reads_log_n_rows_of_the_tree_in_one_query(db: Database) -> None:
    small, large = 1_000, 30_000
    for n in (small, large):
        worst_rows, worst_bytes, mean, queries = proof_cost(db, n, samples=60)
        depth = math.ceil(math.log2(n))
        # The path: one row per level below row 0; the search: at most two per halving;
        # the read-ahead: up to READ_AHEAD_ROWS either side at the leaves' level, then
        # halving as it goes up (two more a level at most, for the ends).
        read_ahead = 2 * (2 * READ_AHEAD_ROWS + 2) + 2 * depth
        bound = (depth - int(math.log2(CHUNK_NODES)) + 1) + 2 * (depth - 4) + 2 + read_ahead
        assert worst_rows <= bound, (n, worst_rows, bound)
        assert worst_bytes <= bound * CHUNK_BYTES
        if n == large:  # far from the whole tree (1.9 MB)
            assert worst_bytes * 25 < (2 * n - 1) * merkle.NODE, worst_bytes
        # The read-ahead holds the leaf's row and its path nearly always: one round trip.
        assert queries <= 1.2, (n, queries)
        assert mean <= 2 * depth + 6, (n, mean)


def test_rows_read_ahead_are_shared_only_once_used(db: Database) -> None:
    """Rows a proof read ahead and never used stay out of the cache every reader shares,
    where they would push out the rows near the root that every proof uses."""
    n = 20_000
    leaves, tree = random_tree(n, seed=11)
    add_batch(db.engine, 1, tree)
    used: list[int] = []

    class Recording(StoredTree):
        def node(self, index: int) -> bytes:
            used.append(index)
            return super().node(index)

    cache = ChunkCache(10_000)
    with db.engine.connect() as conn:
        for leaf in random.Random(5).sample(leaves, 20):
            stored = Recording(conn, 1, n, root=merkle.root(tree), cache=cache)
            index = stored.find_leaf(leaf)
            assert index is not None
            assert stored.proof(index) == merkle.inclusion_proof(tree, index)
    root = merkle.root(tree)
    kept = {chunk for chunk in range(2 * n // CHUNK_NODES + 1) if (root, chunk) in cache}
    assert kept == {i // CHUNK_NODES for i in used}


def test_a_missing_row_is_an_error_not_a_wrong_proof(db: Database) -> None:
    leaves, tree = random_tree(200, seed=3)
    add_batch(db.engine, 1, tree)
    index = merkle.find_leaf(tree, leaves[17])
    assert index is not None
    gone = merkle.proof_indices(200, index)[-1] // CHUNK_NODES  # the row near the root
    with db.engine.begin() as conn:
        conn.execute(sa.delete(BatchTreeChunk).where(BatchTreeChunk.chunk == gone))
    with db.engine.connect() as conn:
        with pytest.raises(Exception, match="missing rows"):
            StoredTree(conn, 1, 200, root=merkle.root(tree)).proof(index)
        with pytest.raises(Exception, match="missing rows"):
            read_tree(conn, 1, 200)


def tree_chunks_revision(name: str = "tree_chunks.py") -> tuple[str, str]:
    """The migration whose file is ``NNNN_<name>``, and the one before it."""
    scripts = ScriptDirectory.from_config(alembic_config())
    [mine] = [s for s in scripts.walk_revisions()
              if os.path.basename(s.path).split("_", 1)[1] == name]
    assert isinstance(mine.down_revision, str)
    return mine.revision, mine.down_revision


def test_the_migration_cuts_stored_trees_into_rows_and_back(empty_db_url: str) -> None:
    revision, before = tree_chunks_revision()
    trees = {1: random_tree(1, seed=1)[1], 2: random_tree(5_000, seed=2)[1],
             3: random_tree(33, seed=3)[1]}
    with engine_for(empty_db_url) as engine:
        run_alembic(engine, "upgrade", before)
        for batch_id, tree in trees.items():
            add_batch(engine, batch_id, tree, table="blob")
        run_alembic(engine, "upgrade", revision)
        with engine.connect() as conn:
            for batch_id, tree in trees.items():
                n = merkle.leaf_count(tree)
                assert read_tree(conn, batch_id, n) == tree
                rows = conn.execute(select(sa.func.count()).select_from(BatchTreeChunk)
                                    .where(BatchTreeChunk.batch_id == batch_id)).scalar()
                assert rows == math.ceil(len(tree) / CHUNK_BYTES)
                stored = StoredTree(conn, batch_id, n, root=merkle.root(tree))
                for i in (n - 1, 2 * n - 2, n + n // 2 - 1):
                    leaf = merkle.node(tree, i)
                    assert stored.find_leaf(leaf) == i
                    assert stored.proof(i) == merkle.inclusion_proof(tree, i)
        run_alembic(engine, "downgrade", before)
        with engine.connect() as conn:
            kept = dict(conn.execute(sa.text("SELECT batch_id, nodes FROM batch_trees")).all())
        assert {k: bytes(v) for k, v in kept.items()} == trees


def test_the_migration_cuts_statement_trees_into_rows_and_back(empty_db_url: str) -> None:
    """Month statements' trees (one BLOB a month before) are cut into rows as batches' are,
    and read back by the same reader."""
    revision, before = tree_chunks_revision("statement_tree_chunks.py")
    trees = {202610: random_tree(1, seed=4)[1], 202611: random_tree(3_000, seed=5)[1],
             202612: random_tree(32, seed=6)[1]}
    with engine_for(empty_db_url) as engine:
        run_alembic(engine, "upgrade", before)
        with engine.begin() as conn:
            for period, tree in trees.items():
                conn.execute(sa.text(
                    "INSERT INTO statements (period, through_batch_id, through_seq, period_end, "
                    "leaf_count, root, content_hash, nodes, status, built_at) VALUES (:p, 0, 0, "
                    "0, :n, :r, :c, :nodes, 'built', 0)"),
                    {"p": period, "n": merkle.leaf_count(tree), "r": merkle.root(tree),
                     "c": bytes(32), "nodes": tree})
        run_alembic(engine, "upgrade", revision)
        with engine.connect() as conn:
            assert "nodes" not in {c["name"] for c in sa.inspect(conn).get_columns("statements")}
            for period, tree in trees.items():
                n = merkle.leaf_count(tree)
                assert read_tree(conn, period, n, rows=STATEMENT_TREES) == tree
                stored = StoredTree(conn, period, n, root=merkle.root(tree), rows=STATEMENT_TREES)
                for i in (n - 1, 2 * n - 2, n + n // 2 - 1):
                    assert stored.find_leaf(merkle.node(tree, i)) == i
                    assert stored.proof(i) == merkle.inclusion_proof(tree, i)
        run_alembic(engine, "downgrade", before)
        with engine.connect() as conn:
            kept = dict(conn.execute(sa.text("SELECT period, nodes FROM statements")).all())
        assert {k: bytes(v) for k, v in kept.items()} == trees


def test_the_migration_cuts_ranking_trees_into_rows_and_back(empty_db_url: str) -> None:
    """Closed rankings' trees (one BLOB a ranking before) are cut into rows as batches'
    and statements' are, and read back by the same reader."""
    revision, before = tree_chunks_revision("ranking_tree_chunks.py")
    trees = {"season-a": random_tree(1, seed=7)[1], "season-b": random_tree(2_000, seed=8)[1],
             "season-c": random_tree(33, seed=9)[1]}
    with engine_for(empty_db_url) as engine:
        run_alembic(engine, "upgrade", before)
        with engine.begin() as conn:
            for k, (campaign_id, tree) in enumerate(trees.items()):
                key = bytes([k + 1]) * 32
                conn.execute(sa.text(
                    "INSERT INTO campaigns (key, campaign_id, version, rules, rules_hash, "
                    "starts_at, ends_at, status) VALUES (:k, :c, 1, '{}', :h, 0, 1, 'published')"),
                    {"k": key, "c": campaign_id, "h": bytes(32)})
                conn.execute(sa.text(
                    "INSERT INTO campaign_rankings (campaign_id, campaign_key, through_batch_id, "
                    "leaf_count, root, content_hash, nodes, status, closed_at) VALUES (:c, :k, 0, "
                    ":n, :r, :h, :nodes, 'closed', 0)"),
                    {"c": campaign_id, "k": key, "n": merkle.leaf_count(tree),
                     "r": merkle.root(tree), "h": bytes(32), "nodes": tree})
        run_alembic(engine, "upgrade", revision)
        with engine.connect() as conn:
            assert "nodes" not in {c["name"] for c in
                                   sa.inspect(conn).get_columns("campaign_rankings")}
            for campaign_id, tree in trees.items():
                n = merkle.leaf_count(tree)
                assert read_tree(conn, campaign_id, n, rows=RANKING_TREES) == tree
                stored = StoredTree(conn, campaign_id, n, root=merkle.root(tree),
                                    rows=RANKING_TREES)
                for i in (n - 1, 2 * n - 2, n + n // 2 - 1):
                    assert stored.find_leaf(merkle.node(tree, i)) == i
                    assert stored.proof(i) == merkle.inclusion_proof(tree, i)
        run_alembic(engine, "downgrade", before)
        with engine.connect() as conn:
            kept = dict(conn.execute(sa.text(
                "SELECT campaign_id, nodes FROM campaign_rankings")).all())
        assert {k: bytes(v) for k, v in kept.items()} == trees
