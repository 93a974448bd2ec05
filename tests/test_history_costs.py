"""Costs that must follow the request, not the ledger's history (#24 items 1 and 5): what
intake reads to decide a submission, and what a citizen's pages read. Each test would fail
if the growth came back: the rows read are counted as history grows, and the query plans
are asserted (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with every way but an
index priced out, so a table with no index to match shows as a scan)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, func, select

from ledger import accounts, views
from ledger.intake.service import submit_records
from ledger.leaf import KIND_CREDIT, KIND_DEBIT
from ledger.redemption import redeem
from ledger.store import intake as sql
from ledger.store.database import Database
from ledger.store.models import CitizenTotal, LedgerEntry, Reward
from ledger.store.schema import alembic_config

HOUR, DAY = 3600, 86400


def ride(citizen: str, record_id: str, start: int, metres: int = 1500) -> dict[str, Any]:
    return {"record_id": record_id, "citizen": citizen, "behaviour": "CYCLING",
            "quantity": metres, "occurred_at": start, "ended_at": start + metres // 4}


def stay(citizen: str, record_id: str, start: int, nights: int) -> dict[str, Any]:
    return {"record_id": record_id, "citizen": citizen, "behaviour": "HOTEL_NO_DISPOSABLES",
            "quantity": nights, "occurred_at": start, "ended_at": start + nights * DAY}


def submit(db: Database, partner: Any, records: list[dict[str, Any]], now: int) -> Any:
    with db.session(write_lock=True) as s:
        return submit_records(s, partner=s.merge(partner), records=records, now=now)


@contextmanager
def snapshot_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict, int]]]:
    """Every query intake's store runs (its text, parameters and how many rows came back)."""
    seen: list[tuple[str, dict, int]] = []
    real = sql.IntakeStore._rows

    def counting(self: sql.IntakeStore, query: str, **params: Any) -> list[tuple[Any, ...]]:
        rows = real(self, query, **params)
        seen.append((query, params, len(rows)))
        return rows

    with monkeypatch.context() as m:
        m.setattr(sql.IntakeStore, "_rows", counting)
        yield seen


def rows_read(seen: list[tuple[str, dict, int]], table: str) -> int:
    return sum(n for query, _, n in seen if f"FROM {table}" in query or f"JOIN {table}" in query)


# -- 1. de-duplication reads follow each citizen's own records ------------------------------

def test_rows_read_for_a_submission_do_not_grow_with_history(db, make_partner, make_citizen,
                                                             monkeypatch) -> None:
    """Citizens riding five times a day: a live submission reads as many stored records for
    citizens with 40 days of history as for citizens with 3, and a record far in time from
    the rest adds only its own neighbours (one window per citizen, not one for all)."""
    partner = make_partner()
    old = [make_citizen().pseudonym for _ in range(4)]
    new = [make_citizen().pseudonym for _ in range(4)]
    now = 1_790_000_000
    for day in range(40, 0, -1):  # oldest first, as live traffic comes
        records = [ride(c, f"{c}-{day}-{k}", now - day * DAY + k * 4 * HOUR)
                   for c in old + (new if day <= 3 else []) for k in range(5)]
        submit(db, partner, records, now - day * DAY + DAY)

    def live(citizens: list[str], tag: str, extra: list[dict[str, Any]] = ()) -> int:
        with snapshot_reads(monkeypatch) as seen:
            outcome = submit(db, partner, [ride(c, f"{c}-{tag}", now - 7 * HOUR - 1800 + len(tag))
                                           for c in citizens]
                             + list(extra), now)
        assert {o.status for o in outcome.outcomes} == {"accepted"}
        return rows_read(seen, "activity_records")

    with_history, without = live(old, "live"), live(new, "live")
    assert with_history == without > 0
    far = live(old, "live-2", [ride(old[0], "far", now - 30 * DAY + 2 * HOUR)])
    assert far <= with_history + 2 * len(old) + 3  # the far record's own few neighbours


def test_a_long_stay_is_deduplicated_across_partners_days_after_it_began(
        db, make_partner, make_citizen) -> None:
    """A 20-night hotel stay reported by one partner; weeks of other records; another
    partner's one night near the end of the stay is the same behaviour, found because the
    look-back is the citizen's longest record, not the rides' minutes."""
    hotel = make_partner("hotelco", "hotel")
    travel = make_partner("tripco", "travel_platform")
    citizen = make_citizen().pseudonym
    now = 1_790_000_000
    start = now - 25 * DAY
    first = submit(db, hotel, [stay(citizen, "long", start, 20)], now - 4 * DAY)
    assert first.outcomes[0].status == "accepted"
    for k in range(1, 4):  # the same partner's later stays: not duplicates of its own
        submit(db, hotel, [stay(citizen, f"later-{k}", now - 4 * DAY + k * 3 * HOUR, 1)],
               now - 3 * DAY)
    night = submit(db, travel, [stay(citizen, "night", start + 19 * DAY, 1)], now)
    [outcome] = night.outcomes
    assert outcome.status == "duplicate" and outcome.duplicate_of is not None
    other = make_citizen().pseudonym  # another citizen's night at the same time is theirs
    assert submit(db, travel, [stay(other, "n2", start + 19 * DAY, 1)],
                  now).outcomes[0].status == "accepted"
    with db.session() as s:
        cid = accounts.get_citizen(s, citizen).id
        longest = s.scalar(select(CitizenTotal.longest).where(
            CitizenTotal.citizen_id == cid, CitizenTotal.behaviour == "HOTEL_NO_DISPOSABLES"))
    assert longest == 20 * DAY


def test_the_snapshot_reads_are_index_searches(db, make_partner, make_citizen,
                                               monkeypatch) -> None:
    partner = make_partner()
    citizens = [make_citizen().pseudonym for _ in range(3)]
    now = 1_790_000_000
    submit(db, partner, [ride(c, f"{c}-0", now - DAY) for c in citizens], now)
    with snapshot_reads(monkeypatch) as seen:
        submit(db, partner, [ride(c, f"{c}-1", now - HOUR) for c in citizens], now)
    checked = 0
    with db.session() as s:
        for query, params, _ in seen:
            if "pg_advisory" in query:
                continue
            for table in ("activity_records", "daily_totals", "monthly_totals",
                          "citizen_totals", "citizens"):
                if f" {table}" in query:
                    assert_uses_index(s, *driver_statement(s, query, params), table)
                    checked += 1
    assert checked >= 5


# -- 5. a citizen's pages -------------------------------------------------------------------

@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_citizens_page_reads_its_totals_not_its_entries(db, make_partner,
                                                          make_citizen) -> None:
    """/v1/me's view: the same answer as summing the entries, read from the totals (no
    query touches ledger_entries), points = credits − spent."""
    partner = make_partner()
    citizen = make_citizen()
    now = 1_790_000_000
    for day in range(5, 0, -1):
        submit(db, partner, [ride(citizen.pseudonym, f"r-{day}-{k}", now - day * DAY + k * HOUR,
                                  1000 + 900 * k) for k in range(3)], now - day * DAY + DAY)
    with db.session(write_lock=True) as s:
        s.add(Reward(code="coffee", title="Coffee", points_cost=50, stock=10))
    for key in ("a", "b"):
        with db.session(write_lock=True) as s:
            redeem(s, citizen=s.merge(citizen), reward_code="coffee", idempotency_key=key,
                   operator_address=b"\x01" * 20)
    with db.session() as s, statements(db) as seen:
        summary = views.citizen_summary(s, citizen.id)
    assert not [q for q, _ in seen if "ledger_entries" in q]
    with db.session() as s:
        credits = s.execute(select(LedgerEntry.behaviour, func.count(),
                                   func.sum(LedgerEntry.reduction_grams),
                                   func.sum(LedgerEntry.points))
                            .where(LedgerEntry.citizen_id == citizen.id,
                                   LedgerEntry.kind == KIND_CREDIT)
                            .group_by(LedgerEntry.behaviour)).all()
        spent = s.scalar(select(func.sum(LedgerEntry.points)).where(
            LedgerEntry.citizen_id == citizen.id, LedgerEntry.kind == KIND_DEBIT))
    assert summary["totals"] == [{"behaviour": b, "entries": n, "reductionGrams": g,
                                  "points": p} for b, n, g, p in credits]
    assert summary["pointsSpent"] == spent == 100
    assert summary["points"] == sum(t["points"] for t in summary["totals"]) - spent


def two_behaviours_and_a_debit(db: Database, make_partner: Any, citizen: Any, rides: int,
                               now: int) -> None:
    """Rides two hours apart up to ``now``, a hotel stay among them, and a redemption."""
    bike, hotel = make_partner(), make_partner("hotelco", "hotel")
    submit(db, bike, [ride(citizen.pseudonym, f"r-{k}", now - (rides - k) * 2 * HOUR)
                      for k in range(rides)], now)
    submit(db, hotel, [stay(citizen.pseudonym, "s-1", now - 3 * DAY, 1)], now)
    with db.session(write_lock=True) as s:
        s.add(Reward(code="tea", title="Tea", points_cost=1, stock=10))
    with db.session(write_lock=True) as s:
        redeem(s, citizen=s.merge(citizen), reward_code="tea", idempotency_key="k",
               operator_address=b"\x01" * 20)


@pytest.mark.parametrize("behaviour", [None, "CYCLING"])
def test_a_page_of_entries_is_read_down_one_index(db, make_partner, make_citizen,
                                                  behaviour) -> None:
    """Every behaviour's next rows down ``ix_entries_citizen_behaviour_seq`` (found by a
    loose scan of it when the page is of them all), then the entries by key: no read of
    ``ledger_entries`` but through an index."""
    citizen = make_citizen()
    two_behaviours_and_a_debit(db, make_partner, citizen, 6, 1_790_000_000)
    with db.session() as s, statements(db) as seen:
        page = views.citizen_entries(s, citizen.id, behaviour=behaviour, limit=2)
        views.citizen_entries(s, citizen.id, behaviour=behaviour, limit=2,
                              after_seq=int(page["next"]))
    assert len(page["entries"]) == 2
    queries = [(q, p) for q, p in seen if "ledger_entries" in q]
    assert len(queries) == (4 if behaviour is None else 2)  # the loose scan, then the page
    with db.session() as s:
        for query, params in queries:
            assert_uses_index(s, query, params, "ledger_entries",
                              index="ix_entries_citizen_behaviour_seq")


def test_pages_merged_over_behaviours_are_the_ledgers_order(db, make_partner,
                                                            make_citizen) -> None:
    """Followed ``next`` to the end, with and without a window or a behaviour, the pages
    are the citizen's entries in ``seq`` order, each once, as one read of them all gives."""
    citizen, other = make_citizen(), make_citizen()
    now = 1_790_000_000
    two_behaviours_and_a_debit(db, make_partner, citizen, 9, now)
    submit(db, make_partner("bike2"), [ride(other.pseudonym, "o-1", now - HOUR)], now)
    with db.session() as s:
        every = s.execute(select(LedgerEntry.seq, LedgerEntry.behaviour, LedgerEntry.occurred_at)
                          .where(LedgerEntry.citizen_id == citizen.id)
                          .order_by(LedgerEntry.seq)).all()
    assert len({b for _, b, _ in every}) == 3 and len(every) == 11
    since, until = now - 12 * HOUR, now - 3 * HOUR
    for behaviour in (None, "CYCLING", "HOTEL_NO_DISPOSABLES", "WALKING"):
        for window in ((None, None), (since, until)):
            want = [seq for seq, b, at in every if behaviour in (None, b)
                    and (window[0] is None or window[0] <= at < window[1])]
            for limit in (1, 2, 3, 11, 12):
                got: list[int] = []
                after = None
                with db.session() as s:
                    while True:
                        page = views.citizen_entries(s, citizen.id, behaviour=behaviour,
                                                     since=window[0], until=window[1],
                                                     limit=limit, after_seq=after)
                        assert len(page["entries"]) <= limit
                        got += [seq_of(s, e["entryId"]) for e in page["entries"]]
                        if page["next"] is None:
                            break
                        after = int(page["next"])
                assert got == want, (behaviour, window, limit)


def seq_of(session: Any, entry_id: str) -> int:
    return int(session.scalar(select(LedgerEntry.seq).where(
        LedgerEntry.entry_id == bytes.fromhex(entry_id[2:]))))


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # PostgreSQL: the plan test above
def test_a_pages_cost_does_not_grow_with_the_citizens_history(db, make_partner,
                                                              make_citizen) -> None:
    """SQLite's virtual machine instructions for a citizen's first page of 5 (all
    behaviours, and one), with 20 rides of history and then with 400: the same within a
    small margin, while reading the whole history (the control) grows with it."""
    citizen = make_citizen()
    now = 1_790_000_000
    two_behaviours_and_a_debit(db, make_partner, citizen, 20, now - 40 * DAY)

    def instructions(read: Any) -> int:
        count = [0]

        def tick() -> int:
            count[0] += 1
            return 0

        with db.session() as s:
            raw = s.connection().connection.driver_connection
            raw.set_progress_handler(tick, 1)
            try:
                read(s)
            finally:
                raw.set_progress_handler(None, 1)
        return count[0]

    def reads() -> list[int]:
        return [instructions(lambda s: views.citizen_entries(s, citizen.id, limit=5)),
                instructions(lambda s: views.citizen_entries(s, citizen.id, limit=5,
                                                             behaviour="CYCLING")),
                instructions(lambda s: s.execute(select(func.count()).where(
                    LedgerEntry.citizen_id == citizen.id, LedgerEntry.points >= 0)).all())]

    young = reads()
    submit(db, make_partner("bike2"), [ride(citizen.pseudonym, f"q-{k}",
                                            now - (380 - k) * 2 * HOUR) for k in range(380)], now)
    with db.session() as s:
        assert s.scalar(select(func.count()).where(LedgerEntry.citizen_id == citizen.id)) == 402
    old = reads()
    print("instructions with 22 entries, then 402:", young, old)
    assert old[2] > 10 * young[2], (young, old)  # the control sees the history
    assert old[0] <= 1.2 * young[0] and old[1] <= 1.2 * young[1], (young, old)


def test_migration_fills_the_totals_from_the_ledger(db, make_partner, make_citizen) -> None:
    hotel = make_partner("hotelco", "hotel")
    bike = make_partner()
    citizen = make_citizen()
    now = 1_790_000_000
    submit(db, hotel, [stay(citizen.pseudonym, "s1", now - 10 * DAY, 3)], now)
    submit(db, bike, [ride(citizen.pseudonym, f"r{k}", now - 2 * DAY + k * HOUR)
                      for k in range(3)], now)
    with db.session(write_lock=True) as s:
        s.add(Reward(code="coffee", title="Coffee", points_cost=5, stock=10))
    with db.session(write_lock=True) as s:
        redeem(s, citizen=s.merge(citizen), reward_code="coffee", idempotency_key="k",
               operator_address=b"\x01" * 20)

    def totals() -> list[tuple[Any, ...]]:
        with db.session() as s:
            return [tuple(r) for r in s.execute(select(
                CitizenTotal.citizen_id, CitizenTotal.kind, CitizenTotal.behaviour,
                CitizenTotal.entries, CitizenTotal.grams, CitizenTotal.points,
                CitizenTotal.longest).order_by(CitizenTotal.kind, CitizenTotal.behaviour))]

    kept = totals()
    assert len(kept) == 3 and kept[1][-1] == 3 * DAY  # the stay's three nights
    config = alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
        command.upgrade(config, "0005")
    assert totals() == kept


# -- plans ---------------------------------------------------------------------------------

def driver_statement(session: Any, query: str, params: dict[str, Any]) -> tuple[str, Any]:
    """Intake's store's query (``:name`` parameters) as its driver runs it."""
    compiled = sql._compiled_text(query, session.connection().dialect)
    order = compiled.positiontup
    return compiled.string, params if order is None else tuple(params[n] for n in order)


def assert_uses_index(session: Any, query: str, params: Any, table: str, *,
                      index: str | None = None) -> str:
    """The plan of ``query`` (as its driver runs it) reads ``table`` through an index
    (``index``, if named), never by scanning it."""
    conn = session.connection()
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "sqlite":
        cursor.execute(f"EXPLAIN QUERY PLAN {query}", params)
        plan = "\n".join(row[-1] for row in cursor.fetchall())
        mine = [line for line in plan.splitlines()
                if f" {table} " in f"{line} " or line.split()[1:2] in (["a"], ["t"])]
        assert mine and all(line.startswith("SEARCH") for line in mine), plan
    else:
        for way in ("seqscan", "bitmapscan", "hashjoin", "mergejoin"):  # an index, or none
            cursor.execute(f"SET LOCAL enable_{way} = off")
        cursor.execute(f"EXPLAIN {query}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        lines = plan.splitlines()
        scans = [i for i, line in enumerate(lines) if f" on {table}" in line]
        assert scans and all("Index" in lines[i] and "Index Cond" in lines[i + 1]
                             for i in scans), plan
    if index is not None:
        assert index in plan, plan
    return plan
