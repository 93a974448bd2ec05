"""Sealing: unbatched entries become the next batch, whose root is anchored on chain.

A batch moves ``sealed`` → ``submitted`` → ``anchored``, and each step is written before
the next begins, so a crash anywhere leaves a state the next :meth:`Sealer.seal`
completes: a batch already anchored on chain is recognised, not anchored twice; a batch
id is never skipped, because a new batch is sealed only once every earlier one is
anchored.

While a batch is ``submitted`` its signed transaction (hash, raw bytes, nonce) is in its
row, written before the transaction leaves the machine. A restart sends those same
bytes again; a transaction not mined after ``replace_after`` is replaced by one of the
same nonce with higher fees (recorded first too), so at most one of them can be mined,
and whichever is mined counts. A batch becomes ``anchored`` only once its receipt has
the configured confirmations and its block is still the canonical one at that height;
a reorg that drops it sends the batch again, same id, same contents. At each start the
sealer also looks at the tail of what it already called anchored: batches a deeper
reorg (or a node restored from an old state) took off the chain are reported and sent
again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from ledger.anchor_audit import anchoring_receipt
from ledger.anchoring import Anchor, PreparedAnchor, TxReceipt
from ledger.batch_builder import build_tree_from_db
from ledger.entries import sealed_through
from ledger.errors import AnchorMismatch, ChainError, Conflict, FeeTooLow, InvalidInput, LedgerError
from ledger.reanchoring import is_canonical, recheck_anchored
from ledger.store.database import Database
from ledger.store.leases import acquire_lease, process_holder, release_lease
from ledger.store.locks import hold_off_entry_writers
from ledger.store.models import ENTRY_KEY_BYTES, Batch, EntryLocator, LedgerEntry, entry_key
from ledger.store.trees import store_tree

SEALER_LEASE = "sealer"
#: one sealing at a time within a process (the lease's holder is the process)
_SEALING_HERE = threading.Lock()
log = logging.getLogger("carbon_ledger.sealer")

#: The steps a batch passes, in order, as :attr:`SealOptions.on_step` hears them; a
#: replacement adds ``replacing`` (recorded, not yet sent) and ``replaced`` (sent).
STEPS = ("sealed", "signed", "recorded", "broadcast", "mined", "confirmed")


#: The most entries one batch holds unless told otherwise: a seal's memory and a stored
#: tree grow with the batch, not with the backlog (``CARBON_LEDGER_SEAL_MAX_BATCH``).
MAX_BATCH = 1_000_000


@dataclass(frozen=True)
class SealOptions:
    confirmations: int = 1
    workers: int = 2
    #: a backlog larger than this becomes several batches, each anchored before the next
    #: is sealed (the contract takes ids in strict order)
    max_batch: int = MAX_BATCH
    #: how long one seal waits for an anchor to be mined and confirmed before it gives
    #: up (the batch stays recorded; the next seal takes it from there)
    receipt_timeout: float = 120.0
    lease_seconds: float = 600.0
    #: the most the anchor may pay per gas (EIP-1559 max fee), in wei; None: no ceiling
    max_fee_wei: int | None = None
    #: a transaction not mined after this many seconds (or blocks, if > 0) is replaced
    replace_after: float = 60.0
    replace_after_blocks: int = 0
    poll_interval: float = 1.0
    #: called with (step, batch id) at each of :data:`STEPS`; for progress and fault tests
    on_step: Callable[[str, int], None] | None = None


@dataclass
class _Flight:
    """What this process knows of the batch's transaction in flight (not in the row)."""

    sent_at: float | None = None
    sent_head: int = 0
    deadline: float = 0.0
    fresh_sends: int = 0
    just_sent: bool = False
    seen: TxReceipt | None = None


class Sealer:
    def __init__(self, db: Database, anchor: Anchor, options: SealOptions | None = None) -> None:
        self.db = db
        self.anchor = anchor
        self.options = options or SealOptions()
        if self.options.max_batch < 1:
            raise InvalidInput(f"a batch holds at least one entry, not {self.options.max_batch}",
                               field="seal_max_batch")
        #: one identity per process, so a lease this process left behind (its release
        #: failed with the database down) is its own again at the next seal
        self.holder = process_holder()
        #: batches the last :meth:`seal` found missing on chain and anchored again, and
        #: those whose anchor a reorg moved to another block (their proofs changed)
        self.reanchored: list[int] = []
        self.moved: list[int] = []
        self._renewed = 0.0

    def seal(self) -> list[Batch]:
        """Recheck the anchored tail, finish any batch left half-way, then seal and anchor
        what is unbatched, in batches of at most ``max_batch`` entries.

        Each batch is anchored before the next is sealed, so a crash leaves at most one
        batch unfinished and ids reach the chain in order. Entries that arrive during
        this call wait for the next one: a backlog that grows as fast as it is sealed
        does not keep one call going for ever.

        Returns the batches anchored by this call (resumed ones included)."""
        self._take_lease()
        try:
            self.reanchored = self.recheck_anchored()
            done = [self.advance(b) for b in self._unfinished()]
            with self.db.session() as s:
                through = s.scalar(select(func.max(LedgerEntry.seq))) or 0
            while (batch := self.seal_new_batch(through=through)) is not None:
                self._step("sealed", batch.id)
                done.append(self.advance(batch.id))
            return done
        finally:
            self._release_lease()

    def _unfinished(self) -> list[int]:
        with self.db.session() as s:
            return list(s.scalars(select(Batch.id).where(Batch.status != "anchored")
                                  .order_by(Batch.id)))

    def seal_new_batch(self, *, through: int | None = None) -> Batch | None:
        """Put the oldest unbatched entries (at most ``max_batch``, none above seq
        ``through``) into the next batch and store its tree.

        The tree is built outside any write transaction (ingestion goes on meanwhile);
        the lease makes this the only sealer, so the range cannot be taken twice."""
        with self.db.session() as s:
            hold_off_entry_writers(s)  # no lower seq may still commit below max(seq)
            last = sealed_through(s)
            newest = s.scalar(select(func.max(LedgerEntry.seq))) or 0
            batch_id = (s.scalar(select(func.max(Batch.id))) or 0) + 1
        if through is not None:
            newest = min(newest, through)
        if newest <= last:
            return None
        # Every seq up to newest is committed now, so the cut can be read after the lock.
        newest = self._cut(last, newest)
        built = build_tree_from_db(self.db.engine, last + 1, newest, workers=self.options.workers)
        if built is None:  # only gaps in seq: nothing to seal
            return None
        try:
            with self.db.session(write_lock=True) as s:
                batch = Batch(id=batch_id, first_seq=last + 1, last_seq=newest,
                              leaf_count=built.leaf_count, root=built.root,
                              content_hash=built.content_hash, status="sealed",
                              sealed_at=int(time.time()))
                s.add(batch)
                s.flush()
                store_tree(s.connection(), batch_id, built.nodes)
                locate(s.connection(), batch_id, last + 1, newest,
                       threads=self.options.workers)
        except IntegrityError:
            shared = _shared_id(self.db, last + 1, newest)
            if shared is None:
                raise
            entry_id, whole = shared
            held = "is held by two entries" if whole else (
                f"shares its first {ENTRY_KEY_BYTES} bytes, the locator's key, with another")
            raise LedgerError(f"entry id 0x{entry_id.hex()} {held}: seq "
                              f"{last + 1}–{newest} not sealed (the ledger makes each id "
                              "once; this invariant is broken)", field="entry_id") from None
        return batch

    def _cut(self, last: int, newest: int) -> int:
        """The last seq of the next batch: the ``max_batch``-th entry above ``last``, or
        ``newest`` if fewer wait (seq may have gaps, so it is counted, not added)."""
        limit = self.options.max_batch
        if newest - last <= limit:
            return newest
        with self.db.session() as s:
            cut = s.scalar(select(LedgerEntry.seq)
                           .where(LedgerEntry.seq > last, LedgerEntry.seq <= newest)
                           .order_by(LedgerEntry.seq).offset(limit - 1).limit(1))
        return newest if cut is None else cut

    def advance(self, batch_id: int) -> Batch:
        """Bring one batch to ``anchored``, from whatever state it was left in."""
        batch = self._load(batch_id)
        if batch.status == "anchored":
            return batch
        self._check_same_contract(batch)
        self.anchor.check_contract()
        flight = _Flight(deadline=time.monotonic() + self.options.receipt_timeout)
        while True:
            self._renew_lease()
            receipt = anchoring_receipt(self.anchor, batch)
            if receipt is None:
                batch = self._send(batch, flight)
                if flight.just_sent:  # an automining node has its receipt already
                    flight.just_sent = False
                    continue
            elif is_canonical(self.anchor, receipt):
                seen = self.anchor.confirmations(receipt.block_number)
                if seen >= self.options.confirmations:
                    self._step("confirmed", batch.id)
                    return self._finish(batch, receipt)
                if flight.seen != receipt:
                    flight.seen = receipt
                    flight.deadline = time.monotonic() + self.options.receipt_timeout
                    self._step("mined", batch.id)
                if self.anchor.mine_if_dev(self.options.confirmations - seen):
                    continue
            if time.monotonic() > flight.deadline:
                raise ChainError(f"batch {batch.id} is not anchored with "
                                 f"{self.options.confirmations} confirmation(s) after "
                                 f"{self.options.receipt_timeout:.0f}s; its transaction stays "
                                 "recorded and the next seal goes on from there", field="txHash")
            time.sleep(self.options.poll_interval)

    def _send(self, batch: Batch, flight: _Flight) -> Batch:
        """Get a transaction for ``batch`` moving: the recorded one, a replacement, or a new
        one when the recorded one's nonce went to another transaction."""
        nonces = self.anchor.nonces()  # before latest_batch_id: a tx mined in between shows
        latest = self.anchor.latest_batch_id()
        if latest >= batch.id:
            return batch  # it landed since we looked: the next look finds its receipt
        if latest != batch.id - 1:
            raise AnchorMismatch(f"the chain's latest batch is {latest}, the ledger expects "
                                 f"{batch.id - 1} before anchoring {batch.id}: has the node "
                                 "lost its state?", field="batchId")
        if batch.raw_tx is None or batch.nonce is None or batch.tx_hash is None:
            return self._send_new(batch, flight)
        if not nonces.mined <= batch.nonce <= nonces.pending:
            # Its nonce went to another transaction (ours reverted, or another sealer's), or
            # lies beyond a gap (earlier transactions lost in a reorg): sign anew.
            log.warning("batch %s: nonce %s of its recorded transaction is unusable "
                        "(account nonces %s mined, %s pending); signing a new one",
                        batch.id, batch.nonce, nonces.mined, nonces.pending)
            return self._send_new(batch, flight)
        if flight.sent_at is None or not self.anchor.is_known(batch.tx_hash):
            try:
                self._broadcast(batch, flight, "broadcast")  # after a restart, or dropped
            except FeeTooLow:  # the base fee rose past it while it waited
                return self._replace(batch, flight)
        elif self._stuck(flight):
            return self._replace(batch, flight)
        return batch

    def _send_new(self, batch: Batch, flight: _Flight) -> Batch:
        """A new transaction at the key's next nonce, recorded before it is sent."""
        flight.fresh_sends += 1
        if flight.fresh_sends > 3:
            raise ChainError(f"anchor transactions for batch {batch.id} keep failing to land; "
                             "see the node's log", field="txHash")
        prepared = self.anchor.prepare_anchor(batch_id=batch.id, root=batch.root,
                                              leaf_count=batch.leaf_count,
                                              content_hash=batch.content_hash,
                                              max_fee_ceiling=self.options.max_fee_wei)
        self._step("signed", batch.id)
        batch = self._record(batch, prepared)
        self._step("recorded", batch.id)
        self._broadcast(batch, flight, "broadcast")
        return batch

    def _stuck(self, flight: _Flight) -> bool:
        assert flight.sent_at is not None
        if time.monotonic() - flight.sent_at >= self.options.replace_after:
            return True
        blocks = self.options.replace_after_blocks
        return blocks > 0 and self.anchor.head() - flight.sent_head >= blocks

    def _replace(self, batch: Batch, flight: _Flight) -> Batch:
        """Same nonce, both fees up by at least 12.5%; recorded before it is sent."""
        assert batch.raw_tx is not None
        prepared = self.anchor.prepare_anchor(batch_id=batch.id, root=batch.root,
                                              leaf_count=batch.leaf_count,
                                              content_hash=batch.content_hash,
                                              replacing=batch.raw_tx,
                                              max_fee_ceiling=self.options.max_fee_wei)
        log.warning("batch %s: anchor 0x%s not mined in time; replacing it with 0x%s "
                    "(nonce %s, max fee %s wei, tip %s wei)", batch.id,
                    (batch.tx_hash or b"").hex(), prepared.tx_hash.hex(), prepared.nonce,
                    prepared.max_fee, prepared.priority_fee)
        batch = self._record(batch, prepared)
        self._step("replacing", batch.id)
        self._broadcast(batch, flight, "replaced")
        flight.deadline = time.monotonic() + self.options.receipt_timeout
        return batch

    def _record(self, batch: Batch, prepared: PreparedAnchor) -> Batch:
        """Write the signed transaction to the batch's row before it leaves the machine."""
        self._renew_lease(force=True)  # a sealer that lost its lease must not send
        with self.db.session(write_lock=True) as s:
            row = s.get_one(Batch, batch.id)
            row.status, row.tx_hash, row.raw_tx, row.nonce = (
                "submitted", prepared.tx_hash, prepared.raw, prepared.nonce)
            row.chain_id, row.contract_address = self.anchor.chain_id, self.anchor.contract_address
            return row

    def _broadcast(self, batch: Batch, flight: _Flight, step: str) -> None:
        assert batch.raw_tx is not None
        self.anchor.broadcast(batch.raw_tx)
        flight.sent_at, flight.sent_head = time.monotonic(), self.anchor.head()
        flight.just_sent = True
        self._step(step, batch.id)

    def _finish(self, batch: Batch, receipt: TxReceipt) -> Batch:
        with self.db.session(write_lock=True) as s:
            row = s.get_one(Batch, batch.id)
            row.status, row.tx_hash = "anchored", receipt.tx_hash
            row.block_number, row.gas_used = receipt.block_number, receipt.gas_used
            row.chain_id, row.contract_address = self.anchor.chain_id, self.anchor.contract_address
            row.anchored_at = int(time.time())
            return row

    def recheck_anchored(self) -> list[int]:
        """The anchored tail held against the chain (see :mod:`ledger.reanchoring`): ids of
        batches a reorg took away, now ``submitted`` again."""
        found = recheck_anchored(self.db, self.anchor, confirmations=self.options.confirmations,
                                 before_write=lambda: self._renew_lease(force=True))
        self.moved = found.moved
        return found.reopened

    # -- helpers --------------------------------------------------------------------

    def _load(self, batch_id: int) -> Batch:
        with self.db.session() as s:
            return s.get_one(Batch, batch_id)

    def _check_same_contract(self, batch: Batch) -> None:
        if batch.chain_id is not None and batch.chain_id != self.anchor.chain_id:
            raise ChainError(f"batch {batch.id} was sent to chain {batch.chain_id}, "
                             f"connected to {self.anchor.chain_id}", field="chain")
        if (batch.contract_address is not None
                and batch.contract_address.lower() != self.anchor.contract_address.lower()):
            raise AnchorMismatch(f"batch {batch.id} was sent to contract {batch.contract_address}, "
                                 f"connected to {self.anchor.contract_address}: has the node "
                                 "lost its state?", field="contract")

    def _step(self, step: str, batch_id: int) -> None:
        if self.options.on_step is not None:
            self.options.on_step(step, batch_id)

    def _take_lease(self) -> None:
        if not _SEALING_HERE.acquire(blocking=False):
            raise Conflict("another sealer is running in this process", field="sealer")
        try:
            if acquire_lease(self.db, SEALER_LEASE, self.holder,
                             seconds=self.options.lease_seconds):
                self._renewed = time.monotonic()
                return
        except BaseException:
            _SEALING_HERE.release()
            raise
        _SEALING_HERE.release()
        raise Conflict("another sealer is running", field="sealer")

    def _release_lease(self) -> None:
        try:
            release_lease(self.db, SEALER_LEASE, self.holder)
        except LedgerError as exc:  # the database is down: this process reclaims it later
            log.warning("could not release the sealer lease (%s); this process takes it back "
                        "at its next seal, another after it expires", exc)
        finally:
            _SEALING_HERE.release()

    def _renew_lease(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._renewed < self.options.lease_seconds / 10:
            return
        if not acquire_lease(self.db, SEALER_LEASE, self.holder,
                             seconds=self.options.lease_seconds):
            raise Conflict("another sealer took over the lease; this one stops", field="sealer")
        self._renewed = time.monotonic()


def locate(conn: Connection, batch_id: int, first_seq: int, last_seq: int, *,
           threads: int = 1) -> None:
    """Write the batch's entries into the locator, in id order (neighbouring ids share
    pages), in the caller's transaction. Sorting the ids is most of the work; on SQLite
    the sort may use up to ``threads`` threads (``PRAGMA threads``), as the sealer's
    hashing workers are idle by then (docs/benchmarks.md, seal throughput)."""
    before = None
    if conn.dialect.name == "sqlite" and threads > 1:
        before = int(conn.exec_driver_sql("PRAGMA threads").scalar() or 0)
        conn.exec_driver_sql(f"PRAGMA threads={int(threads)}")
    try:
        conn.execute(insert(EntryLocator).from_select(
            ["entry_key", "seq", "batch_id"],
            # an entry id is its leaf's first 32 bytes, so its key is the leaf's first 16
            select(entry_key(LedgerEntry.leaf).label("k"), LedgerEntry.seq, literal(batch_id))
            .where(LedgerEntry.seq.between(first_seq, last_seq)).order_by("k")))
    finally:
        if before is not None:  # the connection goes back to the pool as it came
            conn.exec_driver_sql(f"PRAGMA threads={before}")


def _shared_id(db: Database, first_seq: int, last_seq: int) -> tuple[bytes, bool] | None:
    """An id whose locator key (its first bytes) two entries hold, one of them in
    ``first_seq..last_seq``, and whether they hold the whole id: why the locator would
    refuse that batch. The ledger makes each id once (a partner's record id, a redemption
    key), so this is a broken invariant, and sealing stops rather than anchor a tree whose
    entries cannot be told apart (two different ids sharing 16 bytes of keccak is not to
    be expected either)."""
    in_range = LedgerEntry.seq.between(first_seq, last_seq)
    key = entry_key(LedgerEntry.leaf)  # an entry id is the leaf's first 32 bytes
    with db.session() as s:
        twice = select(key).where(in_range).group_by(key).having(func.count() > 1).limit(1)
        shared = s.scalar(select(LedgerEntry.entry_id)  # twice in the batch
                          .where(in_range, key == twice.scalar_subquery())
                          .order_by(LedgerEntry.seq).limit(1))
        if shared is None:  # or once in it and once in an earlier batch
            shared = s.scalar(select(LedgerEntry.entry_id).where(in_range)
                              .join(EntryLocator, EntryLocator.entry_key == key).limit(1))
        if shared is None:
            return None
        held = s.scalar(select(func.count()).where(LedgerEntry.entry_id == shared))
    return shared, bool(held and held > 1)

