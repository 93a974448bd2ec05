"""Batches already called ``anchored``, held against the chain at each seal's start.

A batch is ``anchored`` once its anchor has the configured confirmations, but a deeper
reorg (or a node restored from an older state) can still take it away. Ids on chain
run 1, 2, 3…, so only a tail can go, and the chain's latest id says where it starts:
those batches go back to ``submitted`` (contents untouched, their signed transaction
kept for reuse) and the sealer anchors them again under the same ids. A reorg that
mined an anchor again in another block only needs the row's transaction and block put
right. Anything else that differs is an :class:`AnchorMismatch`, never papered over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from ledger.anchor_audit import anchoring_receipt
from ledger.anchoring import Anchor, TxReceipt
from ledger.errors import AnchorMismatch
from ledger.store.database import Database
from ledger.store.models import Batch

log = logging.getLogger("carbon_ledger.sealer")


@dataclass
class Recheck:
    """What a recheck changed: batches to anchor again, and batches whose anchor moved."""

    reopened: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)


def recheck_anchored(db: Database, anchor: Anchor, *, confirmations: int,
                     before_write: Callable[[], None]) -> Recheck:
    """Put right the anchored tail after a reorg.

    ``before_write`` runs before any row changes (the sealer renews its lease there)."""
    with db.session() as s:
        last = s.scalar(select(Batch).where(Batch.status == "anchored")
                        .order_by(Batch.id.desc()).limit(1))
        total = s.scalar(select(func.max(Batch.id))) or 0
    found = Recheck()
    if last is None:
        return found
    if (last.chain_id, (last.contract_address or "").lower()) != (
            anchor.chain_id, anchor.contract_address.lower()):
        raise AnchorMismatch(f"batch {last.id} was anchored to {last.contract_address} on chain "
                             f"{last.chain_id}, the sealer is connected to "
                             f"{anchor.contract_address} on chain {anchor.chain_id}: has the "
                             "node lost its state?", field="contract")
    anchor.check_contract()
    latest = anchor.latest_batch_id()
    if latest > total:
        raise AnchorMismatch(f"the chain holds batch {latest}, the ledger sealed only {total}: "
                             "another ledger anchors to this contract", field="batchId")
    found.moved = _repair_moved_anchors(db, anchor, min(latest, last.id), before_write)
    if latest >= last.id:
        return found
    log.error("batches %s..%s were anchored but the chain's latest batch is now %s (a reorg "
              "deeper than %s confirmation(s), or a node restored from an older state): "
              "anchoring them again under the same ids", latest + 1, last.id, latest,
              confirmations)
    before_write()
    with db.session(write_lock=True) as s:
        gone = (Batch.id > latest) & (Batch.status == "anchored")
        s.execute(update(Batch).where(gone, Batch.raw_tx.is_(None))
                  .values(status="sealed", block_number=None, gas_used=None, anchored_at=None))
        s.execute(update(Batch).where(gone)
                  .values(status="submitted", block_number=None, gas_used=None, anchored_at=None))
    found.reopened = list(range(latest + 1, last.id + 1))
    return found


def is_canonical(anchor: Anchor, receipt: TxReceipt) -> bool:
    """False when the receipt's block is no longer the chain's block at that height."""
    return receipt.block_hash is None or anchor.block_hash(receipt.block_number) == receipt.block_hash


def _repair_moved_anchors(db: Database, anchor: Anchor, newest: int,
                          before_write: Callable[[], None]) -> list[int]:
    """Walk back from ``newest`` while batches' recorded blocks are not canonical: the
    first intact one vouches for every earlier one (each anchor needed its predecessor
    on chain, so that lies in an ancestor block). Returns the ids put right."""
    moved = []
    for batch_id in range(newest, 0, -1):
        with db.session() as s:
            batch = s.get_one(Batch, batch_id)
        receipt = anchoring_receipt(anchor, batch)
        if receipt is None:
            raise AnchorMismatch(f"batch {batch_id}: missing on chain", field="root")
        if (receipt.tx_hash == batch.tx_hash and receipt.block_number == batch.block_number
                and is_canonical(anchor, receipt)):
            break
        log.warning("batch %s: its anchor is now tx 0x%s in block %s (was block %s): a reorg "
                    "mined it again", batch_id, receipt.tx_hash.hex(), receipt.block_number,
                    batch.block_number)
        before_write()
        with db.session(write_lock=True) as s:
            row = s.get_one(Batch, batch_id)
            row.tx_hash, row.block_number, row.gas_used = (
                receipt.tx_hash, receipt.block_number, receipt.gas_used)
        moved.append(batch_id)
    return moved
