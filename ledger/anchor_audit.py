"""Hold what the ledger says it anchored against what the chain holds now.

``carbon-ledger chain check`` runs :func:`chain_problems` over every batch; the sealer
uses :func:`differs_from_chain` on the tail at each start. Only reads: putting things
right is the sealer's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.anchoring import AnchoredBatch, ChainReader
from ledger.models import Batch


@dataclass(frozen=True)
class BatchProblem:
    batch_id: int
    problem: str


def differs_from_chain(batch: Batch, on_chain: AnchoredBatch) -> str | None:
    """How the contract's record of a batch differs from the ledger's, or None."""
    if on_chain.root != batch.root:
        return f"root differs: chain 0x{on_chain.root.hex()}, ledger 0x{batch.root.hex()}"
    if on_chain.leaf_count != batch.leaf_count:
        return f"leaf count differs: chain {on_chain.leaf_count}, ledger {batch.leaf_count}"
    if on_chain.content_hash != batch.content_hash:
        return (f"content hash differs: chain 0x{on_chain.content_hash.hex()}, "
                f"ledger 0x{batch.content_hash.hex()}")
    return None


def batch_problem(reader: ChainReader, batch: Batch) -> str | None:
    """What is wrong with an ``anchored`` batch on chain: its root missing or different,
    or the anchoring transaction its proofs name gone or moved to another block."""
    on_chain = reader.anchored_batch(batch.id)
    if on_chain is None:
        return "missing on chain"
    problem = differs_from_chain(batch, on_chain)
    if problem or batch.tx_hash is None:
        return problem
    receipt = reader.receipt(batch.tx_hash)
    if receipt is None or not receipt.succeeded:
        return f"its anchoring transaction 0x{batch.tx_hash.hex()} is not on chain"
    if receipt.block_number != batch.block_number:
        return (f"its anchoring transaction is in block {receipt.block_number}, the ledger "
                f"says {batch.block_number}")
    return None


def chain_problems(reader: ChainReader | None, batches: Sequence[Batch], *,
                   why_missing: str | None = None) -> list[BatchProblem]:
    """Every ``anchored`` batch that the chain does not hold as the ledger says, and any
    batch the chain holds beyond the ledger's. With no ``reader`` (no contract there),
    every anchored batch is missing, for ``why_missing``."""
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
    latest = reader.latest_batch_id()
    problems += [BatchProblem(i, "on chain but never sealed by this ledger")
                 for i in range(known + 1, latest + 1)]
    return problems
