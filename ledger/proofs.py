"""Proof bundles and OZ dumps, made from the stored trees.

Bundles are built as :class:`~ledger.bundle.ProofBundle`, so the ledger only ever emits
the written format; :mod:`ledger.verification` checks them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any

from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import merkle
from ledger.bundle import ProofBundle
from ledger.entries import find_entry, sealed_through
from ledger.errors import LedgerError, NotAnchored, NotFound
from ledger.leaf import LEAF_ENCODING, decode_leaf
from ledger.lru import Lru
from ledger.store.models import Batch, BatchTree, LedgerEntry


class TreeCache:
    """Trees are immutable once sealed; keep the few most recently used in memory.

    Keyed by root, which names a tree's content whatever database it came from."""

    def __init__(self, size: int = 4) -> None:
        self._trees = Lru[bytes, bytes](size)

    def get(self, session: Session, batch_id: int, root: bytes) -> bytes:
        cached = self._trees.get(root)
        if cached is not None:
            return cached
        nodes = session.scalar(select(BatchTree.nodes).where(BatchTree.batch_id == batch_id))
        if nodes is None or merkle.root(nodes) != root:
            raise LedgerError(f"batch {batch_id}'s stored tree is missing or not its root",
                              field="batch")
        self._trees.put(root, bytes(nodes))
        return bytes(nodes)


_default_cache = TreeCache()

# An entry and the batch holding it (if any), in one query.
_ENTRY_AND_BATCH = find_entry(
    [LedgerEntry.citizen_id, LedgerEntry.leaf],
    [Batch.id.label("batch_id"), Batch.root, Batch.status, Batch.chain_id,
     Batch.contract_address, Batch.tx_hash, Batch.block_number])


@dataclass(frozen=True)
class EntryProof:
    """Whose entry it is, and its bundle; no bundle while its batch is not anchored
    (``pending`` says why)."""

    citizen_id: int
    bundle: dict[str, Any] | None
    pending: str | None = None


def entry_proof(session: Session, entry_id: bytes, *,
                cache: TreeCache = _default_cache) -> EntryProof:
    """The entry's owner and bundle, from the stored tree (no rebuilding)."""
    # Core, on the session's connection: no ORM entities, so none of the ORM's execute path
    row = session.connection().execute(_ENTRY_AND_BATCH, {
        "entry_id": entry_id, "sealed_through": sealed_through(session)}).first()
    if row is None:
        raise NotFound(f"no entry 0x{entry_id.hex()}", field="entry_id")
    if row.batch_id is None:
        return EntryProof(row.citizen_id, None, f"entry 0x{entry_id.hex()} is not sealed yet")
    if row.status != "anchored" or row.tx_hash is None:
        return EntryProof(row.citizen_id, None,
                          f"batch {row.batch_id} is {row.status}, not anchored yet")
    tree = cache.get(session, row.batch_id, row.root)
    index = merkle.find_leaf(tree, merkle.hash_leaf(row.leaf))
    if index is None:
        raise LedgerError(f"entry 0x{entry_id.hex()} is not in batch {row.batch_id}'s tree: "
                          "its stored leaf changed after sealing", field="entry_id")
    bundle = ProofBundle(
        entry_id=entry_id, values=decode_leaf(row.leaf),
        proof=tuple(merkle.inclusion_proof(tree, index)), root=row.root, batch_id=row.batch_id,
        chain_id=row.chain_id, contract=to_checksum_address(row.contract_address),
        tx_hash=row.tx_hash, block_number=row.block_number, status="anchored")
    return EntryProof(row.citizen_id, bundle.to_json())


def proof_bundle(session: Session, entry_id: bytes, *,
                 cache: TreeCache = _default_cache) -> dict[str, Any]:
    """The bundle for one entry; :class:`NotAnchored` while its batch is not anchored."""
    proof = entry_proof(session, entry_id, cache=cache)
    if proof.bundle is None:
        raise NotAnchored(proof.pending or "not anchored yet", field="entry_id")
    return proof.bundle


def write_oz_dump(session: Session, batch_id: int, out: IO[str], *,
                  cache: TreeCache = _default_cache) -> int:
    """Write batch ``batch_id`` as OZ's ``StandardMerkleTree`` dump; returns leaf count.

    ``values`` come in entry order, so keccak256 of ``tree[v.treeIndex]`` for each value
    in turn, concatenated, is the batch's anchored content hash."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}", field="batch_id")
    tree = cache.get(session, batch.id, batch.root)
    n = batch.leaf_count
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
