"""Sealing: unbatched entries become the next batch, whose root is anchored on chain.

A batch moves ``sealed`` → ``submitted`` → ``anchored``, and each step is written before
the next begins, so a crash anywhere leaves a state the next :meth:`Sealer.seal`
completes: a batch already anchored on chain is recognised, not anchored twice; a batch
id is never skipped, because a new batch is sealed only once every earlier one is
anchored.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from ledger.anchoring import Anchor, TxReceipt
from ledger.batch_builder import build_tree_from_db
from ledger.db import Database
from ledger.errors import AnchorMismatch, ChainError, Conflict
from ledger.leases import acquire_lease, release_lease
from ledger.models import Batch, BatchTree, LedgerEntry

SEALER_LEASE = "sealer"


@dataclass(frozen=True)
class SealOptions:
    confirmations: int = 1
    workers: int = 2
    receipt_timeout: float = 120.0
    lease_seconds: float = 600.0


class Sealer:
    def __init__(self, db: Database, anchor: Anchor, options: SealOptions | None = None) -> None:
        self.db = db
        self.anchor = anchor
        self.options = options or SealOptions()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"

    def seal(self) -> list[Batch]:
        """Finish any batch left half-way, then seal and anchor what is unbatched.

        Returns the batches anchored by this call (resumed ones included)."""
        if not acquire_lease(self.db, SEALER_LEASE, self.holder, seconds=self.options.lease_seconds):
            raise Conflict("another sealer is running", field="sealer")
        try:
            done = [self.advance(b) for b in self._unfinished()]
            batch = self.seal_new_batch()
            if batch is not None:
                done.append(self.advance(batch.id))
            return done
        finally:
            release_lease(self.db, SEALER_LEASE, self.holder)

    def _unfinished(self) -> list[int]:
        with self.db.session() as s:
            return list(s.scalars(select(Batch.id).where(Batch.status != "anchored")
                                  .order_by(Batch.id)))

    def seal_new_batch(self) -> Batch | None:
        """Put every unbatched entry into the next batch and store its tree.

        The tree is built outside any write transaction (ingestion goes on meanwhile);
        the lease makes this the only sealer, so the range cannot be taken twice."""
        with self.db.session() as s:
            if self.db.engine.dialect.name == "postgresql":
                # A seq is drawn at INSERT, but transactions commit in any order: an entry
                # with a lower seq may still be uncommitted when a higher one is visible,
                # and would fall below max(seq) into no batch. EXCLUSIVE waits for every
                # transaction that has written entries (each holds ROW EXCLUSIVE from its
                # INSERT on) and holds new ones off for the three reads below; reads go on.
                # Sequences hand out values in order (CACHE 1), so later inserts get more.
                s.connection().exec_driver_sql("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")
            last = s.scalar(select(func.max(Batch.last_seq))) or 0
            newest = s.scalar(select(func.max(LedgerEntry.seq))) or 0
            batch_id = (s.scalar(select(func.max(Batch.id))) or 0) + 1
        if newest <= last:
            return None
        built = build_tree_from_db(self.db.engine, last + 1, newest, workers=self.options.workers)
        if built is None:  # only gaps in seq: nothing to seal
            return None
        with self.db.session(write_lock=True) as s:
            batch = Batch(id=batch_id, first_seq=last + 1, last_seq=newest,
                          leaf_count=built.leaf_count, root=built.root,
                          content_hash=built.content_hash, status="sealed",
                          sealed_at=int(time.time()))
            s.add(batch)
            s.add(BatchTree(batch_id=batch_id, nodes=built.nodes))
        return batch

    def advance(self, batch_id: int) -> Batch:
        """Bring one batch to ``anchored``, from whatever state it was left in."""
        with self.db.session() as s:
            batch = s.get_one(Batch, batch_id)
        if batch.status == "anchored":
            return batch
        if batch.chain_id is not None and batch.chain_id != self.anchor.chain_id:
            raise ChainError(f"batch {batch_id} was sent to chain {batch.chain_id}, "
                             f"connected to {self.anchor.chain_id}", field="chain")
        on_chain = self.anchor.anchored_batch(batch_id)
        if on_chain is not None:
            if (on_chain.root, on_chain.leaf_count, on_chain.content_hash) != (
                    batch.root, batch.leaf_count, batch.content_hash):
                raise AnchorMismatch(f"batch {batch_id} on chain has root 0x{on_chain.root.hex()}, "
                                     f"the ledger sealed 0x{batch.root.hex()}", field="root")
            receipt = self._anchoring_receipt(batch)
        else:
            receipt = self._send(batch)
        return self._finish(batch, receipt)

    def _anchoring_receipt(self, batch: Batch) -> TxReceipt:
        """The receipt of the transaction that anchored ``batch`` (already on chain)."""
        if batch.tx_hash is not None:
            receipt = self.anchor.receipt(batch.tx_hash)
            if receipt is not None and receipt.succeeded:
                return receipt
        found = self.anchor.find_anchor_receipt(batch.id)
        if found is None:
            raise AnchorMismatch(f"batch {batch.id} is on chain but its transaction was not found",
                                 field="txHash")
        return found

    def _send(self, batch: Batch) -> TxReceipt:
        expected_latest = batch.id - 1
        latest = self.anchor.latest_batch_id()
        if latest != expected_latest:
            raise AnchorMismatch(f"the chain's latest batch is {latest}, the ledger expects "
                                 f"{expected_latest} before anchoring {batch.id}: has the node "
                                 "lost its state?", field="batchId")
        if batch.tx_hash is not None and self.anchor.is_pending(batch.tx_hash):
            receipt = self.anchor.wait_for_receipt(batch.tx_hash,
                                                   timeout=self.options.receipt_timeout)
            if receipt.succeeded:
                return receipt
        prepared = self.anchor.prepare_anchor(batch_id=batch.id, root=batch.root,
                                              leaf_count=batch.leaf_count,
                                              content_hash=batch.content_hash)
        with self.db.session(write_lock=True) as s:  # recorded before it leaves the machine
            row = s.get_one(Batch, batch.id)
            row.status, row.tx_hash, row.raw_tx, row.nonce = (
                "submitted", prepared.tx_hash, prepared.raw, prepared.nonce)
            row.chain_id, row.contract_address = self.anchor.chain_id, self.anchor.contract_address
        self.anchor.broadcast(prepared.raw)
        receipt = self.anchor.wait_for_receipt(prepared.tx_hash,
                                               timeout=self.options.receipt_timeout)
        if not receipt.succeeded:
            raise ChainError(f"the anchor transaction for batch {batch.id} reverted",
                             field="txHash")
        return receipt

    def _finish(self, batch: Batch, receipt: TxReceipt) -> Batch:
        self.anchor.wait_for_confirmations(receipt.block_number,
                                           confirmations=self.options.confirmations,
                                           timeout=self.options.receipt_timeout)
        with self.db.session(write_lock=True) as s:
            row = s.get_one(Batch, batch.id)
            row.status, row.tx_hash = "anchored", receipt.tx_hash
            row.block_number, row.gas_used = receipt.block_number, receipt.gas_used
            row.chain_id, row.contract_address = self.anchor.chain_id, self.anchor.contract_address
            row.anchored_at = int(time.time())
            return row
