"""Partner submissions: check each record, quantify it, credit it once.

One submission is one transaction: every record's outcome is decided and written
together, or nothing is. A record resubmitted with the same id and content is a
duplicate (credited once); the same id with other content is rejected.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.accounts import credit_points
from ledger.entries import make_entry
from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, credit_entry_id
from ledger.methodology import methodology_in_force
from ledger.models import ActivityRecord, Citizen, DailyTotal, Partner
from ledger.records import ActivityRecordIn, parse_record

MAX_RECORDS_PER_SUBMISSION = 50_000


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


@dataclass
class SubmissionResult:
    outcomes: list[RecordOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def grams(self) -> int:
        return sum(o.reduction_grams for o in self.outcomes if o.status == "accepted")


def submit_records(session: Session, *, partner: Partner, records: Sequence[object],
                   now: int | None = None) -> SubmissionResult:
    """Decide and write every record of one submission."""
    if len(records) > MAX_RECORDS_PER_SUBMISSION:
        raise InvalidInput(f"at most {MAX_RECORDS_PER_SUBMISSION} records per submission",
                           field="records")
    now = int(time.time()) if now is None else now
    result = SubmissionResult()
    parsed: list[tuple[int, ActivityRecordIn]] = []
    for index, raw in enumerate(records):
        try:
            parsed.append((index, parse_record(raw, now=now)))
        except InvalidInput as exc:
            rid = raw.get("record_id") if isinstance(raw, dict) else None
            result.outcomes.append(RecordOutcome(index, rid if isinstance(rid, str) else None,
                                                 "rejected", exc.field, exc.message))
    known = _known_records(session, partner.id, [r.record_id for _, r in parsed])
    citizens = _citizens(session, [r.citizen for _, r in parsed])
    for index, record in parsed:
        result.outcomes.append(_decide(session, partner, record, index, known, citizens, now))
    result.outcomes.sort(key=lambda o: o.index)
    return result


def _known_records(session: Session, partner_id: int, ids: list[str]) -> dict[str, bytes]:
    known: dict[str, bytes] = {}
    for chunk in range(0, len(ids), 500):
        rows = session.execute(select(ActivityRecord.partner_record_id, ActivityRecord.record_hash)
                               .where(ActivityRecord.partner_id == partner_id,
                                      ActivityRecord.partner_record_id.in_(ids[chunk:chunk + 500])))
        known.update({rid: h for rid, h in rows})
    return known


def _citizens(session: Session, pseudonyms: list[str]) -> dict[str, Citizen]:
    found: dict[str, Citizen] = {}
    unique = sorted(set(pseudonyms))
    for chunk in range(0, len(unique), 500):
        rows = session.scalars(select(Citizen).where(Citizen.pseudonym.in_(unique[chunk:chunk + 500])))
        found.update({c.pseudonym: c for c in rows})
    return found


def _decide(session: Session, partner: Partner, record: ActivityRecordIn, index: int,
            known: dict[str, bytes], citizens: dict[str, Citizen], now: int) -> RecordOutcome:
    def reject(field_name: str, reason: str) -> RecordOutcome:
        return RecordOutcome(index, record.record_id, "rejected", field_name, reason)

    if record.record_id in known:
        if known[record.record_id] == record.record_hash:
            return RecordOutcome(index, record.record_id, "duplicate",
                                 reason="already received; credited once")
        return reject("record_id", "this id was submitted before with other content")
    citizen = citizens.get(record.citizen)
    if citizen is None or citizen.erased_at is not None:
        return reject("citizen", "unknown citizen")
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
    credited = _apply_daily_cap(session, citizen.id, behaviour.code,
                                methodology.local_day(record.occurred_at), grams,
                                behaviour.daily_cap_grams)
    points = methodology.points(credited)
    row = ActivityRecord(partner_id=partner.id, partner_record_id=record.record_id,
                         citizen_id=citizen.id, behaviour=behaviour.code, quantity=record.quantity,
                         occurred_at=record.occurred_at, raw=record.canonical.decode(),
                         record_hash=record.record_hash,
                         status="credited" if credited else "capped", reason=None, received_at=now)
    session.add(row)
    session.flush()
    known[record.record_id] = record.record_hash
    outcome = RecordOutcome(index, record.record_id, "accepted", reduction_grams=credited,
                            points=points, capped=credited < grams)
    if credited == 0:
        outcome.reason = "daily cap reached: nothing credited"
        return outcome
    entry_id = credit_entry_id(partner.signing_address, record.record_id)
    session.add(make_entry(entry_id=entry_id, citizen_id=citizen.id, account=citizen.account,
                           kind=KIND_CREDIT, behaviour=behaviour.code, quantity=record.quantity,
                           reduction_grams=credited, points=points, methodology=methodology.version,
                           occurred_at=record.occurred_at, record_hash=record.record_hash,
                           partner_address=partner.signing_address, record_id=row.id))
    credit_points(session, citizen.id, points)
    outcome.entry_id = "0x" + entry_id.hex()
    return outcome


def _apply_daily_cap(session: Session, citizen_id: int, behaviour: str, day: int, grams: int,
                     cap: int) -> int:
    """Credit at most what is left of today's cap; remember what was credited."""
    total = session.get(DailyTotal, (citizen_id, behaviour, day), with_for_update=True)
    if total is None:
        total = DailyTotal(citizen_id=citizen_id, behaviour=behaviour, day=day, grams=0)
        session.add(total)
    credited = max(0, min(grams, cap - total.grams))
    total.grams += credited
    return credited
