"""Proof bundles and OZ dumps, made from the stored trees.

Bundles are built as :class:`~ledger.bundle.ProofBundle`, so the ledger only ever emits
the written format; :mod:`ledger.verification` checks them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ledger import merkle
from ledger.bundle import ProofBundle
from ledger.entries import find_entry
from ledger.errors import LedgerError, NotAnchored, NotFound
from ledger.leaf import LEAF_ENCODING, checksum_address, decode_leaf
from ledger.store.models import Batch, LedgerEntry
from ledger.store.trees import BATCH_TREES, ChunkCache, Owner, StoredTree, TreeRows, read_tree


class TreeCache:
    """Trees are immutable once stored; keep the most recently read rows of them in memory.

    A proof reads a few rows of its tree (:class:`~ledger.store.trees.StoredTree`: a
    batch's, a month statement's or a ranking's), never the whole tree, so a tree's first proof costs
    the same as any other. Rows are keyed by root, which names a tree's content whatever
    database (or table) it came from; ``size`` rows of 1 KiB each (4 MiB by default: the
    top rows of every tree stay in)."""

    def __init__(self, size: int = 4096) -> None:
        self._rows = ChunkCache(size)

    def tree(self, source: Session | Connection, owner: Owner, root: bytes, leaf_count: int, *,
             rows: TreeRows = BATCH_TREES) -> StoredTree:
        """A reader of ``owner``'s stored tree (batch ``owner``'s by default) on the
        connection (or the session's)."""
        return StoredTree(_connection(source), owner, leaf_count, root=root,
                          cache=self._rows, rows=rows)


def _connection(source: Session | Connection) -> Connection:
    return source.connection() if isinstance(source, Session) else source


default_tree_cache = TreeCache()

# An entry and the batch holding it (if any), in one query.
_ENTRY_AND_BATCH = find_entry(
    [LedgerEntry.citizen_id, LedgerEntry.leaf],
    [Batch.id.label("batch_id"), Batch.root, Batch.leaf_count, Batch.status, Batch.chain_id,
     Batch.contract_address, Batch.tx_hash, Batch.block_number])


@dataclass(frozen=True)
class EntryProof:
    """Whose entry it is, and its bundle; no bundle while its batch is not anchored
    (``pending`` says why)."""

    citizen_id: int
    bundle: dict[str, Any] | None
    pending: str | None = None


def entry_proof(source: Session | Connection, entry_id: bytes, *,
                cache: TreeCache = default_tree_cache) -> EntryProof:
    """The entry's owner and bundle, from the stored tree (no rebuilding), read on a
    connection (:meth:`~ledger.store.database.Database.reads`) or a session's."""
    conn = _connection(source)  # Core: no ORM entities, so none of the ORM's execute path
    row = conn.execute(_ENTRY_AND_BATCH, {"entry_id": entry_id}).first()
    if row is None:
        raise NotFound(f"no entry 0x{entry_id.hex()}", field="entry_id")
    if row.batch_id is None:
        return EntryProof(row.citizen_id, None, f"entry 0x{entry_id.hex()} is not sealed yet")
    if row.status != "anchored" or row.tx_hash is None:
        return EntryProof(row.citizen_id, None,
                          f"batch {row.batch_id} is {row.status}, not anchored yet")
    tree = cache.tree(conn, row.batch_id, row.root, row.leaf_count)
    leaf = merkle.hash_leaf(row.leaf)
    index = tree.find_leaf(leaf)
    if index is None:
        raise LedgerError(f"entry 0x{entry_id.hex()} is not in batch {row.batch_id}'s tree: "
                          "its stored leaf changed after sealing", field="entry_id")
    path = tree.proof(index)
    if merkle.root_from_proof(leaf, path) != row.root:  # the rows read are the tree sealed
        raise LedgerError(f"batch {row.batch_id}'s stored tree does not lead to its root",
                          field="batch")
    bundle = ProofBundle(
        entry_id=entry_id, values=decode_leaf(row.leaf),
        proof=tuple(path), root=row.root, batch_id=row.batch_id,
        chain_id=row.chain_id, contract=checksum_address(row.contract_address),
        tx_hash=row.tx_hash, block_number=row.block_number, status="anchored")
    return EntryProof(row.citizen_id, bundle.to_json())


def proof_bundle(source: Session | Connection, entry_id: bytes, *,
                 cache: TreeCache = default_tree_cache) -> dict[str, Any]:
    """The bundle for one entry; :class:`NotAnchored` while its batch is not anchored."""
    proof = entry_proof(source, entry_id, cache=cache)
    if proof.bundle is None:
        raise NotAnchored(proof.pending or "not anchored yet", field="entry_id")
    return proof.bundle


def write_oz_dump(session: Session, batch_id: int, out: IO[str]) -> int:
    """Write batch ``batch_id`` as OZ's ``StandardMerkleTree`` dump; returns leaf count.

    ``values`` come in entry order, so keccak256 of ``tree[v.treeIndex]`` for each value
    in turn, concatenated, is the batch's anchored content hash."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}", field="batch_id")
    n = batch.leaf_count
    tree = read_tree(session.connection(), batch.id, n)  # the dump lists every node
    if merkle.root(tree) != batch.root:
        raise LedgerError(f"batch {batch.id}'s stored tree is not its root", field="batch")
    index_of = {merkle.node(tree, i): i for i in range(n - 1, 2 * n - 1)}
    out.write('{"format":"standard-v1","leafEncoding":')
    out.write(json.dumps(list(LEAF_ENCODING)))
    out.write(',"tree":[')
    out.write(",".join(f'"0x{merkle.node(tree, i).hex()}"' for i in range(2 * n - 1)))
    out.write('],"values":[')
    rows = session.execute(select(LedgerEntry.leaf)
                           .where(LedgerEntry.seq.between(batch.first_seq, batch.last_seq))
                           .order_by(LedgerEntry.seq)).scalars()
    for k, encoded in enumerate(rows):
        item = {"value": decode_leaf(encoded).to_json(),
                "treeIndex": index_of[merkle.hash_leaf(encoded)]}
        out.write(("," if k else "") + json.dumps(item, separators=(",", ":")))
    out.write("]}\n")
    return n
