"""Proof bundles: made from the stored tree, checked against nothing but the chain.

A bundle is one self-contained JSON object. :func:`verify_bundle` reads it top to
bottom, checks each claim in order and raises one :class:`VerificationError` naming
the claim that failed.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import merkle
from ledger.anchoring import ChainReader
from ledger.entries import find_entry, sealed_through
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound, VerificationError
from ledger.leaf import LEAF_ENCODING, decode_leaf, leaf_values_from_json
from ledger.models import Batch, BatchTree, LedgerEntry

BUNDLE_FORMAT = "carbon-ledger-proof-v1"


class NotAnchored(Conflict):
    """The entry exists but its batch is not (yet) anchored."""

    code = "not-anchored"


class TreeCache:
    """Trees are immutable once sealed; keep the few most recently used in memory.

    Keyed by root, which names a tree's content whatever database it came from."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._trees: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = Lock()

    def get(self, session: Session, batch_id: int, root: bytes) -> bytes:
        with self._lock:
            if root in self._trees:
                self._trees.move_to_end(root)
                return self._trees[root]
        nodes = session.scalar(select(BatchTree.nodes).where(BatchTree.batch_id == batch_id))
        if nodes is None or merkle.root(nodes) != root:
            raise LedgerError(f"batch {batch_id}'s stored tree is missing or not its root",
                              field="batch")
        with self._lock:
            self._trees[root] = bytes(nodes)
            while len(self._trees) > self._size:
                self._trees.popitem(last=False)
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


def entry_proof(session: Session, entry_id: bytes, *, cache: TreeCache = _default_cache,
                require_anchored: bool = True) -> EntryProof:
    """The entry's owner and bundle, from the stored tree (no rebuilding)."""
    # Core, on the session's connection: no ORM entities, so none of the ORM's execute path
    row = session.connection().execute(_ENTRY_AND_BATCH, {
        "entry_id": entry_id, "sealed_through": sealed_through(session)}).first()
    if row is None:
        raise NotFound(f"no entry 0x{entry_id.hex()}", field="entry_id")
    if row.batch_id is None:
        return EntryProof(row.citizen_id, None, f"entry 0x{entry_id.hex()} is not sealed yet")
    if require_anchored and row.status != "anchored":
        return EntryProof(row.citizen_id, None,
                          f"batch {row.batch_id} is {row.status}, not anchored yet")
    tree = cache.get(session, row.batch_id, row.root)
    index = merkle.find_leaf(tree, merkle.hash_leaf(row.leaf))
    if index is None:
        raise LedgerError(f"entry 0x{entry_id.hex()} is not in batch {row.batch_id}'s tree: "
                          "its stored leaf changed after sealing", field="entry_id")
    return EntryProof(row.citizen_id, {
        "format": BUNDLE_FORMAT,
        "entryId": "0x" + entry_id.hex(),
        "values": decode_leaf(row.leaf).to_json(),
        "leafEncoding": list(LEAF_ENCODING),
        "proof": ["0x" + p.hex() for p in merkle.inclusion_proof(tree, index)],
        "root": "0x" + row.root.hex(),
        "batchId": row.batch_id,
        "chainId": row.chain_id,
        "contract": row.contract_address,
        "txHash": "0x" + row.tx_hash.hex() if row.tx_hash else None,
        "blockNumber": row.block_number,
        "status": row.status,
    })


def proof_bundle(session: Session, entry_id: bytes, *, cache: TreeCache = _default_cache,
                 require_anchored: bool = True) -> dict[str, Any]:
    """The bundle for one entry; :class:`NotAnchored` while its batch is not anchored."""
    proof = entry_proof(session, entry_id, cache=cache, require_anchored=require_anchored)
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


@dataclass(frozen=True)
class Verdict:
    entry_id: str
    batch_id: int
    root: str
    tx_hash: str
    block_number: int
    chain_id: int
    confirmations: int

    def line(self) -> str:
        return (f"OK: entry {self.entry_id} is in batch {self.batch_id} (root {self.root}), "
                f"anchored by tx {self.tx_hash} in block {self.block_number} on chain "
                f"{self.chain_id}, {self.confirmations} confirmation(s)")


def _field(bundle: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = bundle.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise VerificationError(f"missing or malformed {name!r}", field=name)
    return value


def _hex32(bundle: dict[str, Any], name: str) -> bytes:
    text = _field(bundle, name, str)
    try:
        value = bytes.fromhex(text[2:]) if text.startswith("0x") else b""
    except ValueError:
        value = b""
    if len(value) != 32:
        raise VerificationError(f"{name!r} is not 0x + 64 hex digits", field=name)
    return value


def verify_bundle(bundle: Any, reader: ChainReader) -> Verdict:
    """Check a bundle against the chain; raise :class:`VerificationError` at the first lie."""
    if not isinstance(bundle, dict):
        raise VerificationError("a bundle is a JSON object", field="bundle")
    if bundle.get("leafEncoding") != list(LEAF_ENCODING):
        raise VerificationError("unexpected leafEncoding", field="leafEncoding")
    try:
        values = leaf_values_from_json(bundle.get("values"))  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise VerificationError(f"bad leaf value: {exc.message}", field=exc.field) from exc
    proof_items = _field(bundle, "proof", list)
    proof = [_hex32({"proof item": p}, "proof item") for p in proof_items]
    claimed_root, tx_hash = _hex32(bundle, "root"), _hex32(bundle, "txHash")
    batch_id = _field(bundle, "batchId", int)
    block_number = _field(bundle, "blockNumber", int)
    chain_id = _field(bundle, "chainId", int)

    contract = _field(bundle, "contract", str)
    if contract.lower() != reader.contract_address.lower():
        raise VerificationError(f"the bundle names contract {contract}, checking against "
                                f"{reader.contract_address}", field="contract")
    leaf = values.leaf_hash()
    computed = merkle.root_from_proof(leaf, proof)
    if computed != claimed_root:
        raise VerificationError(f"the values and proof fold to 0x{computed.hex()}, but the bundle "
                                f"claims root 0x{claimed_root.hex()}", field="values")
    if reader.chain_id != chain_id:
        raise VerificationError(f"the node serves chain {reader.chain_id}, the bundle names "
                                f"chain {chain_id}", field="chainId")
    anchored = reader.anchored_batch(batch_id)
    if anchored is None:
        raise VerificationError(f"the contract has no batch {batch_id}", field="batchId")
    if anchored.root != computed:
        raise VerificationError(f"batch {batch_id} is anchored with root 0x{anchored.root.hex()}, "
                                f"not 0x{computed.hex()}", field="root")
    receipt = reader.receipt(tx_hash)
    if receipt is None:
        raise VerificationError(f"no transaction 0x{tx_hash.hex()} on chain {chain_id}",
                                field="txHash")
    if not receipt.succeeded:
        raise VerificationError(f"transaction 0x{tx_hash.hex()} reverted", field="txHash")
    if (receipt.to or "").lower() != reader.contract_address.lower():
        raise VerificationError(f"transaction 0x{tx_hash.hex()} was sent to {receipt.to}, not "
                                f"the contract {reader.contract_address}", field="txHash")
    if receipt.block_number != block_number:
        raise VerificationError(f"transaction 0x{tx_hash.hex()} is in block "
                                f"{receipt.block_number}, not {block_number}", field="blockNumber")
    if not any(e.batch_id == batch_id and e.root == computed
               for e in reader.anchor_events(tx_hash)):
        raise VerificationError(f"transaction 0x{tx_hash.hex()} did not anchor batch {batch_id}",
                                field="txHash")
    if not reader.verify_on_chain(batch_id, leaf, proof):
        raise VerificationError("the contract's verify() rejects the proof", field="proof")
    return Verdict("0x" + values.entry_id.hex(), batch_id, "0x" + computed.hex(),
                   "0x" + tx_hash.hex(), block_number, chain_id,
                   reader.confirmations(block_number))
