"""Anchors already called ``anchored``, held against the chain after a reorg.

Two kinds of anchor reach the contract in strict order: batch roots (ids 1, 2, 3…) and
month statements' roots (one month after another). An anchor is ``anchored`` once it has
its confirmations (a statement's, once mined), but a deeper reorg (or a node restored
from an older state) can still take it away. The order means only a tail can go, and the
chain's latest key (batch id, month) says where it starts: those rows go back to
``submitted`` (contents untouched, their signed transaction kept for reuse) and are
anchored again under the same keys. A reorg that mined an anchor again in another block
only needs the row's transaction and block put right. Anything else that differs is an
:class:`AnchorMismatch`, never papered over.

One walk (:func:`recheck_series`) does this for both kinds; an :class:`AnchoredSeries`
says how to read and write one kind's rows and what the chain holds for them. The sealer
rechecks batches at each seal's start (:func:`recheck_anchored`); statements are
rechecked before statements are anchored (:func:`ledger.statement_builder.recheck_statements`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, select, update

from ledger.anchor_audit import anchoring_receipt
from ledger.anchoring import Anchor, TxReceipt
from ledger.errors import AnchorMismatch
from ledger.store.database import Database
from ledger.store.models import Batch

log = logging.getLogger("carbon_ledger.sealer")


@dataclass
class Recheck:
    """What a recheck changed: keys to anchor again, and keys whose anchor moved."""

    reopened: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class AnchoredRow:
    """What the ledger recorded of one anchor."""

    key: int
    tx_hash: bytes | None
    block_number: int | None
    chain_id: int | None
    contract_address: str | None


class BlockReader(Protocol):
    def block_hash(self, block_number: int) -> bytes | None: ...


class AnchoredSeries(Protocol):
    """One kind of anchor whose keys reach the contract in strict order."""

    what: str  # "batch", "statement": names it in logs and errors

    @property
    def chain(self) -> BlockReader: ...

    @property
    def chain_id(self) -> int: ...

    @property
    def contract_address(self) -> str: ...

    def check_contract(self) -> None: ...

    def chain_latest(self) -> int:
        """The last key the contract holds (0 before the first)."""
        ...

    def ledger_last(self) -> tuple[AnchoredRow | None, int]:
        """The last ``anchored`` row (None before the first) and the highest key held."""
        ...

    def anchored_down_from(self, key: int) -> Iterable[AnchoredRow]:
        """The ``anchored`` rows of keys up to ``key``, newest first."""
        ...

    def receipt_on_chain(self, key: int) -> TxReceipt | None:
        """The transaction that anchored ``key`` as the chain holds it now; None while the
        chain does not hold it; :class:`AnchorMismatch` if it holds other contents."""
        ...

    def record_moved(self, key: int, receipt: TxReceipt) -> None: ...

    def reopen_after(self, key: int) -> None:
        """Put the ``anchored`` rows after ``key`` back to be anchored again."""
        ...


def recheck_series(series: AnchoredSeries, *, confirmations: int,
                   before_write: Callable[[], None]) -> Recheck:
    """Put right the anchored tail of ``series`` after a reorg.

    ``before_write`` runs before any row changes (the sealer renews its lease there)."""
    last, highest = series.ledger_last()
    found = Recheck()
    if last is None:
        return found
    if (last.chain_id, (last.contract_address or "").lower()) != (
            series.chain_id, series.contract_address.lower()):
        raise AnchorMismatch(f"{series.what} {last.key} was anchored to {last.contract_address} "
                             f"on chain {last.chain_id}, the ledger is connected to "
                             f"{series.contract_address} on chain {series.chain_id}: has the "
                             "node lost its state?", field="contract")
    series.check_contract()
    latest = series.chain_latest()
    if latest > highest:
        raise AnchorMismatch(f"the chain holds {series.what} {latest}, the ledger has only "
                             f"up to {highest}: another ledger anchors to this contract",
                             field=series.what)
    found.moved = _repair_moved(series, min(latest, last.key), before_write)
    if latest >= last.key:
        return found
    reopened = [row.key for row in series.anchored_down_from(last.key) if row.key > latest]
    log.error("%s %s..%s were anchored but the chain's latest %s is now %s (a reorg deeper "
              "than %s confirmation(s), or a node restored from an older state): anchoring "
              "them again under the same keys", plural(series.what), min(reopened), last.key,
              series.what, latest, confirmations)
    before_write()
    series.reopen_after(latest)
    found.reopened = sorted(reopened)
    return found


def plural(what: str) -> str:
    return what + ("es" if what.endswith("ch") else "s")


def is_canonical(chain: BlockReader, receipt: TxReceipt) -> bool:
    """False when the receipt's block is no longer the chain's block at that height."""
    return receipt.block_hash is None or chain.block_hash(receipt.block_number) == receipt.block_hash


def _repair_moved(series: AnchoredSeries, newest: int,
                  before_write: Callable[[], None]) -> list[int]:
    """Walk back from ``newest`` while rows' recorded blocks are not canonical: the first
    intact one vouches for every earlier one (each anchor needed its predecessor on chain,
    so that lies in an ancestor block). Returns the keys put right."""
    moved = []
    for row in series.anchored_down_from(newest):
        receipt = series.receipt_on_chain(row.key)
        if receipt is None:
            raise AnchorMismatch(f"{series.what} {row.key}: missing on chain", field="root")
        if (receipt.tx_hash == row.tx_hash and receipt.block_number == row.block_number
                and is_canonical(series.chain, receipt)):
            break
        log.warning("%s %s: its anchor is now tx 0x%s in block %s (was block %s): a reorg "
                    "mined it again", series.what, row.key, receipt.tx_hash.hex(),
                    receipt.block_number, row.block_number)
        before_write()
        series.record_moved(row.key, receipt)
        moved.append(row.key)
    return moved


# -- batches ----------------------------------------------------------------------------------

def _row(key: int, r: Batch) -> AnchoredRow:
    return AnchoredRow(key, r.tx_hash, r.block_number, r.chain_id, r.contract_address)


class BatchSeries:
    """Batches as an :class:`AnchoredSeries`: ids 1, 2, 3… in ``batches``."""

    what = "batch"

    def __init__(self, db: Database, anchor: Anchor) -> None:
        self.db, self.chain = db, anchor

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    @property
    def contract_address(self) -> str:
        return self.chain.contract_address

    def check_contract(self) -> None:
        self.chain.check_contract()

    def chain_latest(self) -> int:
        return self.chain.latest_batch_id()

    def ledger_last(self) -> tuple[AnchoredRow | None, int]:
        with self.db.session() as s:
            last = s.scalar(select(Batch).where(Batch.status == "anchored")
                            .order_by(Batch.id.desc()).limit(1))
            total = s.scalar(select(func.max(Batch.id))) or 0
        return (None if last is None else _row(last.id, last)), total

    def anchored_down_from(self, key: int) -> Iterable[AnchoredRow]:
        for batch_id in range(key, 0, -1):  # batches are anchored in id order
            with self.db.session() as s:
                batch = s.get_one(Batch, batch_id)
            if batch.status == "anchored":
                yield _row(batch_id, batch)

    def receipt_on_chain(self, key: int) -> TxReceipt | None:
        with self.db.session() as s:
            batch = s.get_one(Batch, key)
        return anchoring_receipt(self.chain, batch)

    def record_moved(self, key: int, receipt: TxReceipt) -> None:
        with self.db.session(write_lock=True) as s:
            row = s.get_one(Batch, key)
            row.tx_hash, row.block_number, row.gas_used = (
                receipt.tx_hash, receipt.block_number, receipt.gas_used)

    def reopen_after(self, key: int) -> None:
        with self.db.session(write_lock=True) as s:
            gone = (Batch.id > key) & (Batch.status == "anchored")
            s.execute(update(Batch).where(gone, Batch.raw_tx.is_(None))
                      .values(status="sealed", block_number=None, gas_used=None,
                              anchored_at=None))
            s.execute(update(Batch).where(gone)
                      .values(status="submitted", block_number=None, gas_used=None,
                              anchored_at=None))


def recheck_anchored(db: Database, anchor: Anchor, *, confirmations: int,
                     before_write: Callable[[], None]) -> Recheck:
    """Put right the anchored tail of batches after a reorg (see :func:`recheck_series`)."""
    return recheck_series(BatchSeries(db, anchor), confirmations=confirmations,
                          before_write=before_write)
