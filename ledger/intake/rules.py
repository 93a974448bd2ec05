"""Intake's rules: what each record of a submission is worth and whether the ledger
credits it, over plain data. No database here, so the rules test in milliseconds.

A submission goes through them in two steps:

1. Before the write lock, each record on its own (:func:`prepare_records`): its shape and
   age, then :func:`assess`: under the methodology in force when the behaviour happened,
   a known behaviour this kind of partner may report, within the plausibility bounds
   (quantity per record, average speed), quantified (grams before caps, the local day
   and month its caps count in, its credit's entry id).
2. In the lock, the records against what the ledger knows (:func:`decide` over a
   :class:`Snapshot`): a record id received before is a duplicate (same content,
   credited once) or rejected (other content); a report of the same behaviour by another
   partner overlapping in time is a duplicate of the first report received (credited
   once, with a pointer to the winner); more records an hour than the methodology allows
   are rejected; daily and monthly caps count what earlier submissions credited and what
   the records before each one did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, credit_entry_id
from ledger.methodology import (
    Behaviour,
    Methodology,
    SubmissionWindow,
    methodology_in_force,
    month_of_day,
)
from ledger.records import ActivityRecordIn, parse_record, rebuilt_record

MAX_RECORDS_PER_SUBMISSION = 50_000

#: Records parsed and assessed between two calls of ``prepare_records``' ``pause``.
PREPARE_CHUNK = 100


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
    kind of partner, plausible) and quantify it."""
    try:
        methodology = methodology_in_force(record.occurred_at)
        behaviour = methodology.behaviour(record.behaviour)
    except InvalidInput as exc:
        return exc.field or "behaviour", exc.message
    if kind not in behaviour.partner_kinds:
        return "behaviour", f"a {kind} partner may not report {behaviour.code}"
    implausible = implausible_record(behaviour, record)
    if implausible:
        return implausible
    day = methodology.local_day(record.occurred_at)
    return Quantified(methodology, behaviour, behaviour.reduction_grams(record.quantity), day,
                      month_of_day(day), credit_entry_id(address, record.record_id))


def implausible_record(behaviour: Behaviour, record: ActivityRecordIn) -> tuple[str, str] | None:
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


@dataclass
class PreparedRecords:
    """A submission's records checked on their own for one partner (kind and signing
    address): each well-formed one with its assessment, and a rejection for each other."""

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


@dataclass(slots=True)
class Neighbour:
    """A record of one citizen and behaviour already in the ledger (or earlier in this
    submission), as de-duplication and the per-hour bound see it. Not frozen, though
    never changed: one is built per record, and a frozen one costs four times as much."""

    row_id: int | None  # None until written (records of this submission)
    partner_id: int
    start: int
    end: int
    record_hash: bytes
    duplicate: bool


#: (citizen id, behaviour code)
CitizenBehaviour = tuple[int, str]
#: (citizen id, behaviour code, local day or month): grams credited in that period
PeriodKey = tuple[int, str, int]


@dataclass
class Snapshot:
    """What the ledger holds that one submission's decisions depend on (read in the
    write lock by :class:`ledger.store.intake.IntakeStore`, or built by hand in a test).
    :func:`decide` leaves it as it was."""

    #: this partner's record ids received before, and each one's record hash
    known: dict[str, bytes] = field(default_factory=dict)
    #: the submission's citizens by pseudonym: (citizen id, account); erased ones absent
    citizens: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    days: dict[PeriodKey, int] = field(default_factory=dict)
    months: dict[PeriodKey, int] = field(default_factory=dict)
    #: records near in time of the behaviours with a de-duplication or per-hour rule,
    #: oldest first
    neighbours: dict[CitizenBehaviour, list[Neighbour]] = field(default_factory=dict)
    #: a credited record's row id -> the partners whose duplicate report it absorbed
    matched: dict[int, set[int]] = field(default_factory=dict)
    #: the citizen's longest stored record of the behaviour (seconds from start to end),
    #: for each pair of the submission that has a ``citizen_totals`` row (absent: none)
    longest: dict[CitizenBehaviour, int] = field(default_factory=dict)


def look_back(longest: int, window: int) -> int:
    """How far either side of a record's interval the stored records that its decision
    depends on can start, given the citizen's longest stored record of the behaviour and
    its de-duplication window: the per-hour bound's hour, or an overlap of intervals each
    widened by ``window`` (a stored record starts at most ``longest`` before it ends), and
    the duplicates already matched to such a record (one more overlap away)."""
    return max(3600, 4 * window + 2 * longest) + 1


#: (entries, grams, points, longest) a decision adds to a citizen's totals of a behaviour
Tally = list[int]
#: [citizen id, behaviour code, earliest start, latest start]: stored records to read
Window = list[Any]


def windows(ours: Sequence[tuple[int, ActivityRecordIn, Quantified]],
            longest: dict[CitizenBehaviour, int]) -> list[Window]:
    """The stored records a submission's decisions depend on, as start-time windows per
    citizen and behaviour with a de-duplication or per-hour rule: each record's interval
    widened by its :func:`look_back`, those of one citizen and behaviour that overlap
    merged. So the rows read follow each citizen's own records, wherever in time."""
    spans: dict[CitizenBehaviour, list[tuple[int, int]]] = defaultdict(list)
    for cid, record, q in ours:
        b = q.behaviour
        if b.dedup_window_seconds is None and not b.max_records_per_hour:
            continue
        key = (cid, b.code)
        reach = look_back(longest.get(key, 0), b.dedup_window_seconds or 0)
        spans[key].append((record.occurred_at - reach, record.end + reach))
    out: list[Window] = []
    for (cid, code), items in spans.items():
        items.sort()
        lo, hi = items[0]
        for start, end in items[1:]:
            if start > hi:
                out.append([cid, code, lo, hi])
                lo = start
            hi = max(hi, end)
        out.append([cid, code, lo, hi])
    return out


#: activity_records columns in the order a :class:`Decision`'s record rows give them (the
#: table's order, so SQLite's positional parameters take the rows as they are).
RECORD_COLUMNS = ("partner_id", "partner_record_id", "citizen_id", "behaviour", "quantity",
                  "occurred_at", "ended_at", "raw", "record_hash", "status", "duplicate_of",
                  "entry_id", "submission_id", "received_at")


@dataclass
class Decision:
    """Every record's outcome (in submission order) and everything to write for them."""

    outcomes: list[RecordOutcome]
    records: list[tuple[Any, ...]]  # rows in RECORD_COLUMNS order
    #: credits as :func:`ledger.entries.entry_values` takes them: entry id, citizen id,
    #: account, kind, behaviour, quantity, grams, points, methodology, occurred_at,
    #: record hash, partner address
    credits: list[tuple[Any, ...]]
    points: dict[int, int]  # citizen id -> points credited
    days: dict[PeriodKey, int]  # the totals after this submission: the snapshot's, updated
    months: dict[PeriodKey, int]
    #: what the records written add to each citizen's totals of a behaviour: entries,
    #: grams, points, and the longest record's interval
    tallies: dict[CitizenBehaviour, Tally] = field(default_factory=dict)


def decide(snapshot: Snapshot, prepared: PreparedRecords, *, partner_id: int, now: int,
           submission_id: bytes | None) -> Decision:
    """Decide a submission's records in order, each against the snapshot and the
    records before it."""
    decider = _Decider(snapshot, partner_id, prepared.address, now, submission_id)
    outcomes = list(prepared.rejected)
    outcomes += [decider.decide(index, record, q) for index, record, q in prepared.good]
    outcomes.sort(key=attrgetter("index"))
    return Decision(outcomes, decider.records, decider.credits, dict(decider.points),
                    decider.days, decider.months, decider.tallies)


class _Decider:
    """The state one submission's decisions build up: the snapshot's, copied, plus what
    the records decided so far add to it."""

    def __init__(self, snapshot: Snapshot, partner_id: int, address: bytes, now: int,
                 submission_id: bytes | None) -> None:
        self.snapshot, self.partner_id, self.address = snapshot, partner_id, address
        self.now, self.submission_id = now, submission_id
        self.known = dict(snapshot.known)
        self.days, self.months = dict(snapshot.days), dict(snapshot.months)
        self.matched = {row: set(partners) for row, partners in snapshot.matched.items()}
        self.seen: dict[CitizenBehaviour, list[Neighbour]] = {}  # copied when first used
        self.records: list[tuple[Any, ...]] = []
        self.credits: list[tuple[Any, ...]] = []
        self.points: dict[int, int] = defaultdict(int)
        self.tallies: dict[CitizenBehaviour, Tally] = {}

    def decide(self, index: int, record: ActivityRecordIn, assessed: Assessment) -> RecordOutcome:
        rid = record.record_id
        prior = self.known.get(rid)
        if prior is not None:
            if prior == record.record_hash:
                return RecordOutcome(index, rid, "duplicate", reason="already received; credited once")
            return RecordOutcome(index, rid, "rejected", "record_id",
                                 "this id was submitted before with other content")
        citizen = self.snapshot.citizens.get(record.citizen)
        if citizen is None:
            return RecordOutcome(index, rid, "rejected", "citizen", "unknown citizen")
        citizen_id, account = citizen
        if not isinstance(assessed, Quantified):
            return RecordOutcome(index, rid, "rejected", *assessed)

        behaviour, code = assessed.behaviour, assessed.behaviour.code
        key = (citizen_id, code)
        seen = self.seen.get(key)
        if seen is None:  # this citizen's first record of the behaviour here
            seen = self.seen[key] = list(self.snapshot.neighbours.get(key, ()))
        if behaviour.dedup_window_seconds is not None:
            winner = same_behaviour_elsewhere(behaviour.dedup_window_seconds, self.partner_id,
                                              record, seen, self.matched)
            if winner is not None:
                return self._duplicate(index, record, citizen_id, code, winner)
        limit = behaviour.max_records_per_hour
        if limit is not None and too_many_in_an_hour(record.occurred_at, seen, limit):
            return RecordOutcome(index, rid, "rejected", "occurred_at",
                                 f"implausible: more than {limit} {code} records for this "
                                 "citizen within an hour")
        seen.append(Neighbour(None, self.partner_id, record.occurred_at, record.end,
                              record.record_hash, False))
        return self._credit(index, record, citizen_id, account, assessed)

    def _duplicate(self, index: int, record: ActivityRecordIn, citizen_id: int, code: str,
                   winner: Neighbour) -> RecordOutcome:
        assert winner.row_id is not None  # only stored records win
        self.matched.setdefault(winner.row_id, set()).add(self.partner_id)
        self.records.append(self._row(record, citizen_id, code, "duplicate", winner.row_id,
                                      None))
        self.known[record.record_id] = record.record_hash
        return RecordOutcome(
            index, record.record_id, "duplicate", field="occurred_at",
            reason=f"the same {code} was reported earlier by another partner and credited "
                   "once (the first report wins)",
            duplicate_of="0x" + winner.record_hash.hex())

    def _credit(self, index: int, record: ActivityRecordIn, citizen_id: int, account: bytes,
                assessed: Quantified) -> RecordOutcome:
        """Credit what the daily and monthly caps leave room for (maybe nothing)."""
        behaviour, code = assessed.behaviour, assessed.behaviour.code
        grams = assessed.grams
        day = (citizen_id, code, assessed.day)
        month = (citizen_id, code, assessed.month)
        used_day = self.days.get(day, 0)
        used_month = self.months.get(month, 0)
        room = behaviour.daily_cap_grams - used_day
        if behaviour.monthly_cap_grams is not None:
            room = min(room, behaviour.monthly_cap_grams - used_month)
        credited = max(0, min(grams, room))
        self.days[day] = used_day + credited
        self.months[month] = used_month + credited
        points = assessed.methodology.points(credited)
        entry_id = assessed.entry_id if credited else None
        self.records.append(self._row(record, citizen_id, code,
                                      "credited" if credited else "capped", None, entry_id))
        self.known[record.record_id] = record.record_hash
        outcome = RecordOutcome(index, record.record_id, "accepted", reduction_grams=credited,
                                points=points, capped=credited < grams,
                                record_hash=record.record_hash)
        if entry_id is None:
            outcome.reason = "daily or monthly cap reached: nothing credited"
            return outcome
        self.credits.append((entry_id, citizen_id, account, KIND_CREDIT, code, record.quantity,
                             credited, points, assessed.methodology.version, record.occurred_at,
                             record.record_hash, self.address))
        self.points[citizen_id] += points
        tally = self.tallies[(citizen_id, code)]  # made by _row, above
        tally[0] += 1
        tally[1] += credited
        tally[2] += points
        outcome.entry_id = "0x" + entry_id.hex()
        return outcome

    def _row(self, record: ActivityRecordIn, citizen_id: int, code: str, status: str,
             duplicate_of: int | None, entry_id: bytes | None) -> tuple[Any, ...]:
        """The record's activity_records row, in :data:`RECORD_COLUMNS` order (and its
        interval counted in the citizen's longest of the behaviour)."""
        tally = self.tallies.get((citizen_id, code))
        if tally is None:
            tally = self.tallies[(citizen_id, code)] = [0, 0, 0, 0]
        if record.ended_at is not None and record.ended_at - record.occurred_at > tally[3]:
            tally[3] = record.ended_at - record.occurred_at
        # no text when the record is its columns (and its citizen's pseudonym) rebuilt
        raw = None if rebuilt_record(record.record_id, record.citizen, code, record.quantity,
                                     record.occurred_at, record.ended_at) == record.canonical \
            else record.canonical.decode()
        return (self.partner_id, record.record_id, citizen_id, code, record.quantity,
                record.occurred_at, record.ended_at, raw, record.record_hash, status,
                duplicate_of, entry_id, self.submission_id, self.now)


def same_behaviour_elsewhere(window: int, partner_id: int, record: ActivityRecordIn,
                             seen: list[Neighbour], matched: dict[int, set[int]]
                             ) -> Neighbour | None:
    """The earliest credited report by another partner that overlaps this one in time,
    each widened by ``window`` seconds, and has not already absorbed a report from this
    partner (one-to-one matching)."""
    lo, hi = record.occurred_at - 2 * window, record.end + 2 * window
    for other in seen:  # oldest first
        if (other.partner_id != partner_id and not other.duplicate and other.row_id is not None
                and other.end >= lo and other.start <= hi
                and partner_id not in matched.get(other.row_id, ())):
            return other
    return None


def too_many_in_an_hour(at: int, seen: list[Neighbour], limit: int) -> bool:
    """Would ``at`` make more than ``limit`` records fall within some hour?"""
    near = [s.start for s in seen if not s.duplicate and abs(s.start - at) < 3600]
    if len(near) < limit:
        return False
    times = sorted([*near, at])
    return any(times[i + limit] - times[i] < 3600 for i in range(len(times) - limit))
