"""The statement audit: every month's leaves recomputed from the anchored entry batches.

An operator could anchor a statement tree that is internally sound (its root folds from
its leaves) yet says more than the ledger holds: an inflated total, an entry left out of
an account's commitment, an account left out. So the audit recomputes, per month, each
account's leaf from the entries the counting rule gives (see :mod:`ledger.statements`):
the entries of the batches the statement counts (each batch first recomputed to its
sealed root, so they are the anchored ones), by the account commitment inside each entry
leaf (so an erased citizen's months are audited like any other). It needs nothing but the
ledger's tables; :func:`statement_chain_problems` compares the stored statements with the
chain for ``carbon-ledger chain check``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import merkle
from ledger.anchor_audit import anchor_problem
from ledger.anchoring import TxReceipt
from ledger.errors import AnchorMismatch
from ledger.leaf import LeafValues, decode_leaf
from ledger.statements import (
    StatementLeafValues,
    StatementReader,
    account_leaf,
    content_hash,
    counted_in,
    decode_statement_leaf,
    period_label,
)
from ledger.store.models import Batch, LedgerEntry, Statement, StatementLeaf

_TOTALS = (("reduction_grams", "reductionGrams"), ("points_earned", "pointsEarned"),
           ("points_spent", "pointsSpent"), ("entry_count", "entryCount"))


@dataclass
class StatementReport:
    period: int
    accounts: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_statements(session: Session, periods: Sequence[int] | None = None) -> list[StatementReport]:
    """Audit the built statements (``periods``, or all), in month order."""
    statements = list(session.scalars(select(Statement)
                                      .order_by(Statement.period)))
    reports = []
    previous: Statement | None = None
    checked_batches: dict[int, str | None] = {}
    for st in statements:
        if periods is None or st.period in periods:
            reports.append(_audit_one(session, st, previous, checked_batches))
        previous = st
    return reports


def _audit_one(session: Session, st: Statement, previous: Statement | None,
               checked_batches: dict[int, str | None]) -> StatementReport:
    report = StatementReport(st.period)
    label = period_label(st.period)
    leaves = [decode_statement_leaf(bytes(leaf)) for leaf in session.scalars(
        select(StatementLeaf.leaf).where(StatementLeaf.period == st.period))]
    report.accounts = len(leaves)
    _check_tree(st, leaves, report)
    _check_batches(session, st, report, checked_batches)
    prev_seq, prev_end = (previous.through_seq, previous.period_end) if previous else (0, 0)
    if previous is not None and previous.through_seq > st.through_seq:
        report.problems.append(f"{label} counts batches through seq {st.through_seq}, fewer "
                               f"than the month before ({previous.through_seq})")
    by_account: dict[bytes, list[LeafValues]] = defaultdict(list)
    for seq, raw in session.execute(
            select(LedgerEntry.seq, LedgerEntry.leaf).where(LedgerEntry.seq <= st.through_seq)
            .order_by(LedgerEntry.seq)):
        values = decode_leaf(bytes(raw))
        if counted_in(seq=seq, occurred_at=values.occurred_at, through_seq=st.through_seq,
                      period_end=st.period_end, previous_seq=prev_seq, previous_end=prev_end):
            by_account[values.account].append(values)
            report.entries += 1
    seen: set[bytes] = set()
    for leaf in leaves:
        if leaf.account in seen:
            report.problems.append(f"account 0x{leaf.account.hex()} has two leaves")
        seen.add(leaf.account)
        _check_leaf(leaf, by_account.get(leaf.account, []), st.period, report)
    for account in sorted(set(by_account) - seen):
        report.problems.append(f"account 0x{account.hex()} has {len(by_account[account])} "
                               f"counted entries but no leaf in {label}'s statement")
    return report


def _check_tree(st: Statement, leaves: list[StatementLeafValues], report: StatementReport) -> None:
    if not leaves:
        report.problems.append("the statement has no leaves")
        return
    hashes = [leaf.leaf_hash() for leaf in sorted(leaves, key=lambda v: v.account)]
    rebuilt = merkle.root(merkle.build_tree(sorted(hashes)))
    if rebuilt != st.root:
        report.problems.append(f"the leaves fold to root 0x{rebuilt.hex()}, the statement's "
                               f"root is 0x{st.root.hex()}")
    if len(leaves) != st.leaf_count:
        report.problems.append(f"{len(leaves)} leaves stored, the statement says {st.leaf_count}")
    if content_hash(hashes) != st.content_hash:
        report.problems.append("the content hash differs from the leaves in account order")


def _check_batches(session: Session, st: Statement, report: StatementReport,
                   checked: dict[int, str | None]) -> None:
    """Every batch the statement counts is anchored and its entries fold to its root."""
    batches = list(session.scalars(select(Batch).where(Batch.id <= st.through_batch_id)
                                   .order_by(Batch.id)))
    if len(batches) != st.through_batch_id or (batches and batches[-1].last_seq != st.through_seq):
        report.problems.append(f"the statement counts batches 1-{st.through_batch_id} through "
                               f"seq {st.through_seq}; the ledger's batches do not end there")
    for b in batches:
        if b.id not in checked:
            checked[b.id] = _batch_problem(session, b)
        if checked[b.id]:
            report.problems.append(f"batch {b.id}: {checked[b.id]}")


def _batch_problem(session: Session, b: Batch) -> str | None:
    if b.status != "anchored":
        return f"counted but {b.status}, not anchored"
    leaves = list(session.scalars(select(LedgerEntry.leaf).where(
        LedgerEntry.seq >= b.first_seq, LedgerEntry.seq <= b.last_seq)))
    if len(leaves) != b.leaf_count:
        return f"{len(leaves)} entries, the batch holds {b.leaf_count}"
    rebuilt = merkle.root(merkle.build_tree(sorted(merkle.hash_leaf(bytes(x)) for x in leaves)))
    return None if rebuilt == b.root else "its entries no longer fold to its anchored root"


def _check_leaf(leaf: StatementLeafValues, entries: list[LeafValues], period: int,
                report: StatementReport) -> None:
    who = f"account 0x{leaf.account.hex()}"
    if leaf.period != period:
        report.problems.append(f"{who}: the leaf says {period_label(leaf.period)}")
    expected, _ = account_leaf(period, leaf.account, entries, leaf.salt)
    for attr, name in _TOTALS:
        stated, recomputed = getattr(leaf, attr), getattr(expected, attr)
        if stated != recomputed:
            report.problems.append(f"{who}: {name} {stated} in the leaf, {recomputed} from the "
                                   "anchored entries")
    if leaf.entries != expected.entries:
        report.problems.append(f"{who}: the entries commitment differs from the "
                               f"{len(entries)} anchored entries in ledger order")
    if leaf.areas != expected.areas:
        report.problems.append(f"{who}: the areas commitment differs from the anchored entries")


# -- against the chain ----------------------------------------------------------------------

@dataclass(frozen=True)
class StatementProblem:
    period: int
    problem: str


def stored_statements(session: Session) -> list[Statement]:
    """The ledger's month statements, in month order, detached from the session."""
    statements = list(session.scalars(select(Statement)
                                      .order_by(Statement.period)))
    for st in statements:
        session.expunge(st)
    return statements


def statement_chain_problems(reader: StatementReader | None,
                             statements: Sequence[Statement], *,
                             chain_tail: int | None = None) -> list[StatementProblem]:
    """Every anchored statement the chain does not hold as the ledger says (its root in the
    state; its leaf count, batch cut and content hash in its event), and any month the chain
    holds beyond the ledger's: beyond ``chain_tail``, its latest month read before
    ``statements`` were, as for batches (read now if None)."""
    anchored = [s for s in statements if s.status == "anchored"]
    if reader is None:
        return [StatementProblem(s.period, "missing on chain") for s in anchored]
    problems = []
    for st in anchored:
        problem = _on_chain_problem(reader, st)
        if problem:
            problems.append(StatementProblem(st.period, problem))
    last = reader.latest_statement()[0] if chain_tail is None else chain_tail
    known = max((s.period for s in statements), default=0)
    if last > known:
        problems.append(StatementProblem(last, "on chain but never built by this ledger"))
    return problems


def statement_receipt(reader: StatementReader, st: Statement) -> TxReceipt | None:
    """The receipt of the transaction that anchored ``st`` as the chain holds it now (the
    one the ledger recorded, or another: the same mined again after a reorg, a second
    attempt); None while the contract holds no root for its month. :class:`AnchorMismatch`
    if the chain holds other contents for the month (root in the state; leaf count, batch
    cut and content hash in the event), or the root with no transaction to show for it."""
    prefix = f"{period_label(st.period)} on chain: "
    root = reader.statement_root(st.period)
    if root is None:
        return None
    if root != st.root:
        raise AnchorMismatch(f"{prefix}root differs: chain 0x{root.hex()}, ledger "
                             f"0x{st.root.hex()}", field="root")
    receipt = reader.find_statement_receipt(st.period)
    if receipt is None:
        raise AnchorMismatch(f"{prefix}its anchoring transaction was not found", field="txHash")
    events = [e for e in reader.statement_events(receipt.tx_hash) if e.period == st.period]
    if not events:
        raise AnchorMismatch(f"{prefix}its anchoring transaction has no StatementAnchored "
                             "event for it", field="txHash")
    e = events[0]
    if (e.leaf_count, e.through_batch_id, e.content_hash) != (
            st.leaf_count, st.through_batch_id, st.content_hash):
        raise AnchorMismatch(f"{prefix}event differs: chain {e.leaf_count} leaves through "
                             f"batch {e.through_batch_id}, ledger {st.leaf_count} through "
                             f"{st.through_batch_id}", field="root")
    return receipt


def _on_chain_problem(reader: StatementReader, st: Statement) -> str | None:
    return anchor_problem(lambda: statement_receipt(reader, st),
                          f"{period_label(st.period)} on chain: ", tx_hash=st.tx_hash,
                          block_number=st.block_number)
