"""Intake's one SQL adapter: the locks, the snapshot a submission is decided over, and
the bulk writes of the decision. The only intake code that knows the backend.

This is the hot path, so it speaks plain SQL on the session's connection: lists go in as
one parameter (SQLite's ``json_each``, PostgreSQL's arrays) rather than one bound
parameter per value, rows come back as the driver's tuples, and bulk writes go to the
driver's executemany with statements compiled once.

Two submissions touching one citizen must not interleave (caps and de-duplication read
what earlier ones wrote): on SQLite the session's write lock serialises them; on
PostgreSQL the partner's and the citizens' advisory locks do.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Table, Update, and_, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from ledger.entries import ENTRY_COLUMNS, entry_values
from ledger.intake.rules import (
    RECORD_COLUMNS,
    CitizenBehaviour,
    Decision,
    Neighbour,
    PeriodKey,
    PreparedRecords,
    Quantified,
    Snapshot,
)
from ledger.records import MAX_DURATION_SECONDS, ActivityRecordIn
from ledger.store.locks import CITIZEN_LOCK_BUCKETS, CITIZEN_LOCKS, PARTNER_LOCKS
from ledger.store.models import (
    ActivityRecord,
    Balance,
    DailyTotal,
    LedgerEntry,
    MonthlyTotal,
    Submission,
)

#: Quantified records of known citizens, with the citizen's id.
_Ours = list[tuple[int, ActivityRecordIn, Quantified]]


class IntakeStore:
    """Intake's reads and writes in one session's transaction (write-locked on SQLite)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.connection = session.connection()
        self.dialect = self.connection.dialect
        self.sqlite = self.dialect.name == "sqlite"

    def lock_partner(self, partner_id: int) -> None:
        """On PostgreSQL, one submission per partner at a time to the end of the
        transaction, so a record id (or nonce) raced by two requests is credited by one
        and a duplicate for the other, not a unique violation. Take it before reading the
        partner's record ids or nonces."""
        if not self.sqlite:
            self._rows("SELECT pg_advisory_xact_lock(:ns, :p)", ns=PARTNER_LOCKS, p=partner_id)

    def earlier_submission(self, partner_id: int, nonce: bytes) -> tuple[str, int] | None:
        """The id and receipt time of this partner's submission with ``nonce``, if any
        (one lookup on the unique (partner, nonce) index)."""
        row = self.session.execute(select(Submission.id, Submission.received_at).where(
            Submission.partner_id == partner_id, Submission.nonce == nonce)).first()
        return None if row is None else (row.id, row.received_at)

    def load_snapshot(self, partner_id: int, prepared: PreparedRecords) -> Snapshot:
        """What the ledger knows about these records: the partner's record ids, the
        citizens, and (with the citizens locked, so it stays true to the end of the
        transaction) their totals and neighbouring records. Call it with the partner
        locked."""
        good = prepared.good
        known = self._known_records(partner_id, [r.record_id for _, r, _ in good])
        citizens = self._citizens([r.citizen for _, r, _ in good])
        ours = [(citizens[r.citizen][0], r, q) for _, r, q in good
                if r.citizen in citizens and isinstance(q, Quantified)]
        self._lock_citizens([cid for cid, _, _ in ours])
        snapshot = Snapshot(known, citizens)
        self._load_totals(snapshot, ours)
        self._load_neighbours(snapshot, ours)
        return snapshot

    def write(self, snapshot: Snapshot, decision: Decision) -> None:
        """The decision's rows, by bulk statements in the session's transaction."""
        if decision.records:
            self._executemany(_INSERT_RECORDS, RECORD_COLUMNS, decision.records)
        if decision.credits:
            self._executemany(_INSERT_ENTRIES, ENTRY_COLUMNS,
                              [entry_values(*credit) for credit in decision.credits])
        if decision.points:  # SET before WHERE: the compiled order of the parameters
            self._executemany(_ADD_POINTS, ("add", "cid"),
                              [(add, cid) for cid, add in decision.points.items()])
        self._write_totals("day", decision.days, snapshot.days)
        self._write_totals("month", decision.months, snapshot.months)

    def add_submission(self, row: Submission) -> None:
        self.session.add(row)

    # Reads

    def _known_records(self, partner_id: int, ids: list[str]) -> dict[str, bytes]:
        if not ids:
            return {}
        rows = self._rows("SELECT partner_record_id, record_hash FROM activity_records "
                          f"WHERE partner_id = :p AND {self._member('partner_record_id', 'ids')}",
                          p=partner_id, ids=self._values(ids))
        return {rid: bytes(h) for rid, h in rows}

    def _citizens(self, pseudonyms: list[str]) -> dict[str, tuple[int, bytes]]:
        if not pseudonyms:
            return {}
        rows = self._rows("SELECT pseudonym, id, account FROM citizens "
                          f"WHERE erased_at IS NULL AND {self._member('pseudonym', 'ps')}",
                          ps=self._values(sorted(set(pseudonyms))))
        return {p: (cid, bytes(account)) for p, cid, account in rows}

    def _lock_citizens(self, citizen_ids: list[int]) -> None:
        """On PostgreSQL, hold each citizen's advisory lock (shared by the citizens of one
        bucket) to the end of the transaction, taken in order so two submissions never
        deadlock."""
        if self.sqlite or not citizen_ids:
            return
        self._rows("SELECT count(pg_advisory_xact_lock(:ns, c)) FROM "
                   "(SELECT unnest(CAST(:ids AS integer[])) AS c ORDER BY 1) AS locked",
                   ns=CITIZEN_LOCKS, ids=sorted({c % CITIZEN_LOCK_BUCKETS for c in citizen_ids}))

    def _load_totals(self, snapshot: Snapshot, ours: _Ours) -> None:
        """What earlier submissions credited on the days and months this one touches,
        for the behaviours it reports (the key's prefix, so the primary key finds them)."""
        if not ours:
            return
        days = [q.day for _, _, q in ours]
        months = [q.month for _, _, q in ours]
        params = {"ids": self._values(sorted({cid for cid, _, _ in ours})),
                  "codes": self._values(sorted({q.behaviour.code for _, _, q in ours}))}
        where = f"{self._member('citizen_id', 'ids')} AND {self._member('behaviour', 'codes')}"
        rows = self._rows(f"SELECT citizen_id, behaviour, day, grams FROM daily_totals WHERE "
                          f"{where} AND day BETWEEN :a AND :b", a=min(days), b=max(days),
                          **params)
        snapshot.days = {(c, b, d): g for c, b, d, g in rows}
        rows = self._rows(f"SELECT citizen_id, behaviour, month, grams FROM monthly_totals "
                          f"WHERE {where} AND month BETWEEN :a AND :b", a=min(months),
                          b=max(months), **params)
        snapshot.months = {(c, b, m): g for c, b, m, g in rows}

    def _load_neighbours(self, snapshot: Snapshot, ours: _Ours) -> None:
        """Earlier records that de-duplication or a per-hour bound must look at: the same
        citizens and behaviours, near in time. Only behaviours with such a rule are read."""
        wanted: dict[str, list[tuple[int, ActivityRecordIn]]] = defaultdict(list)
        windows: dict[str, int] = defaultdict(int)
        for cid, r, q in ours:
            b = q.behaviour
            if b.dedup_window_seconds is not None or b.max_records_per_hour:
                wanted[b.code].append((cid, r))
                windows[b.code] = max(windows[b.code], b.dedup_window_seconds or 0)
        neighbours: dict[CitizenBehaviour, list[Neighbour]] = defaultdict(list)
        for code, items in wanted.items():
            slack = 3600 + 2 * windows[code]
            lo = min(r.occurred_at for _, r in items) - slack - MAX_DURATION_SECONDS
            hi = max(r.end for _, r in items) + slack
            rows = self._rows(
                "SELECT id, citizen_id, partner_id, occurred_at, ended_at, record_hash, status, "
                "duplicate_of FROM activity_records WHERE behaviour = :code AND occurred_at "
                f"BETWEEN :lo AND :hi AND {self._member('citizen_id', 'ids')} ORDER BY id",
                code=code, lo=lo, hi=hi, ids=self._values(sorted({cid for cid, _ in items})))
            loaded: set[int] = set()
            for row_id, citizen, pid, began, ended, rhash, status, duplicate_of in rows:
                neighbours[(citizen or 0, code)].append(Neighbour(
                    row_id, pid, began, began if ended is None else ended, bytes(rhash),
                    status == "duplicate"))
                loaded.add(row_id)
                if duplicate_of in loaded:
                    snapshot.matched.setdefault(duplicate_of, set()).add(pid)
        snapshot.neighbours = dict(neighbours)

    # Plain SQL on the session's connection

    def _member(self, column: str, name: str) -> str:
        """``column`` is one of the list bound as ``name``."""
        if self.sqlite:
            return f"{column} IN (SELECT value FROM json_each(:{name}))"
        return f"{column} = ANY(:{name})"

    def _values(self, items: Sequence[Any]) -> Any:
        return json.dumps(list(items)) if self.sqlite else list(items)

    def _rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
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

    def _executemany(self, statement: Insert | Update, columns: Sequence[str],
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

    def _write_totals(self, period: str, totals: dict[PeriodKey, int],
                      stored: dict[PeriodKey, int]) -> None:
        """Insert the new totals and update the changed ones (most loaded ones are not)."""
        new = [(*k, g) for k, g in totals.items() if g and k not in stored]
        old = [(g, *k) for k, g in totals.items() if k in stored and g != stored[k]]
        add, change = _TOTALS[period]
        if new:
            self._executemany(add, ("citizen_id", "behaviour", period, "grams"), new)
        if old:
            self._executemany(change, ("g", "c", "b", "p"), old)


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
