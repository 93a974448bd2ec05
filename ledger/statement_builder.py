"""Building, anchoring and proving month statements, over the ledger's database.

A month's statement is built once the month is over (plus a settling time, so the last
night's records are in), and only when every entry of the month that the ledger holds is
in an anchored batch: it counts batches up to the last anchored one. Months are built
one after another with no gap (the contract holds them to that too); the first is the
month of the ledger's first entry. Every citizen gets a leaf, zero totals included, so a
bank can be shown a quiet month as well as a busy one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import merkle
from ledger.anchoring import TxReceipt
from ledger.errors import AnchorMismatch, ChainError, Conflict, InvalidInput, NotFound
from ledger.leaf import LeafValues, decode_leaf
from ledger.methodology import local_day_offset
from ledger.proofs import TreeCache, default_tree_cache
from ledger.reanchoring import AnchoredSeries, Recheck, recheck_series
from ledger.statement_audit import statement_receipt
from ledger.statements import (
    AreaTotal,
    StatementChain,
    StatementLeafValues,
    account_leaf,
    areas_from_json,
    areas_json_text,
    content_hash,
    decode_statement_leaf,
    next_period,
    period_bounds,
    period_label,
    period_of,
)
from ledger.store.database import Database
from ledger.store.models import Batch, Citizen, LedgerEntry, Statement, StatementLeaf
from ledger.store.trees import STATEMENT_TREES, store_tree

log = logging.getLogger("carbon_ledger.statements")

#: How long after a month's end its statement waits, so records received the night after
#: (as partners deliver them) are counted in it rather than in the next month's.
DEFAULT_SETTLE_SECONDS = 86_400
#: A batch sealed this long before a month's end holds no entry that occurred after it
#: (records at most minutes in the future are accepted; the margin covers clocks too).
SEALED_BEFORE_MARGIN = 2 * 86_400


def _anchored_through(session: Session) -> tuple[int, int]:
    """The last anchored batch and its last seq ((0, 0) before the first). Batches are
    anchored in id order, so the anchored ones are a prefix."""
    row = session.execute(select(Batch.id, Batch.last_seq).where(Batch.status == "anchored")
                          .order_by(Batch.id.desc()).limit(1)).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _previous(session: Session, period: int) -> Statement | None:
    return session.scalar(select(Statement).where(Statement.period < period)
                          .order_by(Statement.period.desc()).limit(1))


def due_period(session: Session) -> int | None:
    """The month whose statement comes next: the one after the last built, or the month of
    the ledger's first entry; None on an empty ledger."""
    last = session.scalar(select(func.max(Statement.period)))
    if last is not None:
        return next_period(int(last))
    first_at = session.scalar(select(func.min(LedgerEntry.occurred_at)))
    return None if first_at is None else period_of(int(first_at), local_day_offset())


def build_statement(db: Database, *, now: int | None = None, period: int | None = None,
                    settle_seconds: int = DEFAULT_SETTLE_SECONDS) -> Statement:
    """Build the next month's statement (``period``, if given, must be that month)."""
    now = int(time.time()) if now is None else now
    with db.session(write_lock=True) as s:
        due = due_period(s)
        if due is None:
            raise Conflict("the ledger has no entries: there is no month to state", field="period")
        if period is not None and period != due:
            raise Conflict(f"the next statement is {period_label(due)}'s: months are stated "
                           "in order, once", field="period")
        previous = _previous(s, due)
        if previous is not None and previous.status != "anchored":
            raise Conflict(f"{period_label(previous.period)}'s statement is not anchored yet: "
                           "run `carbon-ledger statement anchor`", field="period")
        start, end = period_bounds(due, local_day_offset())
        if now < end + settle_seconds:
            raise Conflict(f"{period_label(due)} is not over (with {settle_seconds} s to settle) "
                           f"until {end + settle_seconds}", field="period")
        through_batch, through_seq = _anchored_through(s)
        waiting = s.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.seq > through_seq, LedgerEntry.occurred_at < end))
        if waiting:
            raise Conflict(f"{waiting} entries of {period_label(due)} or before are not in an "
                           "anchored batch yet: run `carbon-ledger seal` first", field="period")
        prev_seq = previous.through_seq if previous else 0
        prev_end = previous.period_end if previous else 0
        statement = _build(s, due, end, through_batch, through_seq, prev_seq, prev_end, now)
        s.expunge(statement)
    log.info("statement %s built: %d accounts, root 0x%s", period_label(due),
             statement.leaf_count, statement.root.hex())
    return statement


def build_due_statements(db: Database, chain: StatementChain, *,
                         settle_seconds: int = DEFAULT_SETTLE_SECONDS,
                         now: int | None = None) -> list[Statement]:
    """Hold the anchored statements against the chain (a reorg may have taken some away:
    :func:`recheck_statements`), anchor what a crash or a reorg left unanchored, then build
    and anchor every month now due, in order; the statements built. Stops quietly at the
    first month not due (over, sealed)."""
    recheck_statements(db, chain)
    anchor_statements(db, chain)
    built: list[Statement] = []
    while True:
        try:
            st = build_statement(db, now=now, settle_seconds=settle_seconds)
        except Conflict as exc:
            log.debug("no statement due: %s", exc.message)
            return built
        anchor_statements(db, chain)
        built.append(st)


def counted_entries(session: Session, *, through_seq: int, period_end: int, previous_seq: int,
                    previous_end: int) -> dict[int, list[LeafValues]]:
    """Each citizen's entries a statement counts (see :func:`ledger.statements.counted_in`),
    in ledger order: those sealed since the last statement that occurred before the month's
    end, after the ones the last statement left for a later month (sealed before it, but
    occurred after its month). Two ranges of ``seq``, not a scan of the ledger: an entry
    that occurred after the last month's end was written after it (records dated in the
    future are refused), so it is in no batch sealed well before then."""
    floor = session.scalar(select(Batch.last_seq)
                           .where(Batch.sealed_at < previous_end - SEALED_BEFORE_MARGIN)
                           .order_by(Batch.id.desc()).limit(1)) or 0
    left_for_later = (select(LedgerEntry.citizen_id, LedgerEntry.leaf)
                      .where(LedgerEntry.seq > floor, LedgerEntry.seq <= previous_seq,
                             LedgerEntry.occurred_at >= previous_end,
                             LedgerEntry.occurred_at < period_end).order_by(LedgerEntry.seq))
    sealed_since = (select(LedgerEntry.citizen_id, LedgerEntry.leaf)
                    .where(LedgerEntry.seq > previous_seq, LedgerEntry.seq <= through_seq,
                           LedgerEntry.occurred_at < period_end).order_by(LedgerEntry.seq))
    by_citizen: dict[int, list[LeafValues]] = defaultdict(list)
    for query in (left_for_later, sealed_since):  # every seq of the first below the second's
        for citizen_id, leaf in session.execute(query):
            by_citizen[int(citizen_id)].append(decode_leaf(bytes(leaf)))
    return by_citizen


def _build(s: Session, period: int, end: int, through_batch: int, through_seq: int,
           prev_seq: int, prev_end: int, now: int) -> Statement:
    entries = counted_entries(s, through_seq=through_seq, period_end=end,
                              previous_seq=prev_seq, previous_end=prev_end)
    citizens = s.execute(select(Citizen.id, Citizen.account).order_by(Citizen.account)).all()
    if not citizens:
        raise Conflict("the ledger has no citizens", field="period")
    leaves: list[tuple[int, StatementLeafValues, list[AreaTotal]]] = []
    for citizen_id, account in citizens:
        leaf, areas = account_leaf(period, bytes(account), entries.get(int(citizen_id), []),
                                   secrets.token_bytes(32))
        leaves.append((int(citizen_id), leaf, areas))
    hashes = [leaf.leaf_hash() for _, leaf, _ in leaves]
    nodes = merkle.build_tree(sorted(hashes))
    statement = Statement(period=period, through_batch_id=through_batch, through_seq=through_seq,
                          period_end=end, leaf_count=len(leaves), root=merkle.root(nodes),
                          content_hash=content_hash(hashes), status="built", built_at=now)
    s.add(statement)
    s.flush()
    store_tree(s.connection(), period, nodes, rows=STATEMENT_TREES)
    s.add_all([StatementLeaf(period=period, citizen_id=cid, leaf=leaf.encode(),
                             areas=areas_json_text(areas)) for cid, leaf, areas in leaves])
    return statement


# -- anchoring ------------------------------------------------------------------------------

def anchor_statements(db: Database, chain: StatementChain, *, timeout: float = 120.0) -> list[int]:
    """Anchor every built statement not anchored yet, in month order; the months anchored.

    The signed transaction is recorded before it is sent, so a rerun after a crash sends
    the same one again; a month the chain already holds with the same root is taken as
    anchored, one it holds with another root is an :class:`AnchorMismatch`."""
    with db.session() as s:
        waiting = list(s.scalars(select(Statement.period).where(Statement.status != "anchored")
                                 .order_by(Statement.period)))
    for period in waiting:
        _anchor_one(db, chain, period, timeout)
    return waiting


def _anchor_one(db: Database, chain: StatementChain, period: int, timeout: float) -> None:
    with db.session() as s:
        st = s.get(Statement, period)
        assert st is not None
        s.expunge(st)
    on_chain = chain.statement_root(period)
    if on_chain is not None:
        if on_chain != st.root:
            raise AnchorMismatch(f"{period_label(period)} on chain has root 0x{on_chain.hex()}, "
                                 f"the ledger built 0x{st.root.hex()}", field="root")
        receipt = chain.find_statement_receipt(period)
        if receipt is None:
            raise AnchorMismatch(f"{period_label(period)} is on chain but its transaction was "
                                 "not found", field="txHash")
    else:
        if st.raw_tx is None or st.tx_hash is None or not chain.is_known(st.tx_hash):
            prepared = chain.prepare_statement(
                period=period, root=st.root, leaf_count=st.leaf_count,
                through_batch_id=st.through_batch_id, content_hash=st.content_hash)
            with db.session(write_lock=True) as s:
                row = s.get(Statement, period)
                assert row is not None
                row.tx_hash, row.raw_tx, row.status = prepared.tx_hash, prepared.raw, "submitted"
            st.tx_hash, st.raw_tx = prepared.tx_hash, prepared.raw
        chain.broadcast(st.raw_tx)
        receipt = chain.wait_for_receipt(st.tx_hash, timeout=timeout)
        if not receipt.succeeded:
            raise ChainError(f"the anchor of {period_label(period)}'s statement reverted",
                             field="txHash")
    with db.session(write_lock=True) as s:
        row = s.get(Statement, period)
        assert row is not None
        row.status, row.tx_hash, row.block_number = "anchored", receipt.tx_hash, receipt.block_number
        row.gas_used, row.anchored_at = receipt.gas_used, int(time.time())
        row.chain_id, row.contract_address = chain.chain_id, chain.contract_address
    log.info("statement %s anchored in block %d (%d gas)", period_label(period),
             receipt.block_number, receipt.gas_used)


# -- after a reorg ---------------------------------------------------------------------------

class StatementSeries(AnchoredSeries):
    """Month statements: one month after another in ``statements``, keyed by yyyymm."""

    what, model, key, unsent = "statement", Statement, "period", "built"

    def __init__(self, db: Database, chain: StatementChain) -> None:
        super().__init__(db, chain)
        self.statements = chain

    def chain_latest(self) -> int:
        return self.statements.latest_statement()[0]

    def receipt_of(self, row: Any) -> TxReceipt | None:
        return statement_receipt(self.statements, row)


def recheck_statements(db: Database, chain: StatementChain, *,
                       before_write: Callable[[], None] = lambda: None) -> Recheck:
    """Put right the anchored statements after a reorg, as the sealer does for batches
    (:func:`ledger.reanchoring.recheck_series`): months the chain no longer holds go back
    to be anchored again (their signed transaction kept), and a statement's anchor mined
    again in another block gets its row corrected. Statements count as anchored once
    mined, so a reorg of any depth can reach them."""
    found = recheck_series(StatementSeries(db, chain), confirmations=1,
                           before_write=before_write)
    if found.reopened or found.moved:
        log.warning("statements after a reorg: %s to anchor again, %s moved to another block",
                    [period_label(p) for p in found.reopened],
                    [period_label(p) for p in found.moved])
    return found


# -- proofs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatementProof:
    """A citizen's leaf in a month's anchored statement, its area totals and its path."""

    leaf: StatementLeafValues
    areas: list[AreaTotal]
    proof: list[bytes]
    statement: Statement


def statement_proofs(session: Session, citizen_id: int, periods: list[int], *,
                     cache: TreeCache = default_tree_cache) -> list[StatementProof]:
    """The citizen's leaves and proofs for ``periods``, each an anchored statement, from
    the rows of the stored trees that the proofs need (a month's first proof costs what
    any other does)."""
    out = []
    for period in periods:
        st = session.get(Statement, period)
        if st is None or st.status != "anchored":
            raise NotFound(f"{period_label(period)} has no anchored statement yet", field="period")
        row = session.get(StatementLeaf, (period, citizen_id))
        if row is None:
            raise NotFound(f"{period_label(period)}'s statement has no leaf of yours (the "
                           "account was opened after it)", field="period")
        leaf = decode_statement_leaf(bytes(row.leaf))
        tree = cache.tree(session, period, st.root, st.leaf_count, rows=STATEMENT_TREES)
        index = tree.find_leaf(leaf.leaf_hash())
        if index is None:
            raise InvalidInput(f"{period_label(period)}'s stored tree lacks the stored leaf",
                               field="statement")
        path = tree.proof(index)
        if merkle.root_from_proof(leaf.leaf_hash(), path) != st.root:  # the rows read are the tree built
            raise InvalidInput(f"{period_label(period)}'s stored tree does not lead to its root",
                               field="statement")
        out.append(StatementProof(leaf, areas_from_json(_json(row.areas)), path, st))
    return out


def _json(text: str) -> object:
    import json

    return json.loads(text)
