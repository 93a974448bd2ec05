"""Partner submissions: check each record, quantify it, credit it once.

One submission is one transaction: every record's outcome is decided in memory and
written together with bulk statements, or nothing is. A record resubmitted with the
same id and content is a duplicate (credited once); the same id with other content is
rejected. Daily caps count what earlier submissions credited and what this one did.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ledger.entries import entry_row
from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, credit_entry_id
from ledger.methodology import methodology_in_force
from ledger.models import ActivityRecord, Balance, Citizen, DailyTotal, LedgerEntry, Partner
from ledger.records import ActivityRecordIn, parse_record

MAX_RECORDS_PER_SUBMISSION = 50_000
_CHUNK = 500


@dataclass
class RecordOutcome:
    index: int
    record_id: str | None
    status: str  # accepted | duplicate | rejected
    field: str | None = None
    reason: str | None = None
    entry_id: str | None = None
    reduction_grams: int = 0
    points: int = 0
    capped: bool = False
    record_hash: bytes | None = None


@dataclass
class SubmissionResult:
    outcomes: list[RecordOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def grams(self) -> int:
        return sum(o.reduction_grams for o in self.outcomes if o.status == "accepted")

    def accepted_hashes(self) -> list[bytes]:
        return [o.record_hash for o in self.outcomes if o.status == "accepted" and o.record_hash]


@dataclass
class _Writes:
    """Everything one submission will write, gathered before any of it is."""

    records: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    points: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    totals: dict[tuple[int, str, int], int] = field(default_factory=dict)
    known_totals: set[tuple[int, str, int]] = field(default_factory=set)


def parse_records(records: Sequence[object], *, now: int
                  ) -> tuple[list[tuple[int, ActivityRecordIn]], list[RecordOutcome]]:
    """Shape checks for every record: the parsed ones, and a rejection for each other."""
    if len(records) > MAX_RECORDS_PER_SUBMISSION:
        raise InvalidInput(f"at most {MAX_RECORDS_PER_SUBMISSION} records per submission",
                           field="records")
    parsed, rejected = [], []
    for index, raw in enumerate(records):
        try:
            parsed.append((index, parse_record(raw, now=now)))
        except InvalidInput as exc:
            rid = raw.get("record_id") if isinstance(raw, dict) else None
            rejected.append(RecordOutcome(index, rid if isinstance(rid, str) else None,
                                          "rejected", exc.field, exc.message))
    return parsed, rejected


def submit_records(session: Session, *, partner: Partner, records: Sequence[object],
                   now: int | None = None, submission_id: str | None = None,
                   parsed: tuple[list[tuple[int, ActivityRecordIn]], list[RecordOutcome]] | None = None
                   ) -> SubmissionResult:
    """Decide and write every record of one submission."""
    now = int(time.time()) if now is None else now
    good, outcomes = parsed if parsed is not None else parse_records(records, now=now)
    result = SubmissionResult(list(outcomes))
    known = _known_records(session, partner.id, [r.record_id for _, r in good])
    citizens = _citizens(session, [r.citizen for _, r in good])
    writes = _Writes()
    _load_daily_totals(session, writes, [citizens[r.citizen][0] for _, r in good
                                         if r.citizen in citizens],
                       [r.occurred_at for _, r in good])
    for index, record in good:
        result.outcomes.append(_decide(session, partner, record, index, known, citizens, writes,
                                       now, submission_id))
    _write(session, writes)
    result.outcomes.sort(key=lambda o: o.index)
    return result


def _known_records(session: Session, partner_id: int, ids: list[str]) -> dict[str, bytes]:
    known: dict[str, bytes] = {}
    for lo in range(0, len(ids), _CHUNK):
        rows = session.execute(select(ActivityRecord.partner_record_id, ActivityRecord.record_hash)
                               .where(ActivityRecord.partner_id == partner_id,
                                      ActivityRecord.partner_record_id.in_(ids[lo:lo + _CHUNK])))
        known.update({rid: h for rid, h in rows})
    return known


def _citizens(session: Session, pseudonyms: list[str]) -> dict[str, tuple[int, bytes]]:
    found: dict[str, tuple[int, bytes]] = {}
    unique = sorted(set(pseudonyms))
    for lo in range(0, len(unique), _CHUNK):
        rows = session.execute(select(Citizen.pseudonym, Citizen.id, Citizen.account)
                               .where(Citizen.pseudonym.in_(unique[lo:lo + _CHUNK]),
                                      Citizen.erased_at.is_(None)))
        found.update({p: (cid, account) for p, cid, account in rows})
    return found


def _decide(session: Session, partner: Partner, record: ActivityRecordIn, index: int,
            known: dict[str, bytes], citizens: dict[str, tuple[int, bytes]], writes: _Writes,
            now: int, submission_id: str | None) -> RecordOutcome:
    def reject(field_name: str, reason: str) -> RecordOutcome:
        return RecordOutcome(index, record.record_id, "rejected", field_name, reason)

    if record.record_id in known:
        if known[record.record_id] == record.record_hash:
            return RecordOutcome(index, record.record_id, "duplicate",
                                 reason="already received; credited once")
        return reject("record_id", "this id was submitted before with other content")
    if record.citizen not in citizens:
        return reject("citizen", "unknown citizen")
    citizen_id, account = citizens[record.citizen]
    try:
        methodology = methodology_in_force(record.occurred_at)
        behaviour = methodology.behaviour(record.behaviour)
    except InvalidInput as exc:
        return reject(exc.field or "behaviour", exc.message)
    if partner.kind not in behaviour.partner_kinds:
        return reject("behaviour", f"a {partner.kind} partner may not report {behaviour.code}")
    if record.quantity > behaviour.max_quantity_per_record:
        return reject("quantity", f"implausible: above {behaviour.max_quantity_per_record} "
                                  f"{behaviour.unit} per record")

    grams = behaviour.reduction_grams(record.quantity)
    key = (citizen_id, behaviour.code, methodology.local_day(record.occurred_at))
    used = writes.totals.setdefault(key, 0)  # earlier submissions' grams were preloaded
    credited = max(0, min(grams, behaviour.daily_cap_grams - used))
    writes.totals[key] = used + credited
    points = methodology.points(credited)
    entry_id = credit_entry_id(partner.signing_address, record.record_id) if credited else None
    writes.records.append({
        "partner_id": partner.id, "partner_record_id": record.record_id, "citizen_id": citizen_id,
        "behaviour": behaviour.code, "quantity": record.quantity, "occurred_at": record.occurred_at,
        "raw": record.canonical.decode(), "record_hash": record.record_hash,
        "status": "credited" if credited else "capped", "entry_id": entry_id,
        "submission_id": submission_id, "received_at": now})
    known[record.record_id] = record.record_hash
    outcome = RecordOutcome(index, record.record_id, "accepted", reduction_grams=credited,
                            points=points, capped=credited < grams, record_hash=record.record_hash)
    if entry_id is None:
        outcome.reason = "daily cap reached: nothing credited"
        return outcome
    writes.entries.append(entry_row(
        entry_id=entry_id, citizen_id=citizen_id, account=account, kind=KIND_CREDIT,
        behaviour=behaviour.code, quantity=record.quantity, reduction_grams=credited,
        points=points, methodology=methodology.version, occurred_at=record.occurred_at,
        record_hash=record.record_hash, partner_address=partner.signing_address))
    writes.points[citizen_id] += points
    outcome.entry_id = "0x" + entry_id.hex()
    return outcome


def _load_daily_totals(session: Session, writes: _Writes, citizen_ids: list[int],
                       times: list[int]) -> None:
    """What earlier submissions credited on the days this one touches, in a few queries."""
    if not times:
        return
    # One day of slack either side covers any methodology's local-day offset.
    first, last = min(times) // 86400 - 1, max(times) // 86400 + 1
    unique = sorted(set(citizen_ids))
    for lo in range(0, len(unique), _CHUNK):
        rows = session.execute(select(DailyTotal.citizen_id, DailyTotal.behaviour, DailyTotal.day,
                                      DailyTotal.grams)
                               .where(DailyTotal.citizen_id.in_(unique[lo:lo + _CHUNK]),
                                      DailyTotal.day.between(first, last)))
        for c, b, d, g in rows:
            writes.totals[(c, b, d)] = g
            writes.known_totals.add((c, b, d))


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _write(session: Session, writes: _Writes) -> None:
    """Bulk Core statements (executemany), in the caller's transaction."""
    records, entries = _table(ActivityRecord), _table(LedgerEntry)
    balances, totals = _table(Balance), _table(DailyTotal)
    if writes.records:
        session.execute(insert(records), writes.records)
    if writes.entries:
        session.execute(insert(entries), writes.entries)
    if writes.points:
        session.execute(update(balances).where(balances.c.citizen_id == bindparam("cid"))
                        .values(points=balances.c.points + bindparam("add")),
                        [{"cid": c, "add": p} for c, p in writes.points.items()])
    new = [k for k in writes.totals if k not in writes.known_totals]
    old = [k for k in writes.totals if k in writes.known_totals]
    if new:
        session.execute(insert(totals), [
            {"citizen_id": c, "behaviour": b, "day": d, "grams": writes.totals[(c, b, d)]}
            for c, b, d in new])
    if old:
        session.execute(update(totals).where(and_(
            totals.c.citizen_id == bindparam("c"), totals.c.behaviour == bindparam("b"),
            totals.c.day == bindparam("d"))).values(grams=bindparam("g")),
            [{"c": c, "b": b, "d": d, "g": writes.totals[(c, b, d)]} for c, b, d in old])
