"""What the chain holds for a batch, against what the ledger says it anchored.

The contract stores only each batch's root; its leaf count and content hash are in the
``BatchAnchored`` event of the transaction that anchored it. :func:`anchored_batch` reads
both and holds them together (the event must come from a successful transaction sent to
the contract and name the root the state holds), so no figure rests on the operator's
word: a transaction hash from the ledger is only where to look first.

:func:`anchoring_receipt` is the one answer to "what does the chain hold for batch N":
the sealer asks it before sending, re-anchoring asks it for the anchored tail after a
reorg, and ``carbon-ledger chain check`` (:func:`chain_problems`) asks it for every
batch. Only reads: putting things right is the sealer's business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.anchoring import AnchoredBatch, ChainReader, TxReceipt
from ledger.errors import AnchorMismatch
from ledger.store.models import Batch


@dataclass(frozen=True)
class BatchProblem:
    batch_id: int
    problem: str


def differs_from_chain(batch: Batch, on_chain: AnchoredBatch) -> str | None:
    """How the chain's record of a batch (the root in the contract's state, the leaf count
    and content hash in its anchoring event) differs from the ledger's, or None."""
    if on_chain.root != batch.root:
        return f"root differs: chain 0x{on_chain.root.hex()}, ledger 0x{batch.root.hex()}"
    if on_chain.leaf_count != batch.leaf_count:
        return f"leaf count differs: chain {on_chain.leaf_count}, ledger {batch.leaf_count}"
    if on_chain.content_hash != batch.content_hash:
        return (f"content hash differs: chain 0x{on_chain.content_hash.hex()}, "
                f"ledger 0x{batch.content_hash.hex()}")
    return None


def anchor_in(reader: ChainReader, receipt: TxReceipt | None, batch_id: int,
              root: bytes) -> AnchoredBatch | None:
    """Batch ``batch_id`` as ``receipt`` shows it anchored with ``root`` (the root the
    contract's state holds), or None if that transaction did not: it is missing, reverted,
    was sent elsewhere, or carries no ``BatchAnchored`` of the contract for that batch."""
    if (receipt is None or not receipt.succeeded
            or (receipt.to or "").lower() != reader.contract_address.lower()):
        return None
    for event in reader.anchor_events(receipt.tx_hash):
        if event.batch_id == batch_id and event.root == root:
            return AnchoredBatch(batch_id, root, event.leaf_count, event.content_hash, receipt)
    return None


def anchored_batch(reader: ChainReader, batch_id: int, *,
                   look_first: bytes | None = None) -> AnchoredBatch | None:
    """Batch ``batch_id`` as the chain holds it: the root from the contract's state, the
    rest from its anchoring transaction (``look_first`` if that one anchored it, else the
    one the contract's logs name). None while the state holds no root for the id;
    :class:`AnchorMismatch` if no transaction to show for the root is found."""
    root = reader.anchored_root(batch_id)
    return None if root is None else _anchored_with(reader, batch_id, root, look_first)


def _anchored_with(reader: ChainReader, batch_id: int, root: bytes,
                   look_first: bytes | None) -> AnchoredBatch:
    if look_first is not None:
        found = anchor_in(reader, reader.receipt(look_first), batch_id, root)
        if found is not None:
            return found
    found = anchor_in(reader, reader.find_anchor_receipt(batch_id), batch_id, root)
    if found is None:
        raise AnchorMismatch(f"batch {batch_id} is on chain but its transaction was not found",
                             field="txHash")
    return found


def anchoring_receipt(reader: ChainReader, batch: Batch) -> TxReceipt | None:
    """The receipt of the transaction that anchored ``batch`` as the chain holds it now
    (the one the ledger recorded, or any other: an earlier attempt, a replacement's
    predecessor, the same transaction mined again after a reorg); None while the chain
    does not hold the batch. :class:`AnchorMismatch` if the chain holds other contents
    under its id, or holds it with no transaction to show for it."""
    root = reader.anchored_root(batch.id)
    if root is None:
        return None
    if root != batch.root:  # the state alone says so: no need to read a log
        raise AnchorMismatch(f"batch {batch.id} on chain: root differs: chain 0x{root.hex()}, "
                             f"ledger 0x{batch.root.hex()}", field="root")
    on_chain = _anchored_with(reader, batch.id, root, batch.tx_hash)
    problem = differs_from_chain(batch, on_chain)
    if problem:
        raise AnchorMismatch(f"batch {batch.id} on chain: {problem}", field="root")
    return on_chain.receipt


def batch_problem(reader: ChainReader, batch: Batch) -> str | None:
    """What is wrong with an ``anchored`` batch on chain: its root missing or different,
    or the anchoring transaction its proofs name gone or moved to another block."""
    return anchor_problem(lambda: anchoring_receipt(reader, batch), f"batch {batch.id} on chain: ",
                          tx_hash=batch.tx_hash, block_number=batch.block_number)


def anchor_problem(receipt_on_chain: Callable[[], TxReceipt | None], prefix: str, *,
                   tx_hash: bytes | None, block_number: int | None) -> str | None:
    """What is wrong with an anchor on chain (a batch's, a month statement's), or None:
    ``receipt_on_chain`` gives the receipt of the transaction that anchored it as the chain
    holds it now (None while missing; :class:`AnchorMismatch`, its message starting with
    ``prefix``, if the chain holds other contents); it must be the transaction and block
    the ledger recorded (``tx_hash``, ``block_number``), which the proofs name."""
    try:
        receipt = receipt_on_chain()
    except AnchorMismatch as exc:
        return exc.message.removeprefix(prefix)
    if receipt is None:
        return "missing on chain"
    if tx_hash is not None and receipt.tx_hash != tx_hash:
        return f"its anchoring transaction 0x{tx_hash.hex()} is not on chain"
    if receipt.block_number != block_number:
        return (f"its anchoring transaction is in block {receipt.block_number}, the ledger "
                f"says {block_number}")
    return None


def chain_problems(reader: ChainReader | None, batches: Sequence[Batch], *,
                   why_missing: str | None = None,
                   chain_tail: int | None = None) -> list[BatchProblem]:
    """Every ``anchored`` batch that the chain does not hold as the ledger says, and any
    batch the chain holds beyond the ledger's. With no ``reader`` (no contract there),
    every anchored batch is missing, for ``why_missing``.

    ``chain_tail`` is the chain's latest batch id read *before* ``batches`` were: a batch
    row is written before its anchor is sent, so a batch a running sealer anchors between
    the two reads is not taken for one this ledger never sealed (read now if None)."""
    anchored = [b for b in batches if b.status == "anchored"]
    if reader is None:
        reason = f"missing on chain ({why_missing})" if why_missing else "missing on chain"
        return [BatchProblem(b.id, reason) for b in anchored]
    problems = []
    for b in anchored:
        problem = batch_problem(reader, b)
        if problem:
            problems.append(BatchProblem(b.id, problem))
    known = max((b.id for b in batches), default=0)
    latest = reader.latest_batch_id() if chain_tail is None else chain_tail
    problems += [BatchProblem(i, "on chain but never sealed by this ledger")
                 for i in range(known + 1, latest + 1)]
    return problems
