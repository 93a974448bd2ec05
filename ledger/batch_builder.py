"""Build a batch's tree from the database, fast: leaves hashed on every core.

The entries of a batch are a contiguous range of ``seq``. Workers (forked processes,
each with its own database connection) read slices of that range and return their
leaf hashes in entry order; the parent sorts them (numpy, bytewise, as OZ sorts) and
hashes the inner nodes. The content hash commits to the leaf hashes in entry order.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, create_engine, select

from ledger import merkle
from ledger.hashing import keccak
from ledger.store.models import LedgerEntry

_READ_CHUNK = 20_000


@dataclass(frozen=True)
class BuiltTree:
    nodes: bytes
    leaf_count: int
    root: bytes
    content_hash: bytes


def hash_leaves(engine: Engine, first_seq: int, last_seq: int) -> bytes:
    """Leaf hashes of the entries with ``first_seq <= seq <= last_seq``, in seq order."""
    out = bytearray()
    query = (select(LedgerEntry.leaf)
             .where(LedgerEntry.seq >= first_seq, LedgerEntry.seq <= last_seq)
             .order_by(LedgerEntry.seq))
    inner = merkle.keccak
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=_READ_CHUNK).execute(query)
        for rows in result.scalars().partitions():
            out += b"".join([inner(inner(leaf)) for leaf in rows])
    return bytes(out)


def _worker_hash_leaves(url: str, first_seq: int, last_seq: int) -> bytes:
    engine = create_engine(url)  # never the parent's pooled connections
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


def tree_from_leaf_hashes(hashes: bytes) -> BuiltTree:
    """Sort the leaf hashes bytewise and lay the OZ tree over them."""
    n = len(hashes) // merkle.NODE
    ordered = np.frombuffer(hashes, dtype="S32").copy()
    ordered.sort()  # fixed-width bytes compare as memcmp: OZ's ascending uint256 order
    flat = ordered.tobytes()
    tree = merkle.build_tree([flat[i : i + merkle.NODE] for i in range(0, len(flat), merkle.NODE)])
    return BuiltTree(tree, n, merkle.root(tree), keccak(hashes))


def build_tree_from_db(engine: Engine, first_seq: int, last_seq: int, *,
                       workers: int = 2) -> BuiltTree | None:
    hashes = leaf_hashes(engine, first_seq, last_seq, workers=workers)
    return tree_from_leaf_hashes(hashes) if hashes else None
