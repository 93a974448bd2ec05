"""Intake's one SQL adapter: the locks, the snapshot a submission is decided over, and
the bulk writes of the decision. The only intake code that knows the backend.

This is the hot path, so it speaks plain SQL on the session's connection: lists go in as
one parameter (SQLite's ``json_each``, PostgreSQL's arrays in their text form:
:func:`~ledger.store.bulk.pg_array`) rather than one bound parameter per value, rows
come back as the driver's tuples, and bulk writes go to the driver's executemany with
statements compiled once.

Two submissions touching one citizen must not interleave (caps and de-duplication read
what earlier ones wrote): on SQLite the session's write lock serialises them; on
PostgreSQL each citizen's row lock does (:mod:`ledger.store.locks`), so submissions with
no citizen in common are decided and written side by side, a partner's too. Two
submissions racing one record id (or one nonce) meet at the table's unique index: the
later one waits for the earlier to commit, then is decided again (:meth:`IntakeStore.race_free`),
and now finds the record known.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Insert,
    Table,
    Update,
    and_,
    bindparam,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from ledger.entries import ENTRY_COLUMNS, entry_values
from ledger.errors import Contended
from ledger.intake.rules import (
    RECORD_COLUMNS,
    CitizenBehaviour,
    Decision,
    Neighbour,
    PeriodKey,
    PreparedRecords,
    Quantified,
    Snapshot,
    Tally,
    windows,
)
from ledger.leaf import KIND_CREDIT
from ledger.records import ActivityRecordIn
from ledger.store import rollups
from ledger.store.bulk import copy_rows, pg_array, pg_columns
from ledger.store.locks import CITIZEN_LOCK_BUCKETS
from ledger.store.models import (
    ActivityRecord,
    Balance,
    CitizenTotal,
    DailyTotal,
    LedgerEntry,
    MonthlyTotal,
    Submission,
)

#: SQLite's page cache for a connection that ingests (KiB; SQLite's default is 2,000).
#: Time-ordered traffic writes at the end of each citizen's range in every index keyed by
#: citizen, one leaf page per citizen and index: with the default those pages are read
#: back from the OS for every submission once the ledger passes ~100 k entries, and
#: ingest slows as the ledger grows. 256 MiB holds them for ~50,000 active citizens.
INTAKE_CACHE_KIB = 256 * 1024

#: Quantified records of known citizens, with the citizen's id.
_Ours = list[tuple[int, ActivityRecordIn, Quantified]]
_T = TypeVar("_T")

#: How many times a submission is decided again after losing a race (PostgreSQL): each
#: loss means another transaction committed one of its record ids or its nonce, which the
#: next try sees, so a second try is almost always the last.
RACE_ATTEMPTS = 4
#: The unique indexes two racing submissions meet at (anything else is not a race).
RACED_INDEXES = frozenset({"uq_activity_records_partner_id_partner_record_id",
                           "uq_submissions_partner_nonce"})


class IntakeStore:
    """Intake's reads and writes in one session's transaction (write-locked on SQLite)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.connection = session.connection()
        self.dialect = self.connection.dialect
        self.sqlite = self.dialect.name == "sqlite"
        if self.sqlite:
            info = self.connection.connection.info  # this driver connection's, while pooled
            if info.get("intake_cache_kib") != INTAKE_CACHE_KIB:
                self.connection.exec_driver_sql(f"PRAGMA cache_size=-{INTAKE_CACHE_KIB}")
                info["intake_cache_kib"] = INTAKE_CACHE_KIB

    def race_free(self, attempt: Callable[[], _T]) -> _T:
        """``attempt()`` (reading the snapshot, deciding, writing), as if no other
        submission ran beside it. On PostgreSQL each try runs in a savepoint: if another
        transaction wrote one of its record ids or its nonce first, the insert waits for
        that one to commit and fails on the unique index (or, two racing several ids in
        opposite orders, one of them is a deadlock); the savepoint is rolled back (its
        citizens' locks with it) and the try runs again, seeing what the other committed.
        SQLite's one writer has no races."""
        if self.sqlite:
            return attempt()
        for tries in range(1, RACE_ATTEMPTS + 1):
            savepoint = self.session.begin_nested()
            self.session.connection()  # SAVEPOINT now: this store's SQL goes to the driver
            try:
                result = attempt()
                self.session.flush()  # the submission's row too: its nonce races
            except Exception as exc:
                savepoint.rollback()
                if not _raced(exc):
                    raise
                if tries == RACE_ATTEMPTS:
                    raise Contended("other submissions wrote the same record ids or nonce "
                               f"{tries} times while this one was decided; send it again",
                               field="records") from None
                continue
            savepoint.commit()
            return result
        raise AssertionError("unreachable")

    def earlier_submission(self, partner_id: int, nonce: bytes) -> tuple[str, int] | None:
        """The id and receipt time of this partner's submission with ``nonce``, if any
        (one lookup on the unique (partner, nonce) index)."""
        row = self.session.execute(select(Submission.id, Submission.received_at).where(
            Submission.partner_id == partner_id, Submission.nonce == nonce)).first()
        return None if row is None else (row.id, row.received_at)

    def load_snapshot(self, partner_id: int, prepared: PreparedRecords) -> Snapshot:
        """What the ledger knows about these records: the partner's record ids, the
        citizens, and (with the citizens locked, so it stays true to the end of the
        transaction) their totals and neighbouring records."""
        good = prepared.good
        known = self._known_records(partner_id, [r.record_id for _, r, _ in good])
        citizens = self._citizens([r.citizen for _, r, _ in good])
        ours = [(citizens[r.citizen][0], r, q) for _, r, q in good
                if r.citizen in citizens and isinstance(q, Quantified)]
        self._lock_citizens([cid for cid, _, _ in ours])
        snapshot = Snapshot(known, citizens)
        self._load_totals(snapshot, ours)
        self._load_longest(snapshot, ours)
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
        self._write_tallies(decision.tallies, snapshot.longest)
        rollups.add_decision(self.connection, decision)  # the city report's cells

    def add_submission(self, row: Submission) -> None:
        self.session.add(row)

    # Reads

    def _known_records(self, partner_id: int, ids: list[str]) -> dict[str, bytes]:
        if not ids:
            return {}
        rows = self._rows("SELECT partner_record_id, record_hash FROM activity_records WHERE "
                          f"partner_id = :p AND {self._member('partner_record_id', 'ids', 'varchar')}",
                          p=partner_id, ids=self._values(ids))
        return {rid: bytes(h) for rid, h in rows}

    def _citizens(self, pseudonyms: list[str]) -> dict[str, tuple[int, bytes]]:
        if not pseudonyms:
            return {}
        rows = self._rows("SELECT pseudonym, id, account FROM citizens WHERE erased_at IS NULL "
                          f"AND {self._member('pseudonym', 'ps', 'varchar')}",
                          ps=self._values(sorted(set(pseudonyms))))
        return {p: (cid, bytes(account)) for p, cid, account in rows}

    def _lock_citizens(self, citizen_ids: list[int]) -> None:
        """On PostgreSQL, lock each citizen's row to the end of the transaction (or of
        the try, :meth:`race_free`), in the order every writer takes them
        (:mod:`ledger.store.locks`), so two submissions never deadlock: rows are locked as
        the sort returns them."""
        if self.sqlite or not citizen_ids:
            return
        self._rows("SELECT count(*) FROM (SELECT id FROM citizens WHERE id = ANY(CAST(:ids AS "
                   f"integer[])) ORDER BY id % {CITIZEN_LOCK_BUCKETS}, id FOR NO KEY UPDATE) "
                   "AS locked", ids=pg_array(sorted(set(citizen_ids))))

    def _load_totals(self, snapshot: Snapshot, ours: _Ours) -> None:
        """What earlier submissions credited on the days and months this one touches, for
        its citizens and behaviours: exactly those keys, each found by the primary key (a
        record far in time from the rest adds its own day, not the days between)."""
        if not ours:
            return
        days = sorted({(cid, q.behaviour.code, q.day) for cid, _, q in ours})
        months = sorted({(cid, q.behaviour.code, q.month) for cid, _, q in ours})
        snapshot.days = {(c, b, d): g for c, b, d, g in self._keyed("daily_totals", "day", days)}
        snapshot.months = {(c, b, m): g
                           for c, b, m, g in self._keyed("monthly_totals", "month", months)}

    def _keyed(self, table: str, period: str, keys: list[tuple[int, str, int]]
               ) -> list[tuple[Any, ...]]:
        """The grams of each (citizen, behaviour, period) key of ``table`` there is a row for."""
        if self.sqlite:
            return self._rows(
                f"SELECT t.citizen_id, t.behaviour, t.{period}, t.grams FROM json_each(:keys) "
                f"AS k CROSS JOIN {table} AS t ON t.citizen_id = json_extract(k.value, '$[0]') "
                "AND t.behaviour = json_extract(k.value, '$[1]') "
                f"AND t.{period} = json_extract(k.value, '$[2]')", keys=json.dumps(keys))
        return self._rows(
            f"SELECT t.citizen_id, t.behaviour, t.{period}, t.grams FROM unnest(CAST(:c AS "
            f"integer[]), CAST(:b AS varchar[]), CAST(:p AS integer[])) AS k(c, b, p) JOIN "
            f"{table} AS t ON t.citizen_id = k.c AND t.behaviour = k.b AND t.{period} = k.p",
            **pg_columns(("c", "b", "p"), keys))

    def _load_longest(self, snapshot: Snapshot, ours: _Ours) -> None:
        """Which citizens and behaviours of the submission have totals already, and each
        one's longest stored record (how far back its neighbours can start)."""
        pairs = sorted({(cid, q.behaviour.code) for cid, _, q in ours})
        if not pairs:
            return
        if self.sqlite:
            rows = self._rows(
                "SELECT t.citizen_id, t.behaviour, t.longest FROM json_each(:keys) AS k "
                "CROSS JOIN citizen_totals AS t ON t.citizen_id = json_extract(k.value, '$[0]') "
                "AND t.kind = 1 AND t.behaviour = json_extract(k.value, '$[1]')",
                keys=json.dumps(pairs))
        else:
            rows = self._rows(
                "SELECT t.citizen_id, t.behaviour, t.longest FROM unnest(CAST(:c AS integer[]), "
                "CAST(:b AS varchar[])) AS k(c, b) JOIN citizen_totals AS t ON "
                "t.citizen_id = k.c AND t.kind = 1 AND t.behaviour = k.b",
                **pg_columns(("c", "b"), pairs))
        snapshot.longest = {(c, b): n for c, b, n in rows}

    def _load_neighbours(self, snapshot: Snapshot, ours: _Ours) -> None:
        """Earlier records that de-duplication or a per-hour bound must look at: the same
        citizen and behaviour, near in time. Only behaviours with such a rule are read, and
        for each citizen only around the times of their own records (:func:`windows`): how
        many rows this reads depends on the citizens' recent records, not on the ledger's
        history, nor on how far apart in time the submission's records are."""
        wanted = windows(ours, snapshot.longest)
        if not wanted:
            return
        if self.sqlite:
            rows = self._rows(
                "SELECT a.id, a.citizen_id, a.behaviour, a.partner_id, a.occurred_at, "
                "a.ended_at, a.record_hash, a.status, a.duplicate_of FROM json_each(:w) AS w "
                "CROSS JOIN activity_records AS a ON a.citizen_id = json_extract(w.value, '$[0]') "
                "AND a.behaviour = json_extract(w.value, '$[1]') AND a.occurred_at BETWEEN "
                "json_extract(w.value, '$[2]') AND json_extract(w.value, '$[3]') ORDER BY a.id",
                w=json.dumps(wanted))
        else:
            rows = self._rows(
                "SELECT a.id, a.citizen_id, a.behaviour, a.partner_id, a.occurred_at, "
                "a.ended_at, a.record_hash, a.status, a.duplicate_of FROM unnest(CAST(:c AS "
                "integer[]), CAST(:b AS varchar[]), CAST(:lo AS bigint[]), CAST(:hi AS "
                "bigint[])) AS w(c, b, lo, hi) JOIN activity_records AS a ON a.citizen_id = w.c "
                "AND a.behaviour = w.b AND a.occurred_at BETWEEN w.lo AND w.hi ORDER BY a.id",
                **pg_columns(("c", "b", "lo", "hi"), wanted))
        neighbours: dict[CitizenBehaviour, list[Neighbour]] = defaultdict(list)
        loaded: set[int] = set()
        for row_id, citizen, code, pid, began, ended, rhash, status, duplicate_of in rows:
            neighbours[(citizen, code)].append(Neighbour(
                row_id, pid, began, began if ended is None else ended, bytes(rhash),
                status == "duplicate"))
            loaded.add(row_id)
            if duplicate_of in loaded:
                snapshot.matched.setdefault(duplicate_of, set()).add(pid)
        snapshot.neighbours = dict(neighbours)

    # Plain SQL on the session's connection

    def _member(self, column: str, name: str, sql_type: str) -> str:
        """``column`` is one of the list bound as ``name`` (:meth:`_values`)."""
        if self.sqlite:
            return f"{column} IN (SELECT value FROM json_each(:{name}))"
        return f"{column} = ANY(CAST(:{name} AS {sql_type}[]))"

    def _values(self, items: Sequence[Any]) -> Any:
        return json.dumps(list(items)) if self.sqlite else pg_array(items)

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
        """One statement for many rows (tuples in ``columns`` order). On SQLite by the
        driver's executemany: SQLAlchemy's own processes each row's parameters in Python,
        which costs more than SQLite's insert, and these columns (integers, strings, bytes)
        need none. On PostgreSQL executemany runs the statement once per row (about 40-80
        ms for 1,000 rows, 2026-12-05, docs/benchmarks.md): an insert is a binary COPY
        (:func:`~ledger.store.bulk.copy_rows`; 1,000 activity records 10.2 ms over arrays,
        6.9 ms by COPY, 2026-12-05), an update one statement over one array per column
        (:func:`_pg_update`, :func:`~ledger.store.bulk.pg_columns`)."""
        if not self.sqlite:
            if isinstance(statement, Insert):
                copy_rows(self.connection, statement.table, columns, rows)  # type: ignore[arg-type]
                return
            bulk = _compiled_text(_pg_update(statement), self.dialect)
            self.connection.exec_driver_sql(bulk.string, pg_columns(columns, rows))
            return
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

    def _write_tallies(self, tallies: dict[CitizenBehaviour, Tally],
                       stored: dict[CitizenBehaviour, int]) -> None:
        """Add the decision's tallies to the citizens' totals: a row per citizen and
        behaviour, inserted the first time, else added to (and its longest raised)."""
        new = [(cid, KIND_CREDIT, code, *t) for (cid, code), t in tallies.items()
               if (cid, code) not in stored]
        old = [(t[0], t[1], t[2], max(t[3], stored[key]), *key) for key, t in tallies.items()
               if key in stored and (t[0] or t[3] > stored[key])]
        if new:
            self._executemany(_INSERT_TALLIES, _TALLY_COLUMNS, new)
        if old:
            self._executemany(_ADD_TALLIES, ("n", "g", "p", "l", "c", "b"), old)

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


def _raced(exc: BaseException) -> bool:
    """Whether a driver's error (bare, or wrapped by SQLAlchemy) is a lost race: a unique
    violation of :data:`RACED_INDEXES`, or a deadlock."""
    error = getattr(exc, "orig", None) or exc
    state = getattr(error, "sqlstate", None)
    if state == "40P01":  # deadlock_detected
        return True
    diag = getattr(error, "diag", None)
    return state == "23505" and getattr(diag, "constraint_name", None) in RACED_INDEXES


def _pg_update(statement: Update) -> str:
    """PostgreSQL's form of a bulk update (:data:`_PG_UPDATES`): it joins one array per
    column on its keys, which are unique in every list intake writes (each comes from a
    dict)."""
    return _PG_UPDATES[id(statement)]


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
_tallies = _table(CitizenTotal)
_TALLY_COLUMNS = ("citizen_id", "kind", "behaviour", "entries", "grams", "points", "longest")
_INSERT_TALLIES = insert(_tallies).inline()
_ADD_TALLIES = (update(_tallies).where(and_(
    _tallies.c.citizen_id == bindparam("c"), _tallies.c.kind == literal_column(str(KIND_CREDIT)),
    _tallies.c.behaviour == bindparam("b"))).values(
        entries=_tallies.c.entries + bindparam("n"), grams=_tallies.c.grams + bindparam("g"),
        points=_tallies.c.points + bindparam("p"), longest=bindparam("l")))
_TOTALS = {period: (insert(_table(model)).inline(), _totals_update(_table(model), period))
           for model, period in ((DailyTotal, "day"), (MonthlyTotal, "month"))}
# The updates' PostgreSQL forms (see _pg_update), their parameters named as above.
_PG_UPDATES = {
    id(_ADD_POINTS): "UPDATE balances AS t SET points = t.points + v.add FROM unnest("
                     "CAST(:add AS bigint[]), CAST(:cid AS integer[])) AS v(add, cid) "
                     "WHERE t.citizen_id = v.cid",
    id(_ADD_TALLIES): "UPDATE citizen_totals AS t SET entries = t.entries + v.n, grams = "
                      "t.grams + v.g, points = t.points + v.p, longest = v.l FROM unnest("
                      "CAST(:n AS bigint[]), CAST(:g AS bigint[]), CAST(:p AS bigint[]), "
                      "CAST(:l AS bigint[]), CAST(:c AS integer[]), CAST(:b AS varchar[])) "
                      f"AS v(n, g, p, l, c, b) WHERE t.citizen_id = v.c AND t.kind = {KIND_CREDIT} "
                      "AND t.behaviour = v.b",
    **{id(change): f"UPDATE {_table(model).name} AS t SET grams = v.g FROM unnest("
                   "CAST(:g AS bigint[]), CAST(:c AS integer[]), CAST(:b AS varchar[]), "
                   f"CAST(:p AS integer[])) AS v(g, c, b, p) WHERE t.citizen_id = v.c AND "
                   f"t.behaviour = v.b AND t.{period} = v.p"
       for model, period in ((DailyTotal, "day"), (MonthlyTotal, "month"))
       for change in (_TOTALS[period][1],)},
}
