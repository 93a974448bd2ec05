"""Build a batch's tree from the database, fast: leaves and inner nodes hashed on every core.

The entries of a batch are a contiguous range of ``seq``. Workers (forked processes,
each with its own database connection) read slices of that range and return their
leaf hashes in entry order; the parent sorts them (numpy, bytewise, as OZ sorts) and
lays them into the tree buffer. The inner nodes are hashed level by level: below a
split depth the tree is cut into subtrees (each a range of nodes at every level, so no
worker waits for another), hashed by forked workers straight into the buffer, which is
shared memory; the parent hashes the few levels above. The content hash commits to the
leaf hashes in entry order.
"""

from __future__ import annotations

import mmap
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, LargeBinary, select, type_coerce

from ledger import merkle
from ledger.hashing import keccak
from ledger.leaf import ENCODED_SIZE, STORED_PLACES, STORED_SIZE, expand_leaf
from ledger.store.database import make_engine
from ledger.store.models import LedgerEntry

_READ_CHUNK = 20_000


#: below this many leaves one process hashes the inner nodes (forking costs more)
PARALLEL_INNER_ABOVE = 100_000
#: subtrees per worker, so that one left with a shallower part does not idle
_SUBTREES_PER_WORKER = 8


@dataclass(frozen=True)
class BuiltTree:
    nodes: bytes | memoryview  # the heap buffer; a view of shared memory when built here
    leaf_count: int
    root: bytes
    content_hash: bytes


def hash_leaves(engine: Engine, first_seq: int, last_seq: int) -> bytes:
    """Leaf hashes of the entries with ``first_seq <= seq <= last_seq``, in seq order."""
    out = bytearray()
    # the stored form as it is (not StoredLeaf's expanding, one leaf at a time)
    query = (select(type_coerce(LedgerEntry.leaf, LargeBinary()))
             .where(LedgerEntry.seq >= first_seq, LedgerEntry.seq <= last_seq)
             .order_by(LedgerEntry.seq))
    inner = merkle.keccak
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # The driver's cursor, not SQLAlchemy rows: reading is a third of a leaf's
            # cost through rows, a tenth through the cursor (benchmarks.md, seal phases).
            cursor = conn.connection.cursor()
            try:
                cursor.execute("SELECT leaf FROM ledger_entries WHERE seq >= ? AND seq <= ? "
                               "ORDER BY seq", (first_seq, last_seq))
                while rows := cursor.fetchmany(_READ_CHUNK):
                    out += _hash_stored([leaf for (leaf,) in rows], inner)
            finally:
                cursor.close()
            return bytes(out)
        # PostgreSQL: SQLAlchemy streams through a server-side cursor, a chunk at a time.
        result = conn.execution_options(yield_per=_READ_CHUNK).execute(query)
        for rows in result.scalars().partitions():
            out += _hash_stored(rows, inner)
    return bytes(out)


def _hash_stored(leaves: Sequence[bytes], inner: Callable[[Any], bytes]) -> bytes:
    """The leaf hashes of leaves in their stored form (:func:`ledger.leaf.store_leaf`),
    expanded to their ABI form a chunk at a time by numpy: half what expanding each
    costs (docs/benchmarks.md, "Fewer bytes an entry"). A chunk with any other value is
    expanded one leaf at a time, as the column's type would."""
    n = len(leaves)
    if not all(len(leaf) == STORED_SIZE for leaf in leaves):
        return b"".join([inner(inner(expand_leaf(bytes(leaf)))) for leaf in leaves])
    stored = np.frombuffer(b"".join(leaves), np.uint8).reshape(n, STORED_SIZE)
    encoded = np.zeros((n, ENCODED_SIZE), np.uint8)
    for at, to, length in STORED_PLACES:
        encoded[:, to:to + length] = stored[:, at:at + length]
    view = encoded.data.cast("B")
    return b"".join([inner(inner(view[i:i + ENCODED_SIZE]))
                     for i in range(0, n * ENCODED_SIZE, ENCODED_SIZE)])


def _worker_hash_leaves(url: str, first_seq: int, last_seq: int) -> bytes:
    # its own engine, never the parent's pooled connections; made as every engine is
    # (make_engine: on PostgreSQL no JIT, which a million-row read's estimate would start)
    engine = make_engine(url)
    try:
        return hash_leaves(engine, first_seq, last_seq)
    finally:
        engine.dispose()


def _slices(first_seq: int, last_seq: int, parts: int) -> list[tuple[int, int]]:
    size = -(-(last_seq - first_seq + 1) // parts)
    return [(lo, min(lo + size - 1, last_seq)) for lo in range(first_seq, last_seq + 1, size)]


def leaf_hashes(engine: Engine, first_seq: int, last_seq: int, *, workers: int) -> bytes:
    """Leaf hashes in seq order, spread over ``workers`` processes when that can help."""
    url = engine.url.render_as_string(hide_password=False)
    in_memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    if workers <= 1 or in_memory or last_seq - first_seq < 50_000:
        return hash_leaves(engine, first_seq, last_seq)
    ctx = multiprocessing.get_context("fork")
    # A forked child inherits the parent's pooled connections (PostgreSQL sockets): it
    # forgets them unclosed, and reads through an engine of its own.
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=engine.dispose,
                             initargs=(False,)) as pool:
        parts = pool.map(_worker_hash_leaves, *zip(*[(url, lo, hi) for lo, hi in
                                                     _slices(first_seq, last_seq, workers)],
                                                    strict=True))
        return b"".join(parts)


def tree_from_leaf_hashes(hashes: bytes, *, workers: int = 1) -> BuiltTree:
    """Sort the leaf hashes bytewise and lay the OZ tree over them."""
    n = len(hashes) // merkle.NODE
    if n == 0:
        raise ValueError("a tree needs at least one leaf")
    ordered = np.frombuffer(hashes, dtype="S32").copy()
    ordered.sort()  # fixed-width bytes compare as memcmp: OZ's ascending uint256 order
    # Anonymous shared memory: forked workers write their subtrees' nodes into it.
    buf = mmap.mmap(-1, (2 * n - 1) * merkle.NODE)
    buf[(n - 1) * merkle.NODE :] = ordered[::-1].tobytes()  # OZ: the leaves last, reversed
    del ordered
    hash_inner_nodes(buf, n, workers=workers)
    tree = memoryview(buf)
    return BuiltTree(tree, n, merkle.root(tree), keccak(hashes))


def _hash_parents(buf: mmap.mmap, first: int, stop: int) -> None:
    """Nodes ``first`` .. ``stop - 1`` (one level) from their children, which are the
    contiguous nodes ``2 * first + 1`` .. ``2 * stop``."""
    size = merkle.NODE
    kids = buf[(2 * first + 1) * size : (2 * stop + 1) * size]
    out = []
    for j in range(0, len(kids), 2 * size):
        a, b = kids[j : j + size], kids[j + size : j + 2 * size]
        out.append(keccak(a + b) if a < b else keccak(b + a))
    buf[first * size : stop * size] = b"".join(out)


def _depth(index: int) -> int:
    return (index + 1).bit_length() - 1


def _hash_subtrees(buf: mmap.mmap, n: int, depth: int, first: int, stop: int) -> None:
    """Every inner node below nodes ``first`` .. ``stop - 1`` (all at ``depth``) and
    those nodes themselves, deepest level first. At ``d`` levels further down their
    descendants are the contiguous nodes ``(first + 1) * 2**d - 1`` .. ``(stop + 1) *
    2**d - 2``; only indices below ``n - 1`` are inner nodes."""
    inner = n - 1
    for d in range(_depth(inner - 1) - depth, -1, -1):
        lo, hi = (first + 1) * 2**d - 1, min((stop + 1) * 2**d - 1, inner)
        if lo < hi:
            _hash_parents(buf, lo, hi)


_SHARED: mmap.mmap | None = None  # the buffer a forked inner-node worker writes into


def _worker_hash_subtrees(n: int, depth: int, first: int, stop: int) -> None:
    assert _SHARED is not None
    _hash_subtrees(_SHARED, n, depth, first, stop)


def hash_inner_nodes(buf: mmap.mmap, n: int, *, workers: int = 1) -> None:
    """Fill nodes ``0 .. n - 2`` of a heap buffer whose leaves are in place."""
    global _SHARED
    if n < 2:
        return
    if workers <= 1 or n <= PARALLEL_INNER_ABOVE:
        _hash_subtrees(buf, n, 0, 0, 1)
        return
    # The split depth: enough subtrees to spread, all of them whole inner subtrees.
    depth = min((workers * _SUBTREES_PER_WORKER - 1).bit_length(), _depth(n - 2))
    first, stop = 2**depth - 1, 2 ** (depth + 1) - 1
    tasks = [(n, depth, i, i + 1) for i in range(first, stop)]
    _SHARED = buf
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            list(pool.map(_worker_hash_subtrees, *zip(*tasks, strict=True)))
    finally:
        _SHARED = None
    for d in range(depth - 1, -1, -1):  # the few levels above, here
        _hash_parents(buf, 2**d - 1, 2 ** (d + 1) - 1)


def build_tree_from_db(engine: Engine, first_seq: int, last_seq: int, *,
                       workers: int = 2) -> BuiltTree | None:
    hashes = leaf_hashes(engine, first_seq, last_seq, workers=workers)
    return tree_from_leaf_hashes(hashes, workers=workers) if hashes else None
