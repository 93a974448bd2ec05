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
reads and writes one kind's rows, and its kind says what the chain holds for them. The sealer
rechecks batches at each seal's start (:func:`recheck_anchored`); statements are
rechecked before statements are anchored (:func:`ledger.statement_builder.recheck_statements`).

Anchors with no order between them (a campaign version's rules hash, a closed ranking's
root: each under a key of its own) have no tail to find, so :func:`recheck_keyed` holds
each one the ledger calls anchored against the chain on its own, with the same outcomes:
gone, it goes back to be anchored again; mined again elsewhere, its row is put right
(:func:`ledger.campaign_anchoring.recheck_campaign_anchors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class SeriesChain(Protocol):
    """What the walk needs of a chain, whichever the kind of anchor."""

    @property
    def chain_id(self) -> int: ...

    @property
    def contract_address(self) -> str: ...

    def check_contract(self) -> None: ...

    def block_hash(self, block_number: int) -> bytes | None: ...


class AnchoredSeries:
    """One kind of anchor whose keys reach the contract in strict order, kept in a table
    with the anchoring columns (``status``, ``tx_hash``, ``raw_tx``, ``block_number``,
    ``gas_used``, ``anchored_at``, ``chain_id``, ``contract_address``). A kind names its
    table, key and the status of a row with no signed transaction yet, and says what the
    chain holds (:meth:`chain_latest`, :meth:`receipt_of`)."""

    what: str  # "batch", "statement": names it in logs and errors
    model: Any  # the table's mapped class
    key: str  # its key column
    unsent: str  # the status a row goes back to when it has no signed transaction

    def __init__(self, db: Database, chain: SeriesChain) -> None:
        self.db, self.chain = db, chain

    def chain_latest(self) -> int:
        """The last key the contract holds (0 before the first)."""
        raise NotImplementedError

    def receipt_of(self, row: Any) -> TxReceipt | None:
        """The transaction that anchored ``row`` as the chain holds it now; None while the
        chain does not hold it; :class:`AnchorMismatch` if it holds other contents."""
        raise NotImplementedError

    def _row(self, r: Any) -> AnchoredRow:
        return AnchoredRow(getattr(r, self.key), r.tx_hash, r.block_number, r.chain_id,
                           r.contract_address)

    def _anchored_from(self, key: int) -> AnchoredRow | None:
        column = getattr(self.model, self.key)
        with self.db.session() as s:
            last = s.scalar(select(self.model).where(self.model.status == "anchored",
                                                     column <= key)
                            .order_by(column.desc()).limit(1))
        return None if last is None else self._row(last)

    def ledger_last(self) -> tuple[AnchoredRow | None, int]:
        """The last ``anchored`` row (None before the first) and the highest key held."""
        with self.db.session() as s:
            highest = s.scalar(select(func.max(getattr(self.model, self.key)))) or 0
        return self._anchored_from(highest), highest

    def anchored_down_from(self, key: int) -> Iterator[AnchoredRow]:
        """The ``anchored`` rows of keys up to ``key``, newest first, read as needed."""
        while (row := self._anchored_from(key)) is not None:
            yield row
            key = row.key - 1

    def receipt_on_chain(self, key: int) -> TxReceipt | None:
        with self.db.session() as s:
            row = s.get_one(self.model, key)
        return self.receipt_of(row)

    def record_moved(self, key: int, receipt: TxReceipt) -> None:
        record_moved(self.db, self.model, key, receipt)

    def reopen_after(self, key: int) -> None:
        """Put the ``anchored`` rows after ``key`` back to be anchored again: ``submitted``
        with their signed transaction kept, or :attr:`unsent` without one."""
        model = self.model
        with self.db.session(write_lock=True) as s:
            gone = (getattr(model, self.key) > key) & (model.status == "anchored")
            cleared = {"block_number": None, "gas_used": None, "anchored_at": None}
            s.execute(update(model).where(gone, model.raw_tx.is_(None))
                      .values(status=self.unsent, **cleared))
            s.execute(update(model).where(gone).values(status="submitted", **cleared))


def recheck_series(series: AnchoredSeries, *, confirmations: int,
                   before_write: Callable[[], None]) -> Recheck:
    """Put right the anchored tail of ``series`` after a reorg.

    ``before_write`` runs before any row changes (the sealer renews its lease there)."""
    last, highest = series.ledger_last()
    found = Recheck()
    if last is None:
        return found
    chain = series.chain
    same_contract(chain, f"{series.what} {last.key}", last.chain_id, last.contract_address)
    chain.check_contract()
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


def same_contract(chain: SeriesChain, label: str, chain_id: int | None,
                  contract_address: str | None) -> None:
    """Refuse to hold an anchor against another chain or contract than it went to."""
    if (chain_id, (contract_address or "").lower()) != (
            chain.chain_id, chain.contract_address.lower()):
        raise AnchorMismatch(f"{label} was anchored to {contract_address} on chain {chain_id}, "
                             f"the ledger is connected to {chain.contract_address} on chain "
                             f"{chain.chain_id}: has the node lost its state?", field="contract")


def record_moved(db: Database, model: Any, key: Any, receipt: TxReceipt) -> None:
    """Put right the transaction and block of row ``key`` of ``model``, its anchor mined
    again elsewhere."""
    with db.session(write_lock=True) as s:
        row = s.get_one(model, key)
        row.tx_hash, row.block_number, row.gas_used = (
            receipt.tx_hash, receipt.block_number, receipt.gas_used)


def plural(what: str) -> str:
    return what + ("es" if what.endswith("ch") else "s")


def is_canonical(chain: SeriesChain, receipt: TxReceipt) -> bool:
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


# -- anchors with no order between them -------------------------------------------------------

@dataclass
class KeyedRecheck:
    """What a recheck of keyed anchors changed, each named by its label."""

    reopened: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)


class KeyedAnchors:
    """One kind of anchor kept under a key of its own, in a table with the anchoring
    columns (``status``, ``tx_hash``, ``raw_tx``, ``block_number``, ``gas_used``,
    ``chain_id``, ``contract_address``). A kind names its table, key, the status of a row
    the chain holds (:attr:`held`) and of one with no signed transaction (:attr:`unsent`),
    the time column a row taken away loses, and says what the chain holds
    (:meth:`receipt_of`)."""

    what: str  # "campaign publication", "ranking": names it in logs and errors
    model: Any
    key: str
    held: str
    unsent: str
    held_since: str  # the column saying when it was anchored

    def __init__(self, db: Database, chain: SeriesChain) -> None:
        self.db, self.chain = db, chain

    def receipt_of(self, row: Any) -> TxReceipt | None:
        """As :meth:`AnchoredSeries.receipt_of`."""
        raise NotImplementedError

    def label(self, row: Any) -> str:
        return f"{self.what} {getattr(row, self.key)}"

    def held_rows(self) -> list[Any]:
        with self.db.session() as s:
            rows = list(s.scalars(select(self.model).where(self.model.status == self.held)))
            s.expunge_all()
        return rows

    def reopen(self, key: Any) -> None:
        """Put a row back to be anchored again: ``submitted`` with its signed transaction
        kept, or :attr:`unsent` without one."""
        with self.db.session(write_lock=True) as s:
            row = s.get_one(self.model, key)
            row.status = "submitted" if row.raw_tx is not None else self.unsent
            row.block_number = row.gas_used = None
            setattr(row, self.held_since, None)


def recheck_keyed(anchors: KeyedAnchors) -> KeyedRecheck:
    """Hold every row of ``anchors`` the ledger calls anchored against the chain: one
    the chain no longer holds goes back to be anchored again, one mined again in another
    block gets its transaction and block put right; other contents are an
    :class:`AnchorMismatch`."""
    found = KeyedRecheck()
    rows = anchors.held_rows()
    chain = anchors.chain
    if rows:
        chain.check_contract()
    for row in rows:
        label = anchors.label(row)
        same_contract(chain, label, row.chain_id, row.contract_address)
        receipt = anchors.receipt_of(row)
        key = getattr(row, anchors.key)
        if receipt is None:
            log.error("%s was anchored (block %s) but the chain no longer holds it (a reorg, "
                      "or a node restored from an older state): anchoring it again", label,
                      row.block_number)
            anchors.reopen(key)
            found.reopened.append(label)
        elif (receipt.tx_hash, receipt.block_number) != (row.tx_hash, row.block_number) \
                or not is_canonical(chain, receipt):
            log.warning("%s: its anchor is now tx 0x%s in block %s (was block %s): a reorg "
                        "mined it again", label, receipt.tx_hash.hex(), receipt.block_number,
                        row.block_number)
            record_moved(anchors.db, anchors.model, key, receipt)
            found.moved.append(label)
    return found


# -- batches ----------------------------------------------------------------------------------

class BatchSeries(AnchoredSeries):
    """Batches: ids 1, 2, 3… in ``batches``."""

    what, model, key, unsent = "batch", Batch, "id", "sealed"

    def __init__(self, db: Database, anchor: Anchor) -> None:
        super().__init__(db, anchor)
        self.anchor = anchor

    def chain_latest(self) -> int:
        return self.anchor.latest_batch_id()

    def receipt_of(self, row: Any) -> TxReceipt | None:
        return anchoring_receipt(self.anchor, row)


def recheck_anchored(db: Database, anchor: Anchor, *, confirmations: int,
                     before_write: Callable[[], None]) -> Recheck:
    """Put right the anchored tail of batches after a reorg (see :func:`recheck_series`)."""
    return recheck_series(BatchSeries(db, anchor), confirmations=confirmations,
                          before_write=before_write)
