"""Sealing: unbatched entries become the next batch, whose root is anchored on chain.

A batch moves ``sealed`` → ``submitted`` → ``anchored``, and each step is written before
the next begins, so a crash anywhere leaves a state the next :meth:`Sealer.seal`
completes: a batch already anchored on chain is recognised, not anchored twice; a batch
id is never skipped, because a new batch is sealed only once every earlier one is
anchored.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass

import rlp
from sqlalchemy import func, select

from ledger.anchoring import Anchor, AnchoredBatch, PreparedAnchor, TxReceipt
from ledger.batch_builder import build_tree_from_db
from ledger.db import Database
from ledger.errors import AnchorMismatch, ChainError, Conflict
from ledger.leases import acquire_lease, release_lease
from ledger.models import Batch, BatchTree, LedgerEntry

SEALER_LEASE = "sealer"
log = logging.getLogger("carbon_ledger.sealer")


@dataclass(frozen=True)
class SealOptions:
    confirmations: int = 1
    workers: int = 2
    receipt_timeout: float = 120.0
    lease_seconds: float = 600.0
    stuck_after: float = 60.0  # a transaction unmined this long is replaced with higher fees
    reanchor_attempts: int = 5  # reorgs survived while bringing one batch to final


FAULT_ENV = "CARBON_LEDGER_FAULT_PAUSE"
MAX_REORG_DEPTH = 256  # an anchored batch missing from deeper than this is lost state, not a reorg


def fault_point(name: str) -> None:
    """A named point where the fault tests stop the sealer: with ``CARBON_LEDGER_FAULT_PAUSE``
    set to ``name`` the process says so on stderr and sleeps until it is killed. Unset (as
    always outside the tests), it does nothing."""
    if os.environ.get(FAULT_ENV) == name:
        sys.stderr.write(f"fault point {name}\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)


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
            self.reconcile()
            done = [self.advance(b) for b in self._unfinished()]
            batch = self.seal_new_batch()
            if batch is not None:
                fault_point("sealed")
                done.append(self.advance(batch.id))
            return done
        finally:
            release_lease(self.db, SEALER_LEASE, self.holder)

    def reconcile(self, recent: int = 16) -> None:
        """Check the chain still holds what the ledger calls anchored.

        The newest ``recent`` anchored batches are compared with the contract. Batches
        missing at the end of the chain (a reorg deeper than the confirmations dropped
        them) go back to ``submitted`` and are anchored again, under the same ids with the
        same contents. A missing contract, a root that differs, or a gap before batches the
        chain still holds is not something a resend repairs: it is raised, loudly."""
        if not self.anchor.has_code():
            raise AnchorMismatch(f"no contract at {self.anchor.contract_address} on chain "
                                 f"{self.anchor.chain_id}: did the node restart without its "
                                 "state? `carbon-ledger chain check` lists what is missing",
                                 field="contract")
        latest = self.anchor.latest_batch_id()
        with self.db.session() as s:
            rows = s.scalars(select(Batch).where(Batch.status == "anchored")
                             .order_by(Batch.id.desc()).limit(recent)).all()
        lost = []
        head = self.anchor.head_block()
        for batch in rows:
            if batch.contract_address not in (None, self.anchor.contract_address):
                raise AnchorMismatch(f"batch {batch.id} was anchored to {batch.contract_address}, "
                                     f"the ledger is connected to {self.anchor.contract_address}: "
                                     "the chain lost its state", field="contract")
            if batch.id > latest:
                if (batch.block_number or 0) <= head - MAX_REORG_DEPTH:
                    raise AnchorMismatch(f"batch {batch.id}, anchored in block {batch.block_number}"
                                         f", is missing on chain (head {head}): deeper than any "
                                         "reorg; has the node lost its state?", field="batchId")
                lost.append(batch.id)
                continue
            self._check_on_chain(batch, self.anchor.anchored_batch(batch.id))
        if lost:
            with self.db.session(write_lock=True) as s:
                for row in s.scalars(select(Batch).where(Batch.id.in_(lost))):
                    row.status = "submitted"  # sent once; the chain no longer has it
            log.warning("batches %s were anchored but the chain no longer has them (a reorg): "
                        "anchoring them again", sorted(lost))

    @staticmethod
    def _check_on_chain(batch: Batch, on_chain: AnchoredBatch | None) -> None:
        if on_chain is None:
            raise AnchorMismatch(f"batch {batch.id} is missing on chain", field="batchId")
        if (on_chain.root, on_chain.leaf_count, on_chain.content_hash) != (
                batch.root, batch.leaf_count, batch.content_hash):
            raise AnchorMismatch(f"batch {batch.id} on chain has root 0x{on_chain.root.hex()}, "
                                 f"the ledger sealed 0x{batch.root.hex()}", field="root")

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
        fault_point("entries_chosen")
        with self.db.session(write_lock=True) as s:
            batch = Batch(id=batch_id, first_seq=last + 1, last_seq=newest,
                          leaf_count=built.leaf_count, root=built.root,
                          content_hash=built.content_hash, status="sealed",
                          sealed_at=int(time.time()))
            s.add(batch)
            s.add(BatchTree(batch_id=batch_id, nodes=built.nodes))
        return batch

    def advance(self, batch_id: int) -> Batch:
        """Bring one batch to ``anchored``, from whatever state it was left in.

        Anchored means final: the anchoring transaction has the configured confirmations
        and its block is still canonical. A reorg that drops it before then is noticed and
        the batch is sent again (same id, same contents)."""
        with self.db.session() as s:
            batch = s.get_one(Batch, batch_id)
        if batch.status == "anchored":
            return batch
        if batch.chain_id is not None and batch.chain_id != self.anchor.chain_id:
            raise ChainError(f"batch {batch_id} was sent to chain {batch.chain_id}, "
                             f"connected to {self.anchor.chain_id}", field="chain")
        for _attempt in range(self.options.reanchor_attempts):
            on_chain = self.anchor.anchored_batch(batch_id)
            if on_chain is not None:
                self._check_on_chain(batch, on_chain)
                receipt = self._anchoring_receipt(batch)
            else:
                receipt = self._send(batch)
            fault_point("before_confirmations")
            final = self._confirmed(receipt)
            if final is not None:
                return self._finish(batch, final)
            log.warning("the transaction anchoring batch %s was dropped by a reorg; sending "
                        "it again", batch_id)
            with self.db.session() as s:
                batch = s.get_one(Batch, batch_id)
        raise ChainError(f"batch {batch_id} was dropped by {self.options.reanchor_attempts} "
                         "reorgs in a row", field="chain")

    def _confirmed(self, receipt: TxReceipt) -> TxReceipt | None:
        """The receipt once it has enough confirmations, or None if a reorg dropped it."""
        self.anchor.wait_for_confirmations(receipt.block_number,
                                           confirmations=self.options.confirmations,
                                           timeout=self.options.receipt_timeout)
        if self.anchor.is_canonical(receipt):
            return receipt
        moved = self.anchor.receipt(receipt.tx_hash)  # re-mined in another block?
        if moved is not None and moved.succeeded:
            return self._confirmed(moved)
        return None

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
        """Send the anchoring transaction and wait for it to be mined, replacing it with
        higher fees (same nonce) whenever it sits unmined for ``stuck_after`` seconds. Each
        transaction is recorded before it is broadcast; whichever of them is mined counts."""
        expected_latest = batch.id - 1
        latest = self.anchor.latest_batch_id()
        if latest != expected_latest:
            raise AnchorMismatch(f"the chain's latest batch is {latest}, the ledger expects "
                                 f"{expected_latest} before anchoring {batch.id}: has the node "
                                 "lost its state?", field="batchId")
        if batch.tx_hash is not None and self.anchor.is_pending(batch.tx_hash):
            receipt = self._wait_mined(batch, self.options.stuck_after)
            if receipt is not None:
                return receipt
        deadline = time.monotonic() + self.options.receipt_timeout
        previous: PreparedAnchor | None = None
        if batch.tx_hash is not None and batch.raw_tx is not None and batch.nonce is not None \
                and self.anchor.is_pending(batch.tx_hash):
            previous = PreparedAnchor(batch.tx_hash, batch.raw_tx, batch.nonce,
                                      *_fees_of(batch.raw_tx))
        while True:
            prepared = self.anchor.prepare_anchor(
                batch_id=batch.id, root=batch.root, leaf_count=batch.leaf_count,
                content_hash=batch.content_hash, replacing=previous)
            with self.db.session(write_lock=True) as s:  # recorded before it leaves the machine
                row = s.get_one(Batch, batch.id)
                row.status, row.tx_hash, row.raw_tx, row.nonce = (
                    "submitted", prepared.tx_hash, prepared.raw, prepared.nonce)
                row.chain_id, row.contract_address = (self.anchor.chain_id,
                                                      self.anchor.contract_address)
                batch = row
            fault_point("before_broadcast")
            self.anchor.broadcast(prepared.raw)
            fault_point("after_broadcast")
            receipt = self._wait_mined(batch, min(self.options.stuck_after,
                                                  max(0.0, deadline - time.monotonic())))
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise ChainError(f"the anchor of batch {batch.id} was not mined within "
                                 f"{self.options.receipt_timeout:.0f}s", field="txHash")
            if self.anchor.anchored_batch(batch.id) is None and not self.anchor.is_pending(
                    prepared.tx_hash) and self.anchor.receipt(prepared.tx_hash) is None:
                previous = None  # dropped from the pool: a fresh nonce and fees
            else:
                previous = prepared
                log.warning("the anchor of batch %s is stuck in the pool; replacing it with "
                            "higher fees (nonce %s)", batch.id, prepared.nonce)

    def _wait_mined(self, batch: Batch, seconds: float) -> TxReceipt | None:
        """The receipt of whichever transaction anchored ``batch``, if one is mined within
        ``seconds``; a reverted anchor that did not anchor it is an error."""
        deadline = time.monotonic() + seconds
        while True:
            if batch.tx_hash is not None:
                receipt = self.anchor.receipt(batch.tx_hash)
                if receipt is not None:
                    if receipt.succeeded:
                        return receipt
                    if self.anchor.anchored_batch(batch.id) is None:
                        raise ChainError(f"the anchor transaction for batch {batch.id} reverted",
                                         field="txHash")
            if self.anchor.anchored_batch(batch.id) is not None:  # an earlier tx of ours
                return self._anchoring_receipt(batch)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    def _finish(self, batch: Batch, receipt: TxReceipt) -> Batch:
        fault_point("before_anchored")
        with self.db.session(write_lock=True) as s:
            row = s.get_one(Batch, batch.id)
            row.status, row.tx_hash = "anchored", receipt.tx_hash
            row.block_number, row.gas_used = receipt.block_number, receipt.gas_used
            row.chain_id, row.contract_address = self.anchor.chain_id, self.anchor.contract_address
            row.anchored_at = int(time.time())
            return row


def _fees_of(raw: bytes) -> tuple[int, int]:
    """(maxFeePerGas, maxPriorityFeePerGas) of a signed EIP-1559 transaction:
    ``0x02 || rlp([chainId, nonce, tip, maxFee, ...])``. Zero for any other kind."""
    if not raw or raw[0] != 2:
        return 0, 0
    fields = rlp.decode(raw[1:])
    return int.from_bytes(fields[3], "big"), int.from_bytes(fields[2], "big")
