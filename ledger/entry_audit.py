"""One entry of a sealed batch recomputed by an auditor, the batch read a page at a time.

The batch is read in pages of ``seq`` (its entries' order, the content hash's order):
each page one keyset read that joins the entry and its locator row (by the locator's
key), then its credits' raw records, read as one run of the records' primary key from
where the last page's ended (intake writes records in their entries' order) and each
one not in that run by ``ix_records_citizen_behaviour`` and its entry id; a record is a
credit's only if its citizen, behaviour, time and entry id are the entry's. So a page
costs the same whatever the batch's size or the ledger's history, and memory stays
constant: what :mod:`ledger.audit` keeps of a page is its tallies and leaf hashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput
from ledger.hashing import keccak
from ledger.leaf import (
    KIND_CREDIT,
    LEAF_ENTRY_ID,
    LEAF_RECORD_HASH,
    abi_form,
    behaviour_code,
    decode_leaf,
    stored_values,
)
from ledger.methodology import methodology_in_force
from ledger.records import parse_record, plain_record, rebuilt_record
from ledger.store.database import driver_rows
from ledger.store.models import (
    ActivityRecord,
    Batch,
    Citizen,
    DailyTotal,
    EntryLocator,
    LedgerEntry,
    MonthlyTotal,
    entry_key,
    leaf_entry_id,
)

#: Entries read and checked at a time: large enough that a page's round trip is small
#: beside its checks, small enough that a page's rows are a few megabytes.
PAGE_SIZE = 2000
#: Keys per lookup of cap totals: 3 values a key stays far below every backend's limit on
#: bound variables.
_KEYS_PER_QUERY = 300


@dataclass(slots=True)
class EntryAudit:
    """One entry recomputed: what its leaf, raw record and the methodology give, beside
    what was credited, and the problem if it does not hold."""

    seq: int
    entry_id: bytes
    kind: int
    leaf_hash: bytes
    credited_grams: int
    credited_points: int
    #: keccak of the stored raw record (None: a debit, or a credit with no record found)
    record_hash: bytes | None = None
    #: the version in force when the behaviour happened, the factors' full figure for
    #: the quantity under it, and the points its rule gives for the credited grams
    methodology: int | None = None
    full_grams: int | None = None
    points: int | None = None
    capped: bool = False
    #: a credit whose leaf holds (counted as the batch's credits and grams)
    credit: bool = False
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "entryId": shown(self.entry_id), "kind": self.kind,
                "leafHash": shown(self.leaf_hash), "reductionGrams": self.credited_grams,
                "points": self.credited_points,
                "recordHash": None if self.record_hash is None else shown(self.record_hash),
                "methodology": self.methodology, "fullGrams": self.full_grams,
                "rulePoints": self.points, "capped": self.capped, "problems": self.problems}


# -- reading ---------------------------------------------------------------------------------

_e, _l, _r = LedgerEntry.__table__.c, EntryLocator.__table__.c, ActivityRecord.__table__.c
_c = Citizen.__table__.c
#: A record's text, or the columns it is rebuilt from when it has none (raw NULL).
_RECORD = (_r.raw, _r.partner_record_id, _c.pseudonym, _r.behaviour, _r.quantity,
           _r.occurred_at, _r.ended_at)
_RECORDS = ActivityRecord.__table__.outerjoin(Citizen.__table__, _c.id == _r.citizen_id)
#: One page: the entries after a seq, each with its locator row (by the locator's key,
#: the leaf's first bytes: an entry id is the leaf's first 32). The locator is probed by
#: each random id: an index on its (batch, seq) would make that a range read, about 2 us
#: an entry less, but costs the seal more than that (docs/benchmarks.md, "The audit").
_PAGE = (
    select(_e.seq, _e.citizen_id, _e.kind, _e.behaviour, _e.reduction_grams, _e.points,
           _e.occurred_at, _e.leaf, _l.seq, _l.batch_id)
    .select_from(LedgerEntry.__table__
                 .outerjoin(EntryLocator.__table__, _l.entry_key == entry_key(_e.leaf)))
)
#: A page row's places: the columns, then the locator's seq and batch.
_SEQ, _CITIZEN, _KIND, _BEHAVIOUR, _GRAMS, _POINTS, _AT, _LEAF = range(8)


def page_query(after: int, last: int, limit: int):  # type: ignore[no-untyped-def]
    """The statement reading one page: the entries with ``after < seq <= last``, at most
    ``limit`` (tests read its query plan). The caller keeps the range to a page's width
    (seqs are dense, with a gap where a write was rolled back): on PostgreSQL, with
    statistics older than the batch, an open range was estimated at a few hundred rows
    and planned as a scan of everything after ``after``, each row probing the locator,
    sorted for the page's ``limit``: 165 ms a page at 200,000 entries, where a page's
    width of seqs takes 4.5 ms (docs/benchmarks.md, "The audit on PostgreSQL: a page a
    page wide")."""
    return _PAGE.where(_e.seq > after, _e.seq <= last).order_by(_e.seq).limit(limit)


def run_query(start: int, limit: int):  # type: ignore[no-untyped-def]
    """The raw records with ids ``start`` to ``start + limit - 1``, a run of the primary
    key: intake writes a submission's records in the order of their entries, so a page's
    records are mostly one such run, read for a third of what finding each by its key
    costs. A closed range, as a page's (:func:`page_query`)."""
    return (select(_r.id, _r.entry_id, _r.citizen_id, _r.behaviour, _r.occurred_at, *_RECORD)
            .select_from(_RECORDS).where(_r.id >= start, _r.id < start + limit)
            .order_by(_r.id).limit(limit))


def records_query(seqs: Sequence[int]):  # type: ignore[no-untyped-def]
    """The raw records of the credits at ``seqs``, each found by its entry's citizen,
    behaviour, time and id, as the city rollups find it, through
    ``ix_records_citizen_behaviour`` (no index on the records' random entry ids to keep
    at ingest): for the credits whose record is not in the run."""
    return (select(_e.seq, _r.id, *_RECORD)
            .select_from(LedgerEntry.__table__.join(_RECORDS, and_(
                _r.citizen_id == _e.citizen_id, _r.behaviour == _e.behaviour,
                _r.occurred_at == _e.occurred_at, _r.entry_id == leaf_entry_id(_e.leaf))))
            .where(_e.kind == KIND_CREDIT, _e.seq.in_(seqs)))


def any_of(columns: Sequence[Any], keys: Sequence[tuple[Any, ...]]) -> ColumnElement[bool]:
    """``columns`` equal to one of ``keys``, written as OR'ed equalities: each term an index
    search on both backends (SQLite scans the table for a row-value ``IN`` list)."""
    return or_(*(and_(*(c == v for c, v in zip(columns, key, strict=True))) for key in keys))


def _rows(session: Session, statement: Any) -> Sequence[Any]:
    # the driver's rows: SQLAlchemy's result processing cost about a fifth of a page's read
    return driver_rows(session.connection(), statement)


def audited_pages(session: Session, batch: Batch, after: int, size: int, *, last: int | None = None,
           one: bool = False) -> Iterator[list[EntryAudit]]:
    """The batch's entries after ``after`` (up to ``last``) recomputed, a page of ``size``
    at a time (the last may hold fewer), in seq order; with ``one``, the first page only."""
    last = batch.last_seq if last is None else last
    batch_id = batch.id  # an ORM attribute read costs as much as a check's arithmetic
    run_from: int | None = None  # where the next page's run of records should begin
    while after < last:
        rows: list[Any] = []
        while after < last and len(rows) < size:  # more than one read where seqs have gaps
            upto = min(last, after + size - len(rows))
            rows += _rows(session, page_query(after, upto, size))
            after = upto
        if not rows:
            return
        raws, run_from = _raw_records(session, [r for r in rows if r[_KIND] == KIND_CREDIT],
                                      run_from)
        page: list[EntryAudit] = []
        capped: list[tuple[EntryAudit, int, str, int]] = []
        for row in rows:
            entry = _check_row(row, raws.get(row[_SEQ]), batch_id)
            page.append(entry)
            if entry.capped:
                capped.append((entry, row[_CITIZEN], row[_BEHAVIOUR], row[_AT]))
        _check_caps_reached(session, capped)
        yield page
        if one:
            return


def _raw_records(session: Session, credits: list[Any],
                 run_from: int | None) -> tuple[dict[int, str | Rebuilt], int | None]:
    """The raw record of each credit row, by seq: the one with the entry's citizen,
    behaviour, time and id. Looked for first in the run of records from ``run_from`` on
    (a page's records are mostly one run of ids), then, for those not in it, each by its
    key; also where the next run should begin (after the last record found)."""
    raws: dict[int, str | Rebuilt] = {}
    last_found = -1
    if run_from is not None and credits:
        run = {r[1]: r for r in _rows(session, run_query(run_from, len(credits) * 9 // 8 + 16))}
        for row in credits:  # a page row: the entry id is its leaf's first 32 bytes
            found = run.get(bytes(row[_LEAF][LEAF_ENTRY_ID]))
            if (found is not None and found[2] == row[_CITIZEN] and found[3] == row[_BEHAVIOUR]
                    and found[4] == row[_AT]):
                raws[row[_SEQ]] = _text(*found[5:])
                if found[0] > last_found:
                    last_found = found[0]
    missing = [row[_SEQ] for row in credits if row[_SEQ] not in raws]
    for lo in range(0, len(missing), _KEYS_PER_QUERY):
        for seq, record_id, *record in session.execute(
                records_query(missing[lo:lo + _KEYS_PER_QUERY])):
            if seq not in raws:  # a second record claiming the same entry: one is checked
                raws[seq] = _text(*record)
                last_found = max(last_found, record_id)
    return raws, last_found + 1 if last_found >= 0 else run_from


class Rebuilt(NamedTuple):
    """A record with no stored text, rebuilt from its columns: the bytes, and the
    behaviour, quantity and time they were built from (what parsing them gives back)."""

    encoded: bytes
    parsed: tuple[str, int, int]


def _text(raw: str | None, record_id: str, pseudonym: str | None, behaviour: str,
          quantity: int, occurred_at: int, ended_at: int | None) -> str | Rebuilt:
    """A record's text as stored, or rebuilt from its columns when it has none."""
    if raw is not None:
        return raw
    if pseudonym is None:  # no citizen to rebuild it with (intake never stores this)
        return ""
    return Rebuilt(rebuilt_record(record_id, pseudonym, behaviour, quantity, occurred_at,
                                  ended_at), (behaviour, quantity, occurred_at))


# -- checking ---------------------------------------------------------------------------------

def _check_row(row: tuple, raw: str | Rebuilt | None,  # type: ignore[type-arg]
               batch_id: int) -> EntryAudit:
    seq, _citizen, kind, behaviour, grams, points, at, leaf, located_seq, located_batch = row
    leaf = bytes(leaf)  # the driver's row: the leaf in its stored form
    stored = stored_values(leaf)
    if stored is not None:  # unpacked once: compared as stored, expanded for the hash
        leaf = abi_form(stored)
    entry = EntryAudit(seq, leaf[LEAF_ENTRY_ID], kind, keccak(keccak(leaf)), grams, points)
    if located_seq != seq or located_batch != batch_id:  # so a proof by entry id finds it
        entry.problems.append(f"the locator "
                              f"{'lacks it' if located_seq is None else 'points elsewhere'}")
    held = _check_leaf(leaf, stored, kind, behaviour, grams, points, at)
    if isinstance(held, str):
        entry.problems.append(held)
        return entry
    if kind == KIND_CREDIT:
        entry.credit = True
        quantity, version = held
        problem = _check_credit(entry, raw, behaviour, quantity, grams, points, version, at,
                                leaf[LEAF_RECORD_HASH])
        if problem is not None:
            entry.problems.append(problem)
    return entry


def _check_leaf(leaf: bytes, stored: tuple | None,  # type: ignore[type-arg]
                kind: int, behaviour: str, grams: int, points: int,
                at: int) -> tuple[int, int] | str:
    """Whether the sealed leaf encodes the entry's columns, and if so the quantity and
    methodology version it holds (they, the id, the account, the record hash and the
    partner are not columns: they are taken from the leaf, and the record hash is then
    held to the raw record); else the problem. ``stored``: the leaf's values as stored,
    when it is stored short (a canonical leaf always is: one stored as it is was refused
    as no leaf, and decoding it says why)."""
    code = behaviour_code(behaviour)
    if stored is None:
        try:
            decoded = decode_leaf(leaf)
        except InvalidInput as exc:
            return f"leaf does not decode: {exc.message}"
        stored = decoded.as_tuple()
    if (stored[2], stored[3], stored[5], stored[6], stored[8]) != (kind, code, grams, points, at):
        return "the sealed leaf differs from the entry's columns"
    return stored[4], stored[7]


def _check_credit(entry: EntryAudit, raw: str | Rebuilt | None, behaviour: str, quantity: int,
                  grams: int, points: int, version: int, at: int,
                  record_hash: bytes) -> str | None:
    """What is wrong with a credit whose leaf holds; marks it capped when it is right but
    below the full figure (the cap's total is checked by the page)."""
    if raw is None:
        return "no raw record for this credit"
    encoded = raw.encoded if isinstance(raw, Rebuilt) else raw.encode()
    entry.record_hash = keccak(encoded)
    if entry.record_hash != record_hash:
        return "the raw record does not hash to the sealed recordHash"
    if isinstance(raw, Rebuilt):
        # Its hash is the sealed one, so these bytes are the ones intake received and
        # parsed, and parsing them again gives the columns they were built from (1.3 us
        # an entry: docs/benchmarks.md, "The audit on PostgreSQL: a page a page wide").
        reparsed: tuple[str, int, int] | str = raw.parsed
    else:
        reparsed = _reparsed(raw, encoded)
        if isinstance(reparsed, str):
            return reparsed
    if reparsed != (behaviour, quantity, at):
        return "the raw record's behaviour, quantity or time differ from the entry"
    try:
        in_force = methodology_in_force(at)
    except InvalidInput:
        return "no methodology was in force at its time"
    entry.methodology = in_force.version
    if in_force.version != version:
        return f"methodology v{version} recorded, v{in_force.version} was in force"
    try:
        full = in_force.behaviour(behaviour).reduction_grams(quantity)
    except InvalidInput as exc:
        return exc.message
    entry.full_grams = full
    entry.points = in_force.points(grams)
    if entry.points != points:
        return f"points {points}, the rule gives {entry.points}"
    if grams > full:
        return f"credited {grams} g, the factors give only {full} g"
    if grams < full:
        entry.capped = True
    return None


def _reparsed(raw: str, encoded: bytes) -> tuple[str, int, int] | str:
    """The raw record's behaviour, quantity and time as intake would read them, or why it
    has none."""
    try:
        value = orjson.loads(encoded)
    except orjson.JSONDecodeError:
        value = _NOT_JSON
    quick = plain_record(value)
    if quick is not None:
        return quick
    try:
        if value is _NOT_JSON:
            value = json.loads(raw)  # what orjson refuses, the standard library may read
        parsed = parse_record(value, now=2**62)
    except InvalidInput as exc:
        return f"the raw record no longer parses ({exc.field}: {exc.message})"
    except ValueError as exc:
        return f"the raw record is not JSON ({exc})"
    return parsed.behaviour, parsed.quantity, parsed.occurred_at


_NOT_JSON = object()


def _check_caps_reached(session: Session,
                        capped: list[tuple[EntryAudit, int, str, int]]) -> None:
    """A credit below the full figure is right only if its day's or month's cap is full."""
    if not capped:
        return
    wanted = []
    for entry, citizen, behaviour, at in capped:
        m = methodology_in_force(at)
        wanted.append((entry, at, m.behaviour(behaviour), (citizen, behaviour, m.local_day(at)),
                       (citizen, behaviour, m.local_month(at))))
    days = _totals(session, DailyTotal, DailyTotal.day, {w[3] for w in wanted})
    months = _totals(session, MonthlyTotal, MonthlyTotal.month, {w[4] for w in wanted})
    for entry, at, rule, day, month in wanted:
        day_full = day in days and days[day] >= rule.daily_cap_grams
        month_full = (rule.monthly_cap_grams is not None and month in months
                      and months[month] >= rule.monthly_cap_grams)
        if not (day_full or month_full):
            entry.problems.append(f"a {day[1]} credit at {at} is below its full figure but "
                                  "no cap was reached")


def _totals(session: Session, model: type[DailyTotal] | type[MonthlyTotal], period: Any,
            keys: set[tuple[int, str, int]]) -> dict[tuple[int, str, int], int]:
    out: dict[tuple[int, str, int], int] = {}
    ordered = sorted(keys)
    for lo in range(0, len(ordered), _KEYS_PER_QUERY):
        chunk = ordered[lo:lo + _KEYS_PER_QUERY]
        for citizen, behaviour, when, grams in session.execute(totals_query(model, period, chunk)):
            out[(citizen, behaviour, when)] = grams
    return out


def totals_query(model: type[DailyTotal] | type[MonthlyTotal], period: Any,  # type: ignore[no-untyped-def]
                 keys: Sequence[tuple[int, str, int]]):
    """The cap totals of these (citizen, behaviour, day or month) keys, by their key."""
    return (select(model.citizen_id, model.behaviour, period, model.grams)
            .where(any_of((model.citizen_id, model.behaviour, period), keys)))



def shown(value: bytes | int) -> str:
    return f"0x{value.hex()}" if isinstance(value, bytes) else str(value)
