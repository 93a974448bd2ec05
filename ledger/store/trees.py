"""Stored trees in the database, in rows of :data:`CHUNK_NODES` nodes, so that a proof
reads the few rows its nodes are in rather than the whole tree.

A tree is OZ's heap buffer (:mod:`ledger.merkle`): ``2n - 1`` nodes of 32 bytes. Row
``chunk`` of a tree holds nodes ``chunk * 32`` to ``chunk * 32 + 31`` (1 KiB: small
enough to stay inline in a PostgreSQL row and to share SQLite pages). One BLOB per tree,
as before, needed the whole tree read for a tree's first proof (363 ms and ~200 MB at
3.1 M leaves) and could not hold more than ~15.6 M leaves (SQLite's 1 GB limit).

Three kinds of tree are stored this way, each in its own table keyed by its owner
(:class:`TreeRows`): batches' trees (:data:`BATCH_TREES`, by batch id), month
statements' trees (:data:`STATEMENT_TREES`, by month) and closed rankings' trees
(:data:`RANKING_TREES`, by campaign id).

A proof reads:

- the rows its siblings are in: one per level of the tree below the top five, which all
  sit in row 0 (their indices follow from the leaf's index, so one query fetches them);
- the rows a search for the leaf's position reads. Leaf hashes are keccak outputs, so
  their values are spread evenly; the search guesses the position by interpolation and
  falls back to halving whenever a guess after the first did not halve the range. Each
  probe reads one row and settles up to 32 positions; expected probes are a handful, the
  worst case about twice ``log2(n / 32)``.

Both are O(log n) rows of 1 KiB; ``tests/test_tree_store.py`` counts them. They are read
ahead, in one query, from the first guess: the rows around it and every sibling's row of
every position near it, so a proof is nearly always one round trip (about 17 rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Integer, Select, Table, any_, bindparam, select
from sqlalchemy.dialects import postgresql

from ledger import merkle
from ledger.errors import LedgerError
from ledger.lru import Lru
from ledger.store.bulk import insert_rows
from ledger.store.models import BatchTreeChunk, RankingTreeChunk, StatementTreeChunk

CHUNK_NODES = 32
CHUNK_BYTES = CHUNK_NODES * merkle.NODE
#: How far either side of a leaf's guessed position a search reads ahead, in rows: a
#: batch of 10,000 leaves needs about 3, one of 1,000,000 would need about 30.
READ_AHEAD_ROWS = 8

#: a cache of rows shared across readers: (root, chunk) -> that row's nodes
ChunkCache = Lru[tuple[bytes, int], bytes]
#: what a tree's rows are keyed by: a batch id, a month (yyyymm), a campaign id
Owner = int | str


@dataclass(frozen=True)
class TreeRows:
    """Where one kind of tree keeps its rows: a table of (owner, ``chunk``, ``nodes``),
    and what its owner is called in errors (``batch``, ``statement``, ``ranking``)."""

    table: Table
    owner: str
    what: str
    _read: Select[Any] = field(init=False, repr=False, compare=False)
    _read_array: Select[Any] = field(init=False, repr=False, compare=False)
    _read_all: Select[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner: Column[Owner] = self.table.c[self.owner]
        chunk, nodes = self.table.c.chunk, self.table.c.nodes
        object.__setattr__(self, "_read", select(chunk, nodes).where(
            owner == bindparam("owner"), chunk.in_(bindparam("chunks", expanding=True))))
        # PostgreSQL: the rows as one array parameter, so the statement's text is the same
        # whatever their number, and the server parses and plans it once a connection
        # (an IN list of each length is a new statement; psycopg prepares none of them)
        object.__setattr__(self, "_read_array", select(chunk, nodes).where(
            owner == bindparam("owner"),
            chunk == any_(bindparam("chunks", type_=postgresql.ARRAY(Integer)))))
        object.__setattr__(self, "_read_all", select(chunk, nodes)
                           .where(owner == bindparam("owner")).order_by(chunk))

    def missing(self, owner: Owner, what: str = "is missing rows") -> LedgerError:
        return LedgerError(f"{self.what} {owner}'s stored tree {what}", field=self.what)


BATCH_TREES = TreeRows(BatchTreeChunk.__table__, "batch_id", "batch")  # type: ignore[arg-type]
STATEMENT_TREES = TreeRows(StatementTreeChunk.__table__, "period", "statement")  # type: ignore[arg-type]
RANKING_TREES = TreeRows(RankingTreeChunk.__table__, "campaign_id", "ranking")  # type: ignore[arg-type]


def store_tree(conn: Connection, owner: Owner, nodes: bytes | bytearray | memoryview, *,
               rows: TreeRows = BATCH_TREES) -> int:
    """Write a tree buffer as ``owner``'s rows (in the caller's transaction); returns how
    many rows."""
    view = memoryview(nodes)
    if len(view) == 0 or len(view) % merkle.NODE:
        raise ValueError(f"a tree buffer of {len(view)} bytes is not whole nodes")
    count = -(-len(view) // CHUNK_BYTES)
    insert_rows(conn, rows.table, (rows.owner, "chunk", "nodes"),
                ((owner, c, bytes(view[c * CHUNK_BYTES : (c + 1) * CHUNK_BYTES]))
                 for c in range(count)))
    return count


def read_tree(conn: Connection, owner: Owner, leaf_count: int, *,
              rows: TreeRows = BATCH_TREES) -> bytes:
    """The whole tree buffer (for the OZ dump, which lists every node)."""
    parts = []
    for k, (chunk, nodes) in enumerate(conn.execute(rows._read_all, {"owner": owner})):
        if chunk != k:
            break
        parts.append(bytes(nodes))
    tree = b"".join(parts)
    if len(tree) != (2 * leaf_count - 1) * merkle.NODE:
        raise rows.missing(owner)
    return tree


class StoredTree:
    """One stored tree (a batch's by default), read a row at a time as a proof needs it.

    ``cache`` (shared, keyed by the root, which names a tree's content whatever database
    it came from) keeps recently read rows; ``rows_read`` and ``bytes_read`` count what
    this reader fetched from the database."""

    def __init__(self, conn: Connection, owner: Owner, leaf_count: int, *, root: bytes,
                 cache: ChunkCache | None = None, rows: TreeRows = BATCH_TREES) -> None:
        if leaf_count < 1:
            raise LedgerError(f"{rows.what} {owner} has no leaves", field=rows.what)
        self.conn, self.owner, self.n, self.root = conn, owner, leaf_count, root
        self.rows = rows
        self._cache = cache
        self._rows: dict[int, bytes] = {}
        self._unshared: set[int] = set()  # rows read ahead, not used yet
        self._read = rows._read if conn.dialect.name == "sqlite" else rows._read_array
        self.rows_read = 0
        self.bytes_read = 0
        self.queries = 0

    def _fetch(self, chunks: Iterable[int], *, share: bool = True) -> None:
        """Have ``chunks``' rows at hand: from the shared cache, else in one query. Rows
        read ahead of need (``share`` false) go to the shared cache only once used."""
        want = sorted({c for c in chunks if c not in self._rows})
        if self._cache is not None:
            for c in want:
                hit = self._cache.get((self.root, c))
                if hit is not None:
                    self._rows[c] = hit
            want = [c for c in want if c not in self._rows]
        if not want:
            return
        self.queries += 1
        for chunk, nodes in self.conn.execute(self._read, {"owner": self.owner, "chunks": want}):
            nodes = bytes(nodes)
            self._rows[chunk] = nodes
            self.rows_read += 1
            self.bytes_read += len(nodes)
            if self._cache is not None:
                if share:
                    self._cache.put((self.root, chunk), nodes)
                else:
                    self._unshared.add(chunk)
        if share and any(c not in self._rows for c in want):
            raise self.rows.missing(self.owner)

    def node(self, index: int) -> bytes:
        chunk, k = divmod(index, CHUNK_NODES)
        self._fetch((chunk,))
        row = self._rows[chunk]
        if chunk in self._unshared:  # read ahead, and now used: worth keeping
            self._unshared.discard(chunk)
            if self._cache is not None:
                self._cache.put((self.root, chunk), row)
        found = row[k * merkle.NODE : (k + 1) * merkle.NODE]
        if len(found) != merkle.NODE:
            raise self.rows.missing(self.owner, "is short")
        return found

    def _read_ahead(self, guess: int) -> None:
        """Read, in one query, the rows a search whose first guess is position ``guess``
        and its proof will most likely need: the leaf rows around the guess (leaves are
        sorted keccak values, so the true position is within about ``sqrt(n) / 2`` of it),
        and the rows of every sibling of every leaf in that range. Without it a proof made
        two to six queries (three on average, batches of 10,000), each a round trip on
        PostgreSQL (docs/benchmarks.md, "Cold proofs")."""
        n = self.n
        if self._cache is not None and (
                self.root, merkle.leaf_index(n, guess) // CHUNK_NODES) in self._cache:
            return  # its row was read lately: its path's rows, nearer the root, likely too
        spread = min(READ_AHEAD_ROWS * CHUNK_NODES,
                     2 * math.isqrt(guess * (n - guess) // n) + 16)
        # the leaves' tree indices run backwards (merkle.leaf_index)
        a = merkle.leaf_index(n, min(n - 1, guess + spread))
        b = merkle.leaf_index(n, max(0, guess - spread))
        chunks: set[int] = set()
        while b > 0:
            chunks.update(range(max(a - 1, 0) // CHUNK_NODES, (b + 1) // CHUNK_NODES + 1))
            a, b = (a - 1) // 2, (b - 1) // 2  # their parents, a range again
        chunks.add(0)
        self._fetch(chunks, share=False)

    def find_leaf(self, leaf: bytes) -> int | None:
        """The tree index of ``leaf`` (None if the tree does not hold it)."""
        n = self.n
        target = int.from_bytes(leaf, "big")
        # The leaf's position, if any, is in [lo, hi); the values just outside the range
        # are below and above it (bounds of the 256-bit range to begin with).
        lo, hi, below, above = 0, n, -1, 1 << 256
        self._read_ahead(_interpolate(target, lo, hi, below, above))
        halve, first_probe = False, True
        while lo < hi:
            guess = (lo + hi) // 2 if halve else _interpolate(target, lo, hi, below, above)
            # Every leaf position the guess's row holds, within [lo, hi): settled at once.
            chunk = merkle.leaf_index(n, guess) // CHUNK_NODES
            first = max(lo, merkle.leaf_index(n, min(chunk * CHUNK_NODES + CHUNK_NODES - 1,
                                                     2 * n - 2)))
            last = min(hi - 1, merkle.leaf_index(n, max(chunk * CHUNK_NODES, n - 1)))
            width = hi - lo
            low = int.from_bytes(self.node(merkle.leaf_index(n, first)), "big")
            high = int.from_bytes(self.node(merkle.leaf_index(n, last)), "big")
            if target < low:
                hi, above = first, low
            elif target > high:
                lo, below = last + 1, high
            else:
                return self._find_within(leaf, first, last)
            # The first probe cuts the range from one side only, and a miss there is a
            # leaf just past its row: guess again from the new bounds (bisection would
            # jump away from it, to a row not read ahead)
            halve = not first_probe and hi - lo > width // 2
            first_probe = False
        return None

    def _find_within(self, leaf: bytes, first: int, last: int) -> int | None:
        """Bisection over positions whose nodes are all in rows already read."""
        lo, hi = first, last + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.node(merkle.leaf_index(self.n, mid)) < leaf:
                lo = mid + 1
            else:
                hi = mid
        if lo <= last and self.node(merkle.leaf_index(self.n, lo)) == leaf:
            return merkle.leaf_index(self.n, lo)
        return None

    def proof(self, tree_index: int) -> list[bytes]:
        """The sibling path of leaf ``tree_index``: its rows in one query."""
        siblings = merkle.proof_indices(self.n, tree_index)
        self._fetch(i // CHUNK_NODES for i in siblings)
        return [self.node(i) for i in siblings]


def _interpolate(target: int, lo: int, hi: int, below: int, above: int) -> int:
    """Where in positions [lo, hi) the value ``target`` should sit, if the values there
    run evenly from just above ``below`` to just below ``above``."""
    return min(max(lo + (target - below) * (hi - lo) // (above - below), lo), hi - 1)
