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

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, Table, Update, and_, bindparam, insert, text, update
from sqlalchemy.orm import Session

from ledger.entries import ENTRY_COLUMNS, entry_values
from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, credit_entry_id
from ledger.methodology import (
    Behaviour,
    Methodology,
    SubmissionWindow,
    methodology_in_force,
    month_of_day,
)
from ledger.models import (
    ActivityRecord,
    Balance,
    DailyTotal,
    LedgerEntry,
    MonthlyTotal,
    Partner,
)
from ledger.records import MAX_DURATION_SECONDS, ActivityRecordIn, parse_record

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


@dataclass(slots=True, eq=False)
class _Seen:
    """A record of one citizen and behaviour already in the ledger (or earlier in this
    submission), as de-duplication and the per-hour bound see it."""

    row_id: int | None  # None until written (records of this submission)
    partner_id: int
    start: int
    end: int
    record_hash: bytes
    duplicate: bool
    matched_by: set[int] | None = None  # partners whose report it absorbed


#: activity_records columns in the order the decisions give them: the table's order, so
#: SQLite's positional parameters take the rows as they are.
RECORD_COLUMNS = ("partner_id", "partner_record_id", "citizen_id", "behaviour", "quantity",
                  "occurred_at", "ended_at", "raw", "record_hash", "status", "duplicate_of",
                  "entry_id", "submission_id", "received_at")


@dataclass
class _Writes:
    """Everything one submission will write, gathered before any of it is."""

    records: list[tuple[Any, ...]] = field(default_factory=list)  # RECORD_COLUMNS
    entries: list[tuple[Any, ...]] = field(default_factory=list)  # ENTRY_COLUMNS
    points: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    days: dict[tuple[int, str, int], int] = field(default_factory=dict)
    stored_days: dict[tuple[int, str, int], int] = field(default_factory=dict)  # as loaded
    months: dict[tuple[int, str, int], int] = field(default_factory=dict)
    stored_months: dict[tuple[int, str, int], int] = field(default_factory=dict)
    seen: dict[tuple[int, str], list[_Seen]] = field(default_factory=lambda: defaultdict(list))


@dataclass(slots=True, frozen=True)
class Quantified:
    """What a record's own content decides under the methodology in force when it
    happened, before the ledger or the other records are looked at: the reduction before
    caps, the local day and month its caps count in, and its credit's entry id."""

    methodology: Methodology
    behaviour: Behaviour
    grams: int
    day: int
    month: int
    entry_id: bytes


#: A record's assessment: quantified, or the field and reason it is rejected.
Assessment = Quantified | tuple[str, str]


def assess(record: ActivityRecordIn, *, kind: str, address: bytes) -> Assessment:
    """Check a record against the methodology alone (behaviour known, reportable by this
    kind of partner, plausible) and quantify it. Needs no database."""
    try:
        methodology = methodology_in_force(record.occurred_at)
        behaviour = methodology.behaviour(record.behaviour)
    except InvalidInput as exc:
        return exc.field or "behaviour", exc.message
    if kind not in behaviour.partner_kinds:
        return "behaviour", f"a {kind} partner may not report {behaviour.code}"
    implausible = _implausible(behaviour, record)
    if implausible:
        return implausible
    day = methodology.local_day(record.occurred_at)
    return Quantified(methodology, behaviour, behaviour.reduction_grams(record.quantity), day,
                      month_of_day(day), credit_entry_id(address, record.record_id))


@dataclass
class PreparedRecords:
    """A submission's records checked on their own for one partner (kind and signing
    address): each well-formed one with its assessment, and a rejection for each other.
    Everything here needs no database, so it is worked out before the write lock."""

    kind: str
    address: bytes
    good: list[tuple[int, ActivityRecordIn, Assessment]]
    rejected: list[RecordOutcome]

    def for_partner(self, kind: str, address: bytes) -> PreparedRecords:
        """The records assessed for the partner as it is now (its kind or key may have
        changed since they were prepared)."""
        if (kind, address) == (self.kind, self.address):
            return self
        return PreparedRecords(kind, address, [(i, r, assess(r, kind=kind, address=address))
                                               for i, r, _ in self.good], self.rejected)


#: Records parsed and assessed between two calls of ``prepare_records``' ``pause``.
PREPARE_CHUNK = 100


def prepare_records(records: Sequence[object], *, kind: str, address: bytes, now: int,
                    window: SubmissionWindow | None = None,
                    pause: Callable[[], object] | None = None) -> PreparedRecords:
    """``window``: records that happened before it are rejected (partners' submissions
    pass the methodology's, :func:`~ledger.methodology.submission_window`). ``pause`` is
    called before each :data:`PREPARE_CHUNK` records: a serving process passes one that
    waits while it is deciding another submission in the write lock."""
    if len(records) > MAX_RECORDS_PER_SUBMISSION:
        raise InvalidInput(f"at most {MAX_RECORDS_PER_SUBMISSION} records per submission",
                           field="records")
    good: list[tuple[int, ActivityRecordIn, Assessment]] = []
    rejected: list[RecordOutcome] = []
    for start in range(0, len(records), PREPARE_CHUNK):
        if pause is not None:
            pause()
        parsed, bad = parse_records(records, now=now, start=start, stop=start + PREPARE_CHUNK,
                                    window=window)
        good += [(i, r, assess(r, kind=kind, address=address)) for i, r in parsed]
        rejected += bad
    return PreparedRecords(kind, address, good, rejected)


def parse_records(records: Sequence[object], *, now: int, start: int = 0,
                  stop: int | None = None, window: SubmissionWindow | None = None
                  ) -> tuple[list[tuple[int, ActivityRecordIn]], list[RecordOutcome]]:
    """Shape checks for records ``start:stop`` (and their age, given a ``window``): the
    parsed ones (with their index), and a rejection for each other."""
    parsed, rejected = [], []
    oldest, too_old = (None, "") if window is None else (window.oldest(now), window.too_old())
    for index in range(start, len(records) if stop is None else min(stop, len(records))):
        raw = records[index]
        try:
            record = parse_record(raw, now=now)
        except InvalidInput as exc:
            rid = raw.get("record_id") if isinstance(raw, dict) else None
            rejected.append(RecordOutcome(index, rid if isinstance(rid, str) else None,
                                          "rejected", exc.field, exc.message))
            continue
        if oldest is not None and record.occurred_at < oldest:
            rejected.append(RecordOutcome(index, record.record_id, "rejected", "occurred_at",
                                          too_old))
        else:
            parsed.append((index, record))
    return parsed, rejected


def submit_records(session: Session, *, partner: Partner, records: Sequence[object],
                   now: int | None = None, submission_id: str | None = None,
                   prepared: PreparedRecords | None = None,
                   window: SubmissionWindow | None = None) -> SubmissionResult:
    """Decide and write every record of one submission (``window``: see
    :func:`prepare_records`; partners' signed submissions prepare theirs with it).

    Call it in a write-locked session: caps and de-duplication read what earlier
    submissions wrote, so two submissions touching one citizen must not interleave. On
    SQLite the session's write lock serialises them; on PostgreSQL the citizens' advisory
    locks do."""
    now = int(time.time()) if now is None else now
    kind, address = partner.kind, partner.signing_address
    if prepared is None:
        prepared = prepare_records(records, kind=kind, address=address, now=now, window=window)
    prepared = prepared.for_partner(kind, address)
    good = prepared.good
    result = SubmissionResult(list(prepared.rejected))
    sql = _Sql(session)
    _lock_partner(sql, partner.id)  # before its record ids are read
    known = _known_records(sql, partner.id, [r.record_id for _, r, _ in good])
    citizens = _citizens(sql, [r.citizen for _, r, _ in good])
    ours = [(citizens[r.citizen][0], r, q) for _, r, q in good
            if r.citizen in citizens and isinstance(q, Quantified)]
    _lock_citizens(sql, [cid for cid, _, _ in ours])
    writes = _Writes()
    _load_totals(sql, writes, ours)
    _load_neighbours(sql, writes, ours)
    decide = _Decider(partner, known, citizens, writes, now, submission_id).decide
    result.outcomes.extend([decide(index, record, q) for index, record, q in good])
    _write(sql, writes)
    result.outcomes.sort(key=lambda o: o.index)
    return result


class _Sql:
    """Plain SQL for the hot path, on the session's connection: lists go in as one
    parameter (SQLite's ``json_each``, PostgreSQL's arrays) instead of one bound
    parameter per value, and bulk writes go to the driver's executemany."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.connection = session.connection()
        self.dialect = self.connection.dialect
        self.sqlite = self.dialect.name == "sqlite"

    def member(self, column: str, name: str) -> str:
        """``column`` is one of the list bound as ``name``."""
        if self.sqlite:
            return f"{column} IN (SELECT value FROM json_each(:{name}))"
        return f"{column} = ANY(:{name})"

    def values(self, items: Sequence[Any]) -> Any:
        return json.dumps(list(items)) if self.sqlite else list(items)

    def rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        """The query's rows as plain tuples from the driver's cursor, in the session's
        transaction (building SQLAlchemy's rows costs more than SQLite reading them)."""
        compiled = _compiled_text(query, self.dialect)
        order = compiled.positiontup
        args = params if order is None else tuple(params[name] for name in order)
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(compiled.string, args)
            return cursor.fetchall()  # type: ignore[return-value]
        finally:
            cursor.close()

    def executemany(self, statement: Insert | Update, columns: Sequence[str],
                    rows: list[tuple[Any, ...]]) -> None:
        """One statement for many rows (tuples in ``columns`` order) by the driver's
        executemany. SQLAlchemy's own executemany processes each row's parameters in
        Python, which costs more than SQLite's insert; these columns (integers, strings,
        bytes) need no processing on SQLite's or PostgreSQL's driver."""
        compiled = _compiled(statement, self.dialect, tuple(columns))
        order = compiled.positiontup
        if order is None:  # a named paramstyle (psycopg): dicts
            params: list[Any] = [dict(zip(columns, row, strict=True)) for row in rows]
        elif tuple(order) == tuple(columns):
            params = rows
        else:
            at = [columns.index(name) for name in order]
            params = [tuple(row[i] for i in at) for row in rows]
        self.connection.exec_driver_sql(compiled.string, params)


_COMPILED: dict[tuple[Any, ...], Any] = {}


def _compiled_text(query: str, dialect: Any) -> Any:
    key = (query, dialect.name, dialect.paramstyle)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = text(query).compile(dialect=dialect)
    return compiled


def _compiled(statement: Insert | Update, dialect: Any, columns: tuple[str, ...]) -> Any:
    """The statement compiled once per dialect and columns. Keyed by the statement's
    identity (rendering it to a string for a key costs as much as compiling it); the cache
    holds the statement too, so its id cannot be reused by another while cached."""
    key = (id(statement), dialect.name, dialect.paramstyle, columns)
    cached = _COMPILED.get(key)
    if cached is None or cached[0] is not statement:
        cached = _COMPILED[key] = (statement, statement.compile(dialect=dialect,
                                                                column_keys=list(columns)))
    return cached[1]


def _known_records(sql: _Sql, partner_id: int, ids: list[str]) -> dict[str, bytes]:
    if not ids:
        return {}
    rows = sql.rows("SELECT partner_record_id, record_hash FROM activity_records "
                    f"WHERE partner_id = :p AND {sql.member('partner_record_id', 'ids')}",
                    p=partner_id, ids=sql.values(ids))
    return {rid: bytes(h) for rid, h in rows}


def _citizens(sql: _Sql, pseudonyms: list[str]) -> dict[str, tuple[int, bytes]]:
    if not pseudonyms:
        return {}
    rows = sql.rows("SELECT pseudonym, id, account FROM citizens "
                    f"WHERE erased_at IS NULL AND {sql.member('pseudonym', 'ps')}",
                    ps=sql.values(sorted(set(pseudonyms))))
    return {p: (cid, bytes(account)) for p, cid, account in rows}


_CITIZEN_LOCKS = 0x43_4C  # advisory-lock namespace for "a citizen's ledger"
_PARTNER_LOCKS = 0x50_52  # ... and for "a partner's record ids"
# Citizens share this many locks (id modulo): PostgreSQL's lock table holds some thousands
# in all, and a submission may name 50,000 citizens.
_CITIZEN_LOCK_BUCKETS = 1024


def lock_partner(session: Session, partner_id: int) -> None:
    """Hold the partner's lock to the end of the session's transaction (PostgreSQL; on
    SQLite the write lock is held already)."""
    _lock_partner(_Sql(session), partner_id)


def _lock_partner(sql: _Sql, partner_id: int) -> None:
    """On PostgreSQL, one submission per partner at a time, so a record id raced by two
    requests is credited by one and a duplicate for the other (not a unique violation)."""
    if not sql.sqlite:
        sql.rows("SELECT pg_advisory_xact_lock(:ns, :p)", ns=_PARTNER_LOCKS, p=partner_id)


def _lock_citizens(sql: _Sql, citizen_ids: list[int]) -> None:
    """On PostgreSQL, hold each citizen's advisory lock (shared by the citizens of one
    bucket) to the end of the transaction, taken in order so two submissions never
    deadlock. SQLite needs none (one writer)."""
    if sql.sqlite or not citizen_ids:
        return
    sql.rows("SELECT count(pg_advisory_xact_lock(:ns, c)) FROM "
             "(SELECT unnest(CAST(:ids AS integer[])) AS c ORDER BY 1) AS locked",
             ns=_CITIZEN_LOCKS, ids=sorted({c % _CITIZEN_LOCK_BUCKETS for c in citizen_ids}))


class _Decider:
    """Decides one submission's records in order, against what was loaded into ``writes``
    and what the records before each one decided."""

    def __init__(self, partner: Partner, known: dict[str, bytes],
                 citizens: dict[str, tuple[int, bytes]], writes: _Writes, now: int,
                 submission_id: str | None) -> None:
        # Plain values, not ORM attributes: this runs once per record.
        self.partner_id, self.address = partner.id, partner.signing_address
        self.known, self.citizens, self.writes = known, citizens, writes
        self.now, self.submission_id = now, submission_id

    def decide(self, index: int, record: ActivityRecordIn, assessed: Assessment) -> RecordOutcome:
        rid = record.record_id
        prior = self.known.get(rid)
        if prior is not None:
            if prior == record.record_hash:
                return RecordOutcome(index, rid, "duplicate", reason="already received; credited once")
            return RecordOutcome(index, rid, "rejected", "record_id",
                                 "this id was submitted before with other content")
        citizen = self.citizens.get(record.citizen)
        if citizen is None:
            return RecordOutcome(index, rid, "rejected", "citizen", "unknown citizen")
        citizen_id, account = citizen
        if not isinstance(assessed, Quantified):
            return RecordOutcome(index, rid, "rejected", *assessed)

        behaviour, methodology = assessed.behaviour, assessed.methodology
        writes, code, start = self.writes, behaviour.code, record.occurred_at
        seen = writes.seen[(citizen_id, code)]
        if behaviour.dedup_window_seconds is not None:
            winner = _same_behaviour_elsewhere(behaviour.dedup_window_seconds, self.partner_id,
                                               record, seen)
            if winner is not None:
                if winner.matched_by is None:
                    winner.matched_by = set()
                winner.matched_by.add(self.partner_id)
                writes.records.append(self._row(record, citizen_id, code, "duplicate",
                                                winner.row_id, None))
                self.known[rid] = record.record_hash
                return RecordOutcome(
                    index, rid, "duplicate", field="occurred_at",
                    reason=f"the same {code} was reported earlier by another partner and "
                           "credited once (the first report wins)",
                    duplicate_of="0x" + winner.record_hash.hex())
        limit = behaviour.max_records_per_hour
        if limit is not None and _too_many_in_an_hour(start, seen, limit):
            return RecordOutcome(index, rid, "rejected", "occurred_at",
                                 f"implausible: more than {limit} {code} records for this "
                                 "citizen within an hour")
        seen.append(_Seen(None, self.partner_id, start, record.end, record.record_hash, False))

        grams = assessed.grams
        day = (citizen_id, code, assessed.day)
        month = (citizen_id, code, assessed.month)
        used_day = writes.days.get(day, 0)  # earlier submissions' grams were preloaded
        used_month = writes.months.get(month, 0)
        room = behaviour.daily_cap_grams - used_day
        if behaviour.monthly_cap_grams is not None:
            room = min(room, behaviour.monthly_cap_grams - used_month)
        credited = max(0, min(grams, room))
        writes.days[day] = used_day + credited
        writes.months[month] = used_month + credited
        points = methodology.points(credited)
        entry_id = assessed.entry_id if credited else None
        writes.records.append(self._row(record, citizen_id, code,
                                        "credited" if credited else "capped", None, entry_id))
        self.known[rid] = record.record_hash
        outcome = RecordOutcome(index, rid, "accepted", reduction_grams=credited, points=points,
                                capped=credited < grams, record_hash=record.record_hash)
        if entry_id is None:
            outcome.reason = "daily or monthly cap reached: nothing credited"
            return outcome
        writes.entries.append(entry_values(
            entry_id, citizen_id, account, KIND_CREDIT, code, record.quantity, credited, points,
            methodology.version, start, record.record_hash, self.address))
        writes.points[citizen_id] += points
        outcome.entry_id = "0x" + entry_id.hex()
        return outcome

    def _row(self, record: ActivityRecordIn, citizen_id: int, code: str, status: str,
             duplicate_of: int | None, entry_id: bytes | None) -> tuple[Any, ...]:
        """The record's activity_records row, in :data:`RECORD_COLUMNS` order."""
        return (self.partner_id, record.record_id, citizen_id, code, record.quantity,
                record.occurred_at, record.ended_at, record.canonical.decode(),
                record.record_hash, status, duplicate_of, entry_id, self.submission_id, self.now)


def _implausible(behaviour: Behaviour, record: ActivityRecordIn) -> tuple[str, str] | None:
    """The field and reason a record cannot be true, by the methodology's bounds."""
    if record.quantity > behaviour.max_quantity_per_record:
        return "quantity", (f"implausible: above {behaviour.max_quantity_per_record} "
                            f"{behaviour.unit} per record")
    if behaviour.max_speed_kmh is not None:
        if record.ended_at is None:
            return "ended_at", f"required for {behaviour.code}: the trip's end time"
        seconds = record.ended_at - record.occurred_at
        if behaviour.too_fast(record.quantity, seconds):
            speed = behaviour.speed_kmh(record.quantity, seconds)
            return "quantity", (f"implausible: {float(speed):.1f} km/h on average, above "
                                f"{float(behaviour.max_speed_kmh):g} km/h for {behaviour.code}")
    return None


def _same_behaviour_elsewhere(window: int, partner_id: int, record: ActivityRecordIn,
                              seen: list[_Seen]) -> _Seen | None:
    """The earliest credited report by another partner that overlaps this one in time and
    has not already absorbed a report from this partner (one-to-one matching)."""
    lo, hi = record.occurred_at - 2 * window, record.end + 2 * window
    for other in seen:  # oldest first
        if (other.partner_id != partner_id and not other.duplicate and other.row_id is not None
                and other.end >= lo and other.start <= hi
                and (other.matched_by is None or partner_id not in other.matched_by)):
            return other
    return None


def _too_many_in_an_hour(at: int, seen: list[_Seen], limit: int) -> bool:
    """Would ``at`` make more than ``limit`` records fall within some hour?"""
    near = [s.start for s in seen if not s.duplicate and abs(s.start - at) < 3600]
    if len(near) < limit:
        return False
    times = sorted([*near, at])
    return any(times[i + limit] - times[i] < 3600 for i in range(len(times) - limit))


Ours = list[tuple[int, ActivityRecordIn, Quantified]]  # quantified records of known citizens


def _load_totals(sql: _Sql, writes: _Writes, ours: Ours) -> None:
    """What earlier submissions credited on the days and months this one touches, for
    the behaviours it reports (the key's prefix, so the primary key finds them)."""
    if not ours:
        return
    days = [q.day for _, _, q in ours]
    months = [q.month for _, _, q in ours]
    params = {"ids": sql.values(sorted({cid for cid, _, _ in ours})),
              "codes": sql.values(sorted({q.behaviour.code for _, _, q in ours}))}
    where = f"{sql.member('citizen_id', 'ids')} AND {sql.member('behaviour', 'codes')}"
    stored = sql.rows(f"SELECT citizen_id, behaviour, day, grams FROM daily_totals WHERE "
                      f"{where} AND day BETWEEN :a AND :b", a=min(days), b=max(days), **params)
    writes.stored_days = {(c, b, d): g for c, b, d, g in stored}
    stored = sql.rows(f"SELECT citizen_id, behaviour, month, grams FROM monthly_totals WHERE "
                      f"{where} AND month BETWEEN :a AND :b", a=min(months), b=max(months),
                      **params)
    writes.stored_months = {(c, b, m): g for c, b, m, g in stored}
    writes.days.update(writes.stored_days)
    writes.months.update(writes.stored_months)


def _load_neighbours(sql: _Sql, writes: _Writes, ours: Ours) -> None:
    """Earlier records that de-duplication or a per-hour bound must look at: the same
    citizens and behaviours, near in time. Only behaviours with such a rule are read."""
    wanted: dict[str, list[tuple[int, ActivityRecordIn]]] = defaultdict(list)
    windows: dict[str, int] = defaultdict(int)
    for cid, r, q in ours:
        b = q.behaviour
        if b.dedup_window_seconds is not None or b.max_records_per_hour:
            wanted[b.code].append((cid, r))
            windows[b.code] = max(windows[b.code], b.dedup_window_seconds or 0)
    for code, items in wanted.items():
        slack = 3600 + 2 * windows[code]
        lo = min(r.occurred_at for _, r in items) - slack - MAX_DURATION_SECONDS
        hi = max(r.end for _, r in items) + slack
        rows = sql.rows(
            "SELECT id, citizen_id, partner_id, occurred_at, ended_at, record_hash, status, "
            "duplicate_of FROM activity_records WHERE behaviour = :code AND occurred_at "
            f"BETWEEN :lo AND :hi AND {sql.member('citizen_id', 'ids')} ORDER BY id",
            code=code, lo=lo, hi=hi, ids=sql.values(sorted({cid for cid, _ in items})))
        by_id: dict[int, _Seen] = {}
        for rid, citizen, pid, began, ended, rhash, status, dup_of in rows:
            seen = _Seen(rid, pid, began, began if ended is None else ended, bytes(rhash),
                         status == "duplicate")
            writes.seen[(citizen or 0, code)].append(seen)
            by_id[rid] = seen
            winner = by_id.get(dup_of) if dup_of is not None else None
            if winner is not None:
                if winner.matched_by is None:
                    winner.matched_by = set()
                winner.matched_by.add(pid)


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _totals_update(table: Table, period: str) -> Update:
    return update(table).where(and_(
        table.c.citizen_id == bindparam("c"), table.c.behaviour == bindparam("b"),
        table.c[period] == bindparam("p"))).values(grams=bindparam("g"))


_balances = _table(Balance)
# The bulk statements, built once (so they are compiled once, see _compiled).
_INSERT_RECORDS = insert(_table(ActivityRecord)).inline()
_INSERT_ENTRIES = insert(_table(LedgerEntry)).inline()
_ADD_POINTS = (update(_balances).where(_balances.c.citizen_id == bindparam("cid"))
               .values(points=_balances.c.points + bindparam("add")))
_TOTALS = {period: (insert(_table(model)).inline(), _totals_update(_table(model), period))
           for model, period in ((DailyTotal, "day"), (MonthlyTotal, "month"))}


def _write(sql: _Sql, writes: _Writes) -> None:
    """Bulk statements (executemany), in the caller's transaction."""
    if writes.records:
        sql.executemany(_INSERT_RECORDS, RECORD_COLUMNS, writes.records)
    if writes.entries:
        sql.executemany(_INSERT_ENTRIES, ENTRY_COLUMNS, writes.entries)
    if writes.points:  # SET before WHERE: the compiled order of the parameters
        sql.executemany(_ADD_POINTS, ("add", "cid"),
                        [(add, cid) for cid, add in writes.points.items()])
    _write_totals(sql, "day", writes.days, writes.stored_days)
    _write_totals(sql, "month", writes.months, writes.stored_months)


def _write_totals(sql: _Sql, period: str, totals: dict[tuple[int, str, int], int],
                  stored: dict[tuple[int, str, int], int]) -> None:
    """Insert the new totals and update the changed ones (most loaded ones are not)."""
    new = [(*k, g) for k, g in totals.items() if g and k not in stored]
    old = [(g, *k) for k, g in totals.items() if k in stored and g != stored[k]]
    add, change = _TOTALS[period]
    if new:
        sql.executemany(add, ("citizen_id", "behaviour", period, "grams"), new)
    if old:
        sql.executemany(change, ("g", "c", "b", "p"), old)
