"""An auditor's recomputation of a sealed batch, from the partners' raw records up.

For every entry of the batch: the sealed leaf must encode the entry's columns; a credit's
raw record (as the partner submitted it, RFC 8785) must hash to the leaf's ``recordHash``
and re-parse to the same behaviour, quantity and time; the methodology version in force
at that time must be the one recorded; the reduction recomputed from the published
factors must equal the credited grams, or exceed them only where a daily or monthly
cap shows it was reached; points must follow that version's rule; the locator must
find the entry by its id. The batch's tree is rebuilt from the leaves and must give the
stored root, and the leaf hashes in entry order the stored content hash. Given a chain
reader, the recomputed root, leaf count and content hash must also be what the chain
holds: the root in the contract's state, the rest in the anchoring transaction's event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.anchor_audit import anchored_batch
from ledger.anchoring import ChainReader
from ledger.errors import AnchorMismatch, InvalidInput, NotFound
from ledger.hashing import keccak
from ledger.leaf import KIND_CREDIT, behaviour_code, decode_leaf
from ledger.merkle import build_tree, hash_leaf, root
from ledger.methodology import load_methodology, methodology_in_force
from ledger.records import parse_record
from ledger.store.models import (
    ActivityRecord,
    Batch,
    DailyTotal,
    EntryLocator,
    LedgerEntry,
    MonthlyTotal,
)


@dataclass
class AuditReport:
    batch_id: int
    entries: int = 0
    credits: int = 0
    capped: int = 0
    grams: int = 0
    problems: list[str] = field(default_factory=list)
    #: What the leaves give, and what the batch was sealed (and so anchored) with.
    recomputed: Recomputed | None = None
    sealed: Recomputed | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {"batchId": self.batch_id, "entries": self.entries, "credits": self.credits,
                "capped": self.capped, "reductionGrams": self.grams, "ok": self.ok,
                "problems": self.problems,
                "recomputed": self.recomputed.as_dict() if self.recomputed else None,
                "sealed": self.sealed.as_dict() if self.sealed else None}


def audit_batch(session: Session, batch_id: int, *,
                chain: ChainReader | None = None) -> AuditReport:
    """Recompute batch ``batch_id``; with ``chain``, hold the result against the chain too."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}", field="batch_id")
    report = AuditReport(batch_id, sealed=Recomputed(batch.root, batch.leaf_count,
                                                     batch.content_hash))
    rows = session.execute(
        select(LedgerEntry, EntryLocator.seq, EntryLocator.batch_id)
        .outerjoin(EntryLocator, EntryLocator.entry_id == LedgerEntry.entry_id)
        .where(LedgerEntry.seq.between(batch.first_seq, batch.last_seq))
        .order_by(LedgerEntry.seq)).all()
    entries = [entry for entry, _, _ in rows]
    for entry, seq, in_batch in rows:  # so a proof by entry id finds this entry
        if (seq, in_batch) != (entry.seq, batch_id):
            report.problems.append(f"entry 0x{entry.entry_id.hex()}: the locator "
                                   f"{'lacks it' if seq is None else 'points elsewhere'}")
    records = {r.entry_id: r for r in session.scalars(select(ActivityRecord).where(
        ActivityRecord.entry_id.in_([e.entry_id for e in entries if e.kind == KIND_CREDIT])))}
    capped_at: dict[tuple[int, str], list[int]] = defaultdict(list)
    for entry in entries:
        report.entries += 1
        problem = _check_entry(entry, records.get(entry.entry_id), report)
        if problem == "capped":
            capped_at[(entry.citizen_id, entry.behaviour)].append(entry.occurred_at)
        elif problem:
            report.problems.append(f"entry 0x{entry.entry_id.hex()}: {problem}")
    _check_caps_reached(session, capped_at, report)
    if report.entries != batch.leaf_count:
        report.problems.append(f"the batch holds {report.entries} entries, sealed {batch.leaf_count}")
    elif entries:
        hashes = [hash_leaf(e.leaf) for e in entries]
        rebuilt = Recomputed(root(build_tree(sorted(hashes))), len(hashes), keccak(b"".join(hashes)))
        report.recomputed = rebuilt
        if rebuilt.root != batch.root:
            report.problems.append(f"the leaves give root 0x{rebuilt.root.hex()}, "
                                   f"sealed 0x{batch.root.hex()}")
        if rebuilt.content_hash != batch.content_hash:
            report.problems.append(f"the leaves give content hash 0x{rebuilt.content_hash.hex()}, "
                                   f"sealed 0x{batch.content_hash.hex()}")
        if chain is not None:
            report.problems += _against_chain(chain, batch, rebuilt)
    return report


@dataclass(frozen=True)
class Recomputed:
    root: bytes
    leaf_count: int
    content_hash: bytes

    def as_dict(self) -> dict[str, object]:
        return {"root": shown(self.root), "leafCount": self.leaf_count,
                "contentHash": shown(self.content_hash)}


def _against_chain(chain: ChainReader, batch: Batch, rebuilt: Recomputed) -> list[str]:
    """How what the chain holds for ``batch`` differs from its recomputation."""
    try:
        on_chain = anchored_batch(chain, batch.id, look_first=batch.tx_hash)
    except AnchorMismatch as exc:
        return [exc.message]
    if on_chain is None:
        return [] if batch.status != "anchored" else [f"batch {batch.id} is not on chain"]
    where = f"tx 0x{on_chain.tx_hash.hex()}"
    return [f"the chain holds {name} {shown(chained)} ({source}), the leaves give {shown(ours)}"
            for name, source, chained, ours in (
                ("root", "the contract's state", on_chain.root, rebuilt.root),
                ("leaf count", f"the event of {where}", on_chain.leaf_count, rebuilt.leaf_count),
                ("content hash", f"the event of {where}", on_chain.content_hash,
                 rebuilt.content_hash))
            if chained != ours]


def shown(value: bytes | int) -> str:
    return f"0x{value.hex()}" if isinstance(value, bytes) else str(value)


def _check_entry(entry: LedgerEntry, record: ActivityRecord | None, report: AuditReport) -> str | None:
    """What is wrong with one entry; "capped" when it is right but below the full figure."""
    try:
        leaf = decode_leaf(entry.leaf)
    except InvalidInput as exc:
        return f"leaf does not decode: {exc.message}"
    columns = (entry.entry_id, entry.kind, behaviour_code(entry.behaviour), entry.quantity,
               entry.reduction_grams, entry.points, entry.methodology, entry.occurred_at,
               entry.record_hash, entry.partner_address)
    sealed = (leaf.entry_id, leaf.kind, leaf.behaviour, leaf.quantity, leaf.reduction_grams,
              leaf.points, leaf.methodology, leaf.occurred_at, leaf.record_hash, leaf.partner)
    if columns != sealed:
        return "the sealed leaf differs from the entry's columns"
    if entry.kind != KIND_CREDIT:
        return None
    report.credits += 1
    report.grams += entry.reduction_grams
    if record is None:
        return "no raw record for this credit"
    if keccak(record.raw.encode()) != entry.record_hash:
        return "the raw record does not hash to the sealed recordHash"
    try:
        parsed = parse_record(json.loads(record.raw), now=2**62)
    except InvalidInput as exc:
        return f"the raw record no longer parses ({exc.field}: {exc.message})"
    if (parsed.behaviour, parsed.quantity, parsed.occurred_at) != (
            entry.behaviour, entry.quantity, entry.occurred_at):
        return "the raw record's behaviour, quantity or time differ from the entry"
    in_force = methodology_in_force(entry.occurred_at)
    if in_force.version != entry.methodology:
        return f"methodology v{entry.methodology} recorded, v{in_force.version} was in force"
    methodology = load_methodology(entry.methodology)
    full = methodology.behaviour(entry.behaviour).reduction_grams(entry.quantity)
    if methodology.points(entry.reduction_grams) != entry.points:
        return f"points {entry.points}, the rule gives {methodology.points(entry.reduction_grams)}"
    if entry.reduction_grams > full:
        return f"credited {entry.reduction_grams} g, the factors give only {full} g"
    if entry.reduction_grams < full:
        report.capped += 1
        return "capped"
    return None


def _check_caps_reached(session: Session, capped_at: dict[tuple[int, str], list[int]],
                        report: AuditReport) -> None:
    """A credit below the full figure is right only if its day's or month's cap is full."""
    for (citizen, behaviour), times in capped_at.items():
        for at in times:
            m = load_methodology(methodology_in_force(at).version)
            rule = m.behaviour(behaviour)
            day = session.get(DailyTotal, (citizen, behaviour, m.local_day(at)))
            month = session.get(MonthlyTotal, (citizen, behaviour, m.local_month(at)))
            day_full = day is not None and day.grams >= rule.daily_cap_grams
            month_full = (rule.monthly_cap_grams is not None and month is not None
                          and month.grams >= rule.monthly_cap_grams)
            if not (day_full or month_full):
                report.problems.append(f"a {behaviour} credit at {at} is below its full figure "
                                       "but no cap was reached")

