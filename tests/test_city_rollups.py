"""The city report from its rollups (#24): the rollups kept as credits are written equal
a rebuild from the ledger, the report equals the one computed from the entries (the
previous implementation, kept here as the oracle), and it reads the rollups by their keys,
never the entries or the records, so its cost does not grow with the ledger."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import and_, event, func, select, text

from ledger.intake.service import submit_records
from ledger.leaf import KIND_CREDIT
from ledger.reports import (
    EPOCH,
    LOCAL,
    MIN_CELL_CITIZENS,
    Window,
    _month_end,
    _unix,
    _whole_months,
    city_totals,
    closed_through,
)
from ledger.store import rollups
from ledger.store.models import ActivityRecord, LedgerEntry
from tests.conftest import CST, a_record

FIRST = date(2025, 3, 1)
DAYS = 45  # March and half of April
BEHAVIOURS = {"CYCLING": ("greenbike", "bike_share"), "METRO": ("citymetro", "transit"),
              "BUS": ("citymetro", "transit")}
ROLLUP_TABLES = {"city_cells": ("day, behaviour", "sum(entries), sum(grams), sum(citizens)"),
                 "city_presence": ("scope, citizen_id, day", ""),
                 "city_gaps": ("scope, day, gap", "sum(citizens)")}
LATER = int(datetime(2026, 1, 1, tzinfo=CST).timestamp())  # every day of the ledger closed


def _record(pseudonym: str, behaviour: str, when: datetime, quantity: int) -> dict[str, Any]:
    hours_ago = (datetime.now(CST) - when).total_seconds() / 3600
    return a_record(pseudonym, behaviour=behaviour, quantity=quantity, hours_ago=hours_ago)


@pytest.fixture
def city(db, make_partner, make_citizen):  # type: ignore[no-untyped-def]
    """A small city sent out of order: a dozen citizens over 45 days, three behaviours,
    submissions in random order, some sent late (past the settling time, not counted)."""
    rng = random.Random(24)
    citizens = [make_citizen() for _ in range(12)]
    partners = {code: make_partner(code, kind) for code, kind in set(BEHAVIOURS.values())}
    sends = []
    for d in range(DAYS):
        for behaviour in BEHAVIOURS:
            who = rng.sample(citizens, rng.choice([0, 1, 2, 3, 4, 6, 9]))
            for k, c in enumerate(who):
                when = datetime.combine(FIRST + timedelta(days=d), time(7 + k, rng.randrange(60)),
                                        CST)
                delay = rng.choice([600, 3600, 86400, 3 * 86400])  # the last one: too late
                sends.append((behaviour, c, when, int(when.timestamp()) + delay))
    rng.shuffle(sends)
    for i in range(0, len(sends), 7):
        group = sends[i:i + 7]
        now = max(s[3] for s in group)
        for behaviour, c, when, _ in group:
            partner = partners[BEHAVIOURS[behaviour][0]]
            with db.session(write_lock=True) as s:
                submit_records(s, partner=s.merge(partner), now=now,
                               records=[_record(c.pseudonym, behaviour, when, 1500 + rng.randrange(3000))])
    return db


def _tables(session) -> dict[str, list[tuple[Any, ...]]]:  # type: ignore[no-untyped-def]
    """Each rollup by its key, the parts of a key summed (what readers see)."""
    return {t: [tuple(r) for r in session.execute(text(
        f"SELECT {key}{', ' + sums if sums else ''} FROM {t} GROUP BY {key} "
        f"{'HAVING sum(citizens) <> 0' if t == 'city_gaps' else ''} ORDER BY {key}"))]
        for t, (key, sums) in ROLLUP_TABLES.items()}


def test_the_rollups_kept_at_ingest_equal_a_rebuild_from_the_ledger(city) -> None:
    with city.session(write_lock=True) as s:
        kept = _tables(s)
        assert kept["city_cells"] and kept["city_gaps"]
        for table in ROLLUP_TABLES:
            s.execute(text(f"DELETE FROM {table}"))
        for statement in rollups.rebuild_sql():
            s.execute(text(statement))
        assert _tables(s) == kept
        s.rollback()


def _oracle(session, window: Window, period: str, now: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The report as it was computed before the rollups: from every entry of the window."""
    last_closed = closed_through(now)
    if period == "day":
        first, last = window.first, min(window.last, last_closed)
    else:
        first = window.first.replace(day=1)
        last = min(_month_end(window.last), _whole_months(last_closed))
    day = (LedgerEntry.occurred_at + int(LOCAL.total_seconds())) // 86400
    cut_off = (day + 1) * 86400 - int(LOCAL.total_seconds()) + int(rollups.SETTLE.total_seconds())
    rows = session.execute(
        select(day, LedgerEntry.behaviour, LedgerEntry.citizen_id, func.count(),
               func.sum(LedgerEntry.reduction_grams))
        .join(ActivityRecord, and_(ActivityRecord.citizen_id == LedgerEntry.citizen_id,
                                   ActivityRecord.occurred_at == LedgerEntry.occurred_at,
                                   ActivityRecord.entry_id == LedgerEntry.entry_id))
        .where(LedgerEntry.kind == KIND_CREDIT, LedgerEntry.occurred_at >= _unix(first),
               LedgerEntry.occurred_at < _unix(last + timedelta(days=1)),
               ActivityRecord.received_at < cut_off)
        .group_by(day, LedgerEntry.behaviour, LedgerEntry.citizen_id)).all() if first <= last else []
    days: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, 0, set()])
    for d, b, citizen, n, g in rows:
        cell = days[(EPOCH + timedelta(days=int(d)), b)]
        cell[0] += n
        cell[1] += int(g)
        cell[2].add(citizen)
    if period == "day":
        cells = {(d.isoformat(), b): (c, len(c[2]) >= MIN_CELL_CITIZENS)
                 for (d, b), c in days.items()}
    else:
        months: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0, set()])
        hidden: dict[tuple[str, str], set[int]] = defaultdict(set)
        small: set[tuple[str, str]] = set()
        for (d, b), c in days.items():
            m = months[(d.strftime("%Y-%m"), b)]
            m[0], m[1], m[2] = m[0] + c[0], m[1] + c[1], m[2] | c[2]
            if len(c[2]) < MIN_CELL_CITIZENS:
                small.add((d.strftime("%Y-%m"), b))
                hidden[(d.strftime("%Y-%m"), b)] |= c[2]
        cells = {k: (m, len(m[2]) >= MIN_CELL_CITIZENS and (
            k not in small or len(hidden[k]) >= MIN_CELL_CITIZENS)) for k, m in months.items()}
    shown = [c for c, ok in cells.values() if ok]
    return {"rows": [(p, b, len(c[2]) if ok else None, c[0] if ok else None,
                      c[1] if ok else None) for (p, b), (c, ok) in sorted(cells.items())],
            "reductionGrams": sum(c[1] for c in shown),
            "citizens": len(set().union(*(c[2] for c in shown)))}


def test_the_report_from_the_rollups_equals_the_report_from_the_entries(city) -> None:
    rng = random.Random(7)
    windows = [(FIRST, FIRST + timedelta(days=DAYS)), (FIRST, FIRST)]
    windows += [tuple(sorted(FIRST + timedelta(days=rng.randrange(DAYS + 3)) for _ in range(2)))
                for _ in range(25)]
    nows = [LATER, int(datetime.combine(FIRST + timedelta(days=20), time(9), CST).timestamp())]
    checked = 0
    with city.session() as s:
        for (first, last) in windows:
            for period in ("day", "month"):
                for now in nows:
                    got = city_totals(s, Window.of(first, last), period=period, now=now)
                    want = _oracle(s, Window.of(first, last), period, now)
                    rows = [(r["period"], r["behaviour"], r["citizens"], r["entries"],
                             r["reductionGrams"]) for r in got["rows"]]
                    assert (rows, got["reductionGrams"], got["citizens"]) == (
                        want["rows"], want["reductionGrams"], want["citizens"]), (first, last, period)
                    checked += bool(want["rows"])
    assert checked > 20


def test_the_report_reads_the_rollups_by_their_keys_never_the_ledger(city) -> None:
    statements: list[tuple[str, Any]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(city.engine, "before_cursor_execute", seen)
    try:
        with city.session() as s:
            for period in ("day", "month"):
                city_totals(s, Window.of(FIRST, FIRST + timedelta(days=365)), period=period,
                            now=LATER)
    finally:
        event.remove(city.engine, "before_cursor_execute", seen)
    assert statements
    assert not [q for q, _ in statements if "ledger_entries" in q or "activity_records" in q]
    if city.engine.dialect.name != "sqlite":
        return
    plans = []
    with city.session() as s:  # SQLite's plans: each rollup table searched by its key
        for query, parameters in statements:
            if "city_" in query:
                plan = " / ".join(r[-1] for r in s.connection().exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + query, parameters))
                assert "SCAN city_" not in plan and "SCAN g" not in plan, (query, plan)
                plans.append((query, plan))
    # distinct citizens: one seek a day to the gaps longer than the window's days so far
    assert any("SEARCH g USING PRIMARY KEY (scope=? AND day=? AND gap>?)" in p
               for _, p in plans), plans
    # a withheld cell's citizens' days: one seek a citizen and scope (a plan that searched
    # a scope's days and scanned the citizens for each took 1.5 s for a sparse year)
    days = [p for q, p in plans if "p.citizen_id = k.c" in q]
    assert days and all("SEARCH p USING PRIMARY KEY (scope=? AND citizen_id=? AND day>? AND "
                        "day<?)" in p for p in days), plans


def test_folding_keeps_every_sum_and_leaves_one_part_per_settled_cell(city) -> None:
    """On PostgreSQL each session adds to its own part of a cell; folding settled days
    gathers them into part 0 without changing any sum or any report."""
    def reports(s) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        return [city_totals(s, Window.of(FIRST, FIRST + timedelta(days=DAYS)), period=p,
                            now=LATER) for p in ("day", "month")]

    with city.session() as s:
        before, report = _tables(s), reports(s)
        parts = s.scalar(text("SELECT count(*) FROM city_cells WHERE part <> 0"))
    if city.engine.dialect.name == "sqlite":
        assert parts == 0  # one writer: part 0 only, nothing to fold
    else:
        assert parts > 0
    with city.session() as s:
        rollups.fold(s.connection(), LATER)
    with city.session() as s:
        assert _tables(s) == before
        assert s.scalar(text("SELECT count(*) FROM city_cells WHERE part <> 0")) == 0
        assert s.scalar(text("SELECT count(*) FROM city_gaps WHERE part <> 0")) == 0
        assert reports(s) == report


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_open_intakes_for_one_cell_do_not_wait_on_each_other(db, make_partner,
                                                                 make_citizen) -> None:
    """The rollups' hot row (#25): a submission for a day and behaviour whose transaction
    is still open must not hold up another one for the same cell."""
    first, second = make_partner("greenbike"), make_partner("bluebike")
    a, b = make_citizen(), make_citizen()
    with db.session() as open_one:
        submit_records(open_one, partner=open_one.merge(first),
                       records=[a_record(a.pseudonym, record_id="open")])
        with db.session() as other:  # would wait for open_one's commit on a shared row
            other.execute(text("SET LOCAL lock_timeout = '5s'"))
            outcome = submit_records(other, partner=other.merge(second),
                                     records=[a_record(b.pseudonym, record_id="other")])
        assert [o.status for o in outcome.outcomes] == ["accepted"]
