"""Partner submissions: check each record, quantify it, credit it once.

One submission is one transaction: every record's outcome is decided in memory and
written together with bulk statements, or nothing is. A record resubmitted with the
same id and content is a duplicate (credited once); the same id with other content is
rejected.

The methodology in force when the behaviour happened decides each record: plausibility
bounds (quantity per record, average speed, records per hour) reject it with a reason;
a report of the same behaviour by another partner overlapping in time is a duplicate
of the first report received (credited once, with a pointer to the winner); daily and
monthly caps count what earlier submissions credited and what this one did.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, Table, Update, and_, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from ledger.entries import entry_row
from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, credit_entry_id
from ledger.methodology import Behaviour, methodology_in_force
from ledger.models import (
    ActivityRecord,
    Balance,
    Citizen,
    DailyTotal,
    LedgerEntry,
    MonthlyTotal,
    Partner,
)
from ledger.records import MAX_DURATION_SECONDS, ActivityRecordIn, parse_record

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
    duplicate_of: str | None = None  # the winning record's hash, for a cross-partner duplicate


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
class _Seen:
    """A record of one citizen and behaviour already in the ledger (or earlier in this
    submission), as de-duplication and the per-hour bound see it."""

    row_id: int | None  # None until written (records of this submission)
    partner_id: int
    start: int
    end: int
    record_hash: bytes
    duplicate: bool
    matched_by: set[int] = field(default_factory=set)  # partners whose report it absorbed


@dataclass
class _Writes:
    """Everything one submission will write, gathered before any of it is."""

    records: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    points: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    days: dict[tuple[int, str, int], int] = field(default_factory=dict)
    known_days: set[tuple[int, str, int]] = field(default_factory=set)
    months: dict[tuple[int, str, int], int] = field(default_factory=dict)
    known_months: set[tuple[int, str, int]] = field(default_factory=set)
    seen: dict[tuple[int, str], list[_Seen]] = field(default_factory=lambda: defaultdict(list))


ParsedRecords = tuple[list[tuple[int, ActivityRecordIn]], list[RecordOutcome]]


def parse_records(records: Sequence[object], *, now: int) -> ParsedRecords:
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
                   parsed: ParsedRecords | None = None) -> SubmissionResult:
    """Decide and write every record of one submission.

    Call it in a write-locked session: caps and de-duplication read what earlier
    submissions wrote, so two submissions touching one citizen must not interleave. On
    SQLite the session's write lock serialises them; on PostgreSQL the citizens' advisory
    locks do."""
    now = int(time.time()) if now is None else now
    good, outcomes = parsed if parsed is not None else parse_records(records, now=now)
    result = SubmissionResult(list(outcomes))
    _lock_partner(session, partner.id)  # before its record ids are read
    known = _known_records(session, partner.id, [r.record_id for _, r in good])
    citizens = _citizens(session, [r.citizen for _, r in good])
    ours = [(citizens[r.citizen][0], r) for _, r in good if r.citizen in citizens]
    _lock_citizens(session, [cid for cid, _ in ours])
    writes = _Writes()
    _load_totals(session, writes, ours)
    _load_neighbours(session, writes, ours)
    for index, record in good:
        result.outcomes.append(_decide(partner, record, index, known, citizens, writes, now,
                                       submission_id))
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


_CITIZEN_LOCKS = 0x43_4C  # advisory-lock namespace for "a citizen's ledger"
_PARTNER_LOCKS = 0x50_52  # ... and for "a partner's record ids"
# Citizens share this many locks (id modulo): PostgreSQL's lock table holds some thousands
# in all, and a submission may name 50,000 citizens.
_CITIZEN_LOCK_BUCKETS = 1024


def _lock_partner(session: Session, partner_id: int) -> None:
    """On PostgreSQL, one submission per partner at a time, so a record id raced by two
    requests is credited by one and a duplicate for the other (not a unique violation)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :p)"),
                        {"ns": _PARTNER_LOCKS, "p": partner_id})


def _lock_citizens(session: Session, citizen_ids: list[int]) -> None:
    """On PostgreSQL, hold each citizen's advisory lock (shared by the citizens of one
    bucket) to the end of the transaction, taken in order so two submissions never
    deadlock. SQLite needs none (one writer)."""
    if session.get_bind().dialect.name != "postgresql" or not citizen_ids:
        return
    session.execute(text("SELECT count(pg_advisory_xact_lock(:ns, c)) FROM "
                         "(SELECT unnest(CAST(:ids AS integer[])) AS c ORDER BY 1) AS locked"),
                    {"ns": _CITIZEN_LOCKS,
                     "ids": sorted({c % _CITIZEN_LOCK_BUCKETS for c in citizen_ids})})


def _decide(partner: Partner, record: ActivityRecordIn, index: int, known: dict[str, bytes],
            citizens: dict[str, tuple[int, bytes]], writes: _Writes, now: int,
            submission_id: str | None) -> RecordOutcome:
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
    implausible = _implausible(behaviour, record)
    if implausible:
        return reject(*implausible)

    row = {"partner_id": partner.id, "partner_record_id": record.record_id,
           "citizen_id": citizen_id, "behaviour": behaviour.code, "quantity": record.quantity,
           "occurred_at": record.occurred_at, "ended_at": record.ended_at,
           "raw": record.canonical.decode(), "record_hash": record.record_hash,
           "submission_id": submission_id, "received_at": now, "duplicate_of": None,
           "entry_id": None}
    seen = writes.seen[(citizen_id, behaviour.code)]
    winner = _same_behaviour_elsewhere(behaviour, partner.id, record, seen)
    if winner is not None:
        winner.matched_by.add(partner.id)
        writes.records.append({**row, "status": "duplicate", "duplicate_of": winner.row_id})
        known[record.record_id] = record.record_hash
        return RecordOutcome(index, record.record_id, "duplicate", field="occurred_at",
                             reason=f"the same {behaviour.code} was reported earlier by another "
                                    "partner and credited once (the first report wins)",
                             duplicate_of="0x" + winner.record_hash.hex())
    if behaviour.max_records_per_hour is not None and _too_many_in_an_hour(
            record.occurred_at, seen, behaviour.max_records_per_hour):
        return reject("occurred_at", f"implausible: more than {behaviour.max_records_per_hour} "
                                     f"{behaviour.code} records for this citizen within an hour")
    seen.append(_Seen(None, partner.id, *record.interval, record.record_hash, duplicate=False))

    grams = behaviour.reduction_grams(record.quantity)
    day = (citizen_id, behaviour.code, methodology.local_day(record.occurred_at))
    month = (citizen_id, behaviour.code, methodology.local_month(record.occurred_at))
    used_day = writes.days.setdefault(day, 0)  # earlier submissions' grams were preloaded
    used_month = writes.months.setdefault(month, 0)
    room = behaviour.daily_cap_grams - used_day
    if behaviour.monthly_cap_grams is not None:
        room = min(room, behaviour.monthly_cap_grams - used_month)
    credited = max(0, min(grams, room))
    writes.days[day] = used_day + credited
    writes.months[month] = used_month + credited
    points = methodology.points(credited)
    entry_id = credit_entry_id(partner.signing_address, record.record_id) if credited else None
    writes.records.append({**row, "status": "credited" if credited else "capped",
                           "entry_id": entry_id})
    known[record.record_id] = record.record_hash
    outcome = RecordOutcome(index, record.record_id, "accepted", reduction_grams=credited,
                            points=points, capped=credited < grams, record_hash=record.record_hash)
    if entry_id is None:
        outcome.reason = "daily or monthly cap reached: nothing credited"
        return outcome
    writes.entries.append(entry_row(
        entry_id=entry_id, citizen_id=citizen_id, account=account, kind=KIND_CREDIT,
        behaviour=behaviour.code, quantity=record.quantity, reduction_grams=credited,
        points=points, methodology=methodology.version, occurred_at=record.occurred_at,
        record_hash=record.record_hash, partner_address=partner.signing_address))
    writes.points[citizen_id] += points
    outcome.entry_id = "0x" + entry_id.hex()
    return outcome


def _implausible(behaviour: Behaviour, record: ActivityRecordIn) -> tuple[str, str] | None:
    """The field and reason a record cannot be true, by the methodology's bounds."""
    if record.quantity > behaviour.max_quantity_per_record:
        return "quantity", (f"implausible: above {behaviour.max_quantity_per_record} "
                            f"{behaviour.unit} per record")
    if behaviour.max_speed_kmh is not None:
        if record.ended_at is None:
            return "ended_at", f"required for {behaviour.code}: the trip's end time"
        speed = behaviour.speed_kmh(record.quantity, record.ended_at - record.occurred_at)
        if speed > behaviour.max_speed_kmh:
            return "quantity", (f"implausible: {float(speed):.1f} km/h on average, above "
                                f"{float(behaviour.max_speed_kmh):g} km/h for {behaviour.code}")
    return None


def _same_behaviour_elsewhere(behaviour: Behaviour, partner_id: int, record: ActivityRecordIn,
                              seen: list[_Seen]) -> _Seen | None:
    """The earliest credited report by another partner that overlaps this one in time and
    has not already absorbed a report from this partner (one-to-one matching)."""
    window = behaviour.dedup_window_seconds
    if window is None:
        return None
    start, end = record.interval
    for other in seen:  # oldest first
        if (other.partner_id != partner_id and not other.duplicate and other.row_id is not None
                and partner_id not in other.matched_by
                and start - window <= other.end + window and other.start - window <= end + window):
            return other
    return None


def _too_many_in_an_hour(at: int, seen: list[_Seen], limit: int) -> bool:
    """Would ``at`` make more than ``limit`` records fall within some hour?"""
    times = sorted([s.start for s in seen if not s.duplicate and abs(s.start - at) < 3600] + [at])
    return any(times[i + limit] - times[i] < 3600 for i in range(len(times) - limit))


def _load_totals(session: Session, writes: _Writes,
                 ours: list[tuple[int, ActivityRecordIn]]) -> None:
    """What earlier submissions credited on the days and months this one touches."""
    if not ours:
        return
    times = [r.occurred_at for _, r in ours]
    # One day of slack either side covers any methodology's local-day offset.
    first, last = min(times) // 86400 - 1, max(times) // 86400 + 1
    first_month, last_month = _month_of(min(times) - 86400), _month_of(max(times) + 86400)
    unique = sorted({cid for cid, _ in ours})
    for lo in range(0, len(unique), _CHUNK):
        chunk = unique[lo:lo + _CHUNK]
        for c, b, d, g in session.execute(
                select(DailyTotal.citizen_id, DailyTotal.behaviour, DailyTotal.day, DailyTotal.grams)
                .where(DailyTotal.citizen_id.in_(chunk), DailyTotal.day.between(first, last))):
            writes.days[(c, b, d)] = g
            writes.known_days.add((c, b, d))
        for c, b, m, g in session.execute(
                select(MonthlyTotal.citizen_id, MonthlyTotal.behaviour, MonthlyTotal.month,
                       MonthlyTotal.grams)
                .where(MonthlyTotal.citizen_id.in_(chunk),
                       MonthlyTotal.month.between(first_month, last_month))):
            writes.months[(c, b, m)] = g
            writes.known_months.add((c, b, m))


def _month_of(unix_seconds: int) -> int:
    d = datetime.fromtimestamp(unix_seconds, UTC)
    return d.year * 12 + d.month - 1


def _load_neighbours(session: Session, writes: _Writes,
                     ours: list[tuple[int, ActivityRecordIn]]) -> None:
    """Earlier records that de-duplication or a per-hour bound must look at: the same
    citizens and behaviours, near in time. Only behaviours with such a rule are read."""
    wanted: dict[str, list[tuple[int, ActivityRecordIn]]] = defaultdict(list)
    windows: dict[str, int] = defaultdict(int)
    for cid, r in ours:
        b = _behaviour_or_none(r)
        if b is not None and (b.dedup_window_seconds is not None or b.max_records_per_hour):
            wanted[b.code].append((cid, r))
            windows[b.code] = max(windows[b.code], b.dedup_window_seconds or 0)
    for code, items in wanted.items():
        slack = 3600 + 2 * windows[code]
        lo = min(r.occurred_at for _, r in items) - slack - MAX_DURATION_SECONDS
        hi = max(r.interval[1] for _, r in items) + slack
        unique = sorted({cid for cid, _ in items})
        for c0 in range(0, len(unique), _CHUNK):
            rows = session.execute(
                select(ActivityRecord.id, ActivityRecord.citizen_id, ActivityRecord.partner_id,
                       ActivityRecord.occurred_at, ActivityRecord.ended_at,
                       ActivityRecord.record_hash, ActivityRecord.status,
                       ActivityRecord.duplicate_of)
                .where(ActivityRecord.citizen_id.in_(unique[c0:c0 + _CHUNK]),
                       ActivityRecord.behaviour == code,
                       ActivityRecord.occurred_at.between(lo, hi))
                .order_by(ActivityRecord.id)).all()
            by_id: dict[int, _Seen] = {}
            for rid, citizen, pid, began, ended, rhash, status, dup_of in rows:
                seen = _Seen(rid, pid, began, ended if ended is not None else began, rhash,
                             duplicate=status == "duplicate")
                writes.seen[(citizen or 0, code)].append(seen)
                by_id[rid] = seen
                if dup_of in by_id:
                    by_id[dup_of].matched_by.add(pid)


def _behaviour_or_none(record: ActivityRecordIn) -> Behaviour | None:
    try:
        return methodology_in_force(record.occurred_at).behaviour(record.behaviour)
    except InvalidInput:
        return None


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _executemany(session: Session, statement: Insert | Update, rows: list[dict[str, Any]]) -> None:
    """One statement for many rows, by the driver's executemany, in the caller's
    transaction. SQLAlchemy's own executemany processes each row's parameters in Python,
    which costs more than SQLite's insert; these columns (integers, strings, bytes) need
    no processing on SQLite's or PostgreSQL's driver."""
    conn = session.connection()
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    order = compiled.positiontup  # None for named paramstyles, which take the dicts
    params = rows if order is None else [tuple(row[k] for k in order) for row in rows]
    conn.exec_driver_sql(compiled.string, params)  # type: ignore[arg-type]


def _write(session: Session, writes: _Writes) -> None:
    """Bulk statements (executemany), in the caller's transaction."""
    records, entries, balances = _table(ActivityRecord), _table(LedgerEntry), _table(Balance)
    if writes.records:
        _executemany(session, insert(records).inline(), writes.records)
    if writes.entries:
        _executemany(session, insert(entries).inline(), writes.entries)
    if writes.points:
        _executemany(session, update(balances).where(balances.c.citizen_id == bindparam("cid"))
                     .values(points=balances.c.points + bindparam("add")),
                     [{"cid": c, "add": p} for c, p in writes.points.items()])
    _write_totals(session, _table(DailyTotal), "day", writes.days, writes.known_days)
    _write_totals(session, _table(MonthlyTotal), "month", writes.months, writes.known_months)


def _write_totals(session: Session, table: Table, period: str,
                  totals: dict[tuple[int, str, int], int], known: set[tuple[int, str, int]]) -> None:
    new = [k for k, g in totals.items() if k not in known and g]
    old = [k for k in totals if k in known]
    if new:
        _executemany(session, insert(table).inline(), [
            {"citizen_id": c, "behaviour": b, period: p, "grams": totals[(c, b, p)]}
            for c, b, p in new])
    if old:
        _executemany(session, update(table).where(and_(
            table.c.citizen_id == bindparam("c"), table.c.behaviour == bindparam("b"),
            table.c[period] == bindparam("p"))).values(grams=bindparam("g")),
            [{"c": c, "b": b, "p": p, "g": totals[(c, b, p)]} for c, b, p in old])
