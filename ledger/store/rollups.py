"""The public city report's rollups, kept as credits are written (#24), so a report reads
a few rows per day of its window, however long the ledger's history.

A credit counts in the city's (local day, behaviour) cell when its record was received
within :data:`SETTLE` of the day's end (a late record never changes a published figure,
see :mod:`ledger.reports`). Whether it does is known when it is written, so the cells
are added to then, in the intake's transaction:

``city_cells``
    per day and behaviour: entries, grams and distinct citizens;
``city_presence``
    which citizens a cell holds, as (scope, citizen, day) rows, scope a behaviour or
    :data:`ANY` (any behaviour): a cell's citizens are counted once each, and the few
    citizens of a withheld cell can be listed;
``city_gaps``
    per scope and day, how many of the day's citizens were last present ``gap`` days
    before (:data:`NO_PREVIOUS` for a first day). A citizen is in a window ``[a, b]``
    exactly once with ``gap > day - a`` (at their first day in it), so the distinct
    citizens of any window are a sum over its days' gap rows: a handful per day, not one
    per citizen-day.

Two submissions for one citizen never interleave (the intake's citizen locks), so a
citizen's presence rows are read and written without a race. Cell and gap rows are
counts added to: on PostgreSQL each database session adds to its own ``part`` of a key
(its backend pid), so concurrent intakes for one day and behaviour, which is most live
traffic, never wait on one hot row until the other commits (they did, #25); readers sum
the parts, and :func:`fold` gathers a settled day's parts into part 0, so a report
reads about one row per cell. SQLite has one writer and writes part 0 only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text

from ledger.leaf import KIND_CREDIT, LEAF_ENTRY_ID
from ledger.methodology import local_day_offset
from ledger.store.bulk import pg_array, pg_columns
from ledger.store.database import driver_rows

LOCAL_SECONDS = int(local_day_offset().total_seconds())
SETTLE = timedelta(days=2)  # a credit counts in the city's day if received this soon after it
ANY = "*"  # the scope of every behaviour together
NO_PREVIOUS = 1 << 30  # the gap of a citizen's first day in a scope: more than any window

#: (citizen id, behaviour, local day, grams) of one credit that counts in the city
CityCredit = tuple[int, str, int, int]


def city_day(occurred_at: int) -> int:
    """The local day (days since the epoch) a time falls on."""
    return (occurred_at + LOCAL_SECONDS) // 86400


def counts_in_city(occurred_at: int, received_at: int) -> bool:
    """Whether a credit received at ``received_at`` is in its day's city cell."""
    cut_off = (city_day(occurred_at) + 1) * 86400 - LOCAL_SECONDS + int(SETTLE.total_seconds())
    return received_at < cut_off


def add_decision(connection: Connection, decision: Any) -> None:
    """Add an intake decision's credits (:class:`ledger.intake.rules.Decision`) to the
    city's rollups, in the intake's transaction."""
    if not decision.credits:
        return
    received = {row[_RECORD_ENTRY]: row[_RECORD_RECEIVED] for row in decision.records
                if row[_RECORD_ENTRY] is not None}
    add_credits(connection, [
        (c[1], c[4], city_day(c[9]), c[6]) for c in decision.credits
        if c[3] == KIND_CREDIT and counts_in_city(c[9], received[c[0]])])


def add_credits(connection: Connection, credits: Sequence[CityCredit]) -> None:
    """Add credits that count in the city to its cells, presence and gaps."""
    if not credits:
        return
    sqlite = connection.dialect.name == "sqlite"
    cells: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for _, behaviour, day, grams in credits:
        cell = cells[(day, behaviour)]
        cell[0] += 1
        cell[1] += grams
    keys = sorted({(scope, citizen, day) for citizen, behaviour, day, _ in credits
                   for scope in (behaviour, ANY)})
    # One statement adds the rows not there yet and says which they were (a row already
    # present is skipped, not returned): the gaps are worked out from them afterwards.
    new = sorted((str(s), int(c), int(d)) for s, c, d in _join_keys(
        connection, sqlite, "INSERT INTO city_presence (scope, citizen_id, day) SELECT k.s, k.c, "
        "k.d FROM {keys} WHERE true ON CONFLICT DO NOTHING RETURNING scope, citizen_id, day",
        ("s", "c", "d"), keys))
    if not new:
        _upsert_cells(connection, cells)
        return
    for scope, _, day in new:
        if scope != ANY:
            cells[(day, scope)][2] += 1
    gaps = _gap_changes(connection, sqlite, new)
    _upsert_cells(connection, cells)
    if gaps:
        connection.execute(_statement(connection, _ADD_GAP), [{"s": s, "d": d, "g": g, "n": n}
                                      for (s, d, g), n in sorted(gaps.items())])


def _upsert_cells(connection: Connection, cells: dict[tuple[int, str], list[int]]) -> None:
    connection.execute(_statement(connection, _ADD_CELL),
                       [{"d": d, "b": b, "n": n, "g": g, "c": c}
                        for (d, b), (n, g, c) in sorted(cells.items())])


def _statement(connection: Connection, sql: str) -> Any:
    """``sql`` with its ``{part}``: this session's own on PostgreSQL, 0 on SQLite."""
    return text(sql.format(part="0" if connection.dialect.name == "sqlite"
                           else "pg_backend_pid()"))


def _gap_changes(connection: Connection, sqlite: bool,
                 new: list[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
    """What the ``new`` presence rows (just added) change in the gap counts: each new day
    gets its gap, and the citizen's next day present already gets a shorter one. The days
    before and after a citizen's new ones are never new themselves, and new days found
    between them are left out, so this reads the days as they were."""
    days: dict[tuple[str, int], list[int]] = defaultdict(list)
    for scope, citizen, day in new:
        days[(scope, citizen)].append(day)
    spans = sorted((s, c, min(d), max(d)) for (s, c), d in days.items())
    around = {(s, c): (prev, nxt) for s, c, prev, nxt in _join_keys(
        connection, sqlite,
        "SELECT k.s, k.c, (SELECT max(p.day) FROM city_presence AS p WHERE p.scope = k.s AND "
        "p.citizen_id = k.c AND p.day < k.lo), (SELECT min(p.day) FROM city_presence AS p "
        "WHERE p.scope = k.s AND p.citizen_id = k.c AND p.day > k.hi) FROM {keys}",
        ("s", "c", "lo", "hi"), spans)}
    between: dict[tuple[str, int], list[int]] = defaultdict(list)
    fresh = set(new)
    wide = [span for span in spans if span[2] < span[3]]
    if wide:
        for s, c, day in _join_keys(
                connection, sqlite, "SELECT p.scope, p.citizen_id, p.day FROM {keys} JOIN "
                "city_presence AS p ON p.scope = k.s AND p.citizen_id = k.c AND p.day > k.lo "
                "AND p.day < k.hi", ("s", "c", "lo", "hi"), wide):
            if (s, c, int(day)) not in fresh:
                between[(s, c)].append(day)
    changes: dict[tuple[str, int, int], int] = defaultdict(int)
    for key, added in days.items():
        prev, nxt = around.get(key, (None, None))
        old = sorted(between.get(key, []) + ([] if nxt is None else [nxt]))
        for day, gap in _gaps(prev, old):
            changes[(key[0], day, gap)] -= 1
        for day, gap in _gaps(prev, sorted(old + added)):
            changes[(key[0], day, gap)] += 1
    return {k: n for k, n in changes.items() if n}


def _gaps(prev: int | None, days: list[int]) -> Iterable[tuple[int, int]]:
    for day in days:
        yield day, NO_PREVIOUS if prev is None else day - prev
        prev = day


def _join_keys(connection: Connection, sqlite: bool, query: str, names: Sequence[str],
               keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``query`` with ``{keys}`` a table ``k`` of ``keys``' tuples, columns ``names``
    (one bound list: SQLite's ``json_each``, PostgreSQL's ``unnest``)."""
    if not keys:
        return []
    if sqlite:
        columns = ", ".join(f"json_extract(value, '$[{i}]') AS {n}" for i, n in enumerate(names))
        table = f"(SELECT {columns} FROM json_each(:keys)) AS k"
        return driver_rows(connection, text(query.format(keys=table)).bindparams(
            keys=json.dumps(list(keys))))
    types = [("varchar" if isinstance(keys[0][i], str) else "bigint") for i in range(len(names))]
    table = ("unnest(" + ", ".join(f"CAST(:k{i} AS {t}[])" for i, t in enumerate(types))
             + f") AS k({', '.join(names)})")
    params = pg_columns([f"k{i}" for i in range(len(names))], keys)
    return driver_rows(connection, text(query.format(keys=table)).bindparams(**params))


_ADD_CELL = (
    "INSERT INTO city_cells (day, behaviour, part, entries, grams, citizens) VALUES (:d, :b, "
    "{part}, :n, :g, :c) ON CONFLICT (day, behaviour, part) DO UPDATE SET entries = "
    "city_cells.entries + excluded.entries, grams = city_cells.grams + excluded.grams, "
    "citizens = city_cells.citizens + excluded.citizens")
_ADD_GAP = (
    "INSERT INTO city_gaps (scope, day, gap, part, citizens) VALUES (:s, :d, :g, {part}, :n) "
    "ON CONFLICT (scope, day, gap, part) DO UPDATE SET citizens = city_gaps.citizens + "
    "excluded.citizens")


def fold(connection: Connection, now: int) -> int:
    """Gather the parts of every settled day (one no credit can be added to any more:
    its cut-off a day past) into part 0, in one short transaction of the caller's;
    the number of part rows folded. Sums are kept whatever runs beside it: a part is
    deleted and added to part 0 in one statement, and a settled day gets no new parts.
    A no-op on SQLite, which never writes other parts."""
    if connection.dialect.name == "sqlite":
        return 0
    settled = city_day(now - int(SETTLE.total_seconds())) - 2
    folded = 0
    for table, keys, sums in (("city_cells", "day, behaviour", ("entries", "grams", "citizens")),
                              ("city_gaps", "scope, day, gap", ("citizens",))):
        added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums)
        folded += connection.execute(text(
            f"WITH gone AS (DELETE FROM {table} WHERE part <> 0 AND day <= :settled "
            f"RETURNING {keys}, {', '.join(sums)}) INSERT INTO {table} ({keys}, part, "
            f"{', '.join(sums)}) SELECT {keys}, 0, {', '.join(f'sum({c})' for c in sums)} "
            f"FROM gone GROUP BY {keys} ON CONFLICT ({keys}, part) DO UPDATE SET {added}"),
            {"settled": settled}).rowcount or 0
    return folded

_RECORD_ENTRY, _RECORD_RECEIVED = 11, 13  # entry_id, received_at in RECORD_COLUMNS


# Reads, for the report


def cells(connection: Connection, first: int, last: int) -> list[tuple[int, str, int, int, int]]:
    """(day, behaviour, entries, grams, citizens) of the cells of days ``first``–``last``,
    in (day, behaviour) order, behaviours compared by code point (as Python and SQLite
    compare them, whatever a PostgreSQL database's collation): a year by day is thousands.

    Part 0 is read in its key's order, and the parts not folded yet (the last days, or
    all of them where no sealer folds) are added to it from their own index. Summing every
    cell in one ``GROUP BY`` took PostgreSQL 10.9 ms for a year of 7,602 folded cells, a
    hash and a sort; the read of part 0 took 1.8 ms (2026-12-08, docs/benchmarks.md)."""
    window = {"a": first, "b": last}
    rows = driver_rows(connection, text(
        "SELECT day, behaviour, entries, grams, citizens FROM city_cells WHERE day BETWEEN :a "
        "AND :b AND part = 0 ORDER BY day, behaviour").bindparams(**window))
    if connection.dialect.name == "sqlite":  # SQLite writes part 0 only, and its order is ours
        return rows
    unfolded = driver_rows(connection, text(
        "SELECT day, behaviour, entries, grams, citizens FROM city_cells WHERE part <> 0 AND "
        "day BETWEEN :a AND :b").bindparams(**window))
    if unfolded:
        sums = {(d, b): [n, g, c] for d, b, n, g, c in rows}
        for d, b, n, g, c in unfolded:
            cell = sums.setdefault((d, b), [0, 0, 0])
            cell[0] += n
            cell[1] += g
            cell[2] += c
        rows = [(d, b, n, g, c) for (d, b), (n, g, c) in sums.items()]
    rows.sort()  # in order already but for a collation's or the parts': a pass over them
    return rows


def distinct_citizens(connection: Connection, windows: Sequence[tuple[str, int, int]]
                      ) -> dict[tuple[str, int, int], int]:
    """The distinct citizens present in each (scope, first day, last day) window."""
    sqlite = connection.dialect.name == "sqlite"
    found = dict.fromkeys(windows, 0)
    # One seek a day of each window, to its rows with gap > day - a: a day holds a row for
    # each distinct gap of its citizens (about 100 a day for a city of 500,000), and a
    # window needs the few of them longer than its days so far (349 of 38,040 for a year
    # at 10 M entries: 0.6 ms instead of 4.6 ms in SQLite alone, 2026-12-06).
    for s, a, b, n in _join_keys(
            connection, sqlite, "WITH RECURSIVE d(s, a, b, day) AS (SELECT k.s, k.a, k.b, k.a "
            "FROM {keys} UNION ALL SELECT s, a, b, day + 1 FROM d WHERE day < b) "
            "SELECT d.s, d.a, d.b, sum(g.citizens) FROM d JOIN city_gaps AS g ON "
            "g.scope = d.s AND g.day = d.day AND g.gap > d.day - d.a GROUP BY d.s, d.a, d.b",
            ("s", "a", "b"), sorted(set(windows))):
        found[(s, int(a), int(b))] = int(n or 0)
    return found


def citizens_in(connection: Connection, windows: Sequence[tuple[str, int, int]]
                ) -> list[tuple[str, int, int]]:
    """(scope, day, citizen) of every citizen present in the (scope, first, last) windows:
    for the few citizens of withheld cells."""
    sqlite = connection.dialect.name == "sqlite"
    return [(s, int(d), int(c)) for s, d, c in _join_keys(
        connection, sqlite, "SELECT p.scope, p.day, p.citizen_id FROM {keys} "
        + _present(sqlite, "p.scope = k.s AND p.day BETWEEN k.a AND k.b"),
        ("s", "a", "b"), sorted(set(windows)))]


def days_present(connection: Connection, scopes: Sequence[str], citizens: Sequence[int],
                 first: int, last: int) -> list[tuple[str, int, int]]:
    """(scope, citizen, day) of these citizens' days in these scopes from ``first`` to
    ``last``: a probe of the presence key for each scope and citizen."""
    if not scopes or not citizens:
        return []
    scopes, citizens = sorted(set(scopes)), sorted(set(citizens))
    found = "SELECT p.scope, p.citizen_id, p.day FROM {keys} "
    if connection.dialect.name == "sqlite":  # each pair a key: two lists, SQLite scanned them
        return [(s, int(c), int(d)) for s, c, d in _join_keys(
            connection, True, found + _present(True, "p.scope = k.s AND p.citizen_id = k.c AND "
                                               "p.day BETWEEN k.a AND k.b"),
            ("s", "c", "a", "b"), [(s, c, first, last) for s in scopes for c in citizens])]
    # two arrays, not their product: 21 scopes by 2,088 citizens took 43 ms to unnest
    keys = ("unnest(CAST(:s AS varchar[])) AS ks(s) CROSS JOIN unnest(CAST(:c AS bigint[])) "
            "AS k(c)")
    query = found.format(keys=keys) + _present(
        False, "p.scope = ks.s AND p.citizen_id = k.c AND p.day BETWEEN :a AND :b")
    return [(s, int(c), int(d)) for s, c, d in driver_rows(connection, text(query).bindparams(
        a=first, b=last, s=pg_array(scopes), c=pg_array(citizens)))]


def _present(sqlite: bool, condition: str) -> str:
    """The join of a table of keys to the presence rows meeting ``condition``, as one index
    probe per key. PostgreSQL's planner cannot tell how few rows a key's day range holds
    and merge-joined the whole table instead: the citizens of a sparse year's 1,574
    withheld cells took 237 ms so, 7 ms probed (2026-12-08, docs/benchmarks.md); the
    subquery's ``OFFSET 0`` keeps it from being flattened back into that join."""
    if sqlite:
        return f"JOIN city_presence AS p ON {condition}"
    return f"CROSS JOIN LATERAL (SELECT * FROM city_presence AS p WHERE {condition} OFFSET 0) AS p"


def rebuild_sql(*, parts: bool = True) -> list[str]:
    """Statements that fill the rollups from the ledger as it stands (the migration's
    backfill, and a check that the kept rollups equal a rebuild); ``parts=False`` for the
    tables as migration 0006 made them, before they had parts."""
    day = f"((e.occurred_at + {LOCAL_SECONDS}) / 86400)"
    part, zero = ("part, ", "0, ") if parts else ("", "")
    counted = (f"FROM ledger_entries AS e JOIN activity_records AS r ON r.citizen_id = "
               "e.citizen_id AND r.behaviour = e.behaviour AND r.occurred_at = e.occurred_at AND "
               f"r.entry_id = substr(e.leaf, 1, {LEAF_ENTRY_ID.stop}) WHERE e.kind = {KIND_CREDIT} "
               f"AND r.received_at < ({day} + 1) * 86400 - {LOCAL_SECONDS} + {int(SETTLE.total_seconds())}")
    return [
        f"INSERT INTO city_cells (day, behaviour, {part}entries, grams, citizens) "
        f"SELECT {day}, e.behaviour, {zero}count(*), sum(e.reduction_grams), "
        f"count(DISTINCT e.citizen_id) {counted} GROUP BY {day}, e.behaviour",
        "INSERT INTO city_presence (scope, citizen_id, day) "
        f"SELECT DISTINCT e.behaviour, e.citizen_id, {day} {counted}",
        "INSERT INTO city_presence (scope, citizen_id, day) "
        f"SELECT DISTINCT '{ANY}', e.citizen_id, {day} {counted}",
        f"INSERT INTO city_gaps (scope, day, gap, {part}citizens) SELECT scope, day, "
        f"COALESCE(day - before, {NO_PREVIOUS}) AS gap, {zero}count(*) FROM (SELECT scope, "
        "day, "
        "lag(day) OVER (PARTITION BY scope, citizen_id ORDER BY day) AS before "
        "FROM city_presence) AS p GROUP BY scope, day, COALESCE(day - before, "
        f"{NO_PREVIOUS})",
    ]
