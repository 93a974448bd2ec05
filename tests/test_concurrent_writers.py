"""Units of work racing each other on one database, each on its own connection as the API's
workers and threads would be: on SQLite the write lock serialises them, on PostgreSQL the
rows they lock, the unique indexes they meet at and the retries after must give the same
answers, and writers with no citizen in common must not wait for each other."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ledger import accounts
from ledger.errors import Contended, InsufficientPoints
from ledger.intake.service import submit_records
from ledger.methodology import methodology_in_force
from ledger.redemption import redeem
from ledger.store.database import Database
from ledger.store.intake import RACE_ATTEMPTS, IntakeStore
from ledger.store.leases import acquire_lease
from ledger.store.locks import CITIZEN_LOCK_BUCKETS
from ledger.store.models import ActivityRecord, Batch, LedgerEntry, Reward
from tests.conftest import a_record

OPERATOR = b"\x11" * 20


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(0..n-1)`` on n threads released together; each result or exception."""
    start = threading.Barrier(n)

    def one(i: int) -> Any:
        start.wait()
        try:
            return work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each one got
            return exc
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def citizen_with_points(db: Database, make_citizen, points: int, *, stock: int):
    citizen = make_citizen()
    with db.session(write_lock=True) as s:
        accounts.credit_points(s, citizen.id, points)
        accounts.upsert_reward(s, code="coffee", title="Coffee", points_cost=100, stock=stock)
    return citizen


def redeem_once(db: Database, citizen, key: str):
    with db.session(write_lock=True) as s:
        return redeem(s, citizen=s.merge(citizen), reward_code="coffee", idempotency_key=key,
                      operator_address=OPERATOR)


def test_racing_redemptions_take_exactly_what_the_balance_affords(db, make_citizen) -> None:
    citizen = citizen_with_points(db, make_citizen, 1000, stock=40)
    results = race(30, lambda i: redeem_once(db, citizen, f"key-{i}"))
    assert [r for r in results if not isinstance(r, tuple | InsufficientPoints)] == []
    assert sum(isinstance(r, tuple) for r in results) == 10
    with db.session() as s:
        assert accounts.balance(s, citizen.id) == 0
        assert s.scalar(select(Reward.stock)) == 30
    assert count(db, LedgerEntry) == 10


def test_racing_redemptions_with_one_idempotency_key_debit_once(db, make_citizen) -> None:
    citizen = citizen_with_points(db, make_citizen, 1000, stock=40)
    results = race(12, lambda _: redeem_once(db, citizen, "the-same-key"))
    assert [r for r in results if not isinstance(r, tuple)] == []
    assert len({redemption.entry_id for redemption, _ in results}) == 1
    assert sorted(replay for _, replay in results) == [False] + [True] * 11
    with db.session() as s:
        assert accounts.balance(s, citizen.id) == 900
        assert s.scalar(select(Reward.stock)) == 39
    assert count(db, LedgerEntry) == 1


def submit(db: Database, partner, records: list[dict]):
    with db.session(write_lock=True) as s:
        return submit_records(s, partner=s.merge(partner), records=records)


def test_one_record_submitted_by_racing_requests_is_credited_once(db, make_partner,
                                                                   make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    record = a_record(citizen.pseudonym, quantity=3200, record_id="ride-1")
    results = race(8, lambda _: submit(db, partner, [dict(record)]))
    assert [r for r in results if isinstance(r, Exception)] == []
    statuses = sorted(r.outcomes[0].status for r in results)
    assert statuses == ["accepted"] + ["duplicate"] * 7
    assert count(db, LedgerEntry) == 1 and count(db, ActivityRecord) == 1


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_one_record_id_raced_for_two_citizens_is_written_once(db, make_partner,
                                                              make_citizen) -> None:
    # No citizen in common, so no citizen's lock orders them: they meet at the unique
    # index on (partner, record id), and the loser is decided again and finds it known.
    partner = make_partner()
    citizens = [make_citizen() for _ in range(6)]
    results = race(6, lambda i: submit(db, partner, [a_record(citizens[i].pseudonym,
                                                              record_id="ride-1")]))
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(r.outcomes[0].status for r in results).count("accepted") == 1
    assert count(db, LedgerEntry) == 1 and count(db, ActivityRecord) == 1


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_write_that_keeps_losing_its_race_is_refused_with_nothing_written(
        db, make_partner, make_citizen) -> None:
    partner, citizen = make_partner(), make_citizen()
    submit(db, partner, [a_record(citizen.pseudonym, record_id="ride-1")])
    columns = ", ".join(c.name for c in ActivityRecord.__table__.columns if c.name != "id")
    tries = []

    def attempt() -> None:  # writes a record, then one whose id the partner has used
        tries.append(1)
        submit_records(store.session, partner=store.session.merge(partner),
                       records=[a_record(citizen.pseudonym, record_id=f"ride-{len(tries) + 1}",
                                         hours_ago=3 + len(tries))])
        store.session.execute(text(f"INSERT INTO activity_records ({columns}) SELECT {columns} "
                                   "FROM activity_records WHERE partner_record_id = 'ride-1'"))

    with pytest.raises(Contended) as refused, db.session(write_lock=True) as s:
        store = IntakeStore(s)
        store.race_free(attempt)
    assert refused.value.http_status == 503 and len(tries) == RACE_ATTEMPTS
    assert count(db, ActivityRecord) == 1 and count(db, LedgerEntry) == 1


def held_open(db: Database, partner, records: list[dict]) -> tuple[threading.Event,
                                                                   threading.Thread]:
    """Submit ``records`` on a thread that keeps its transaction open, locks and all,
    until the returned event is set."""
    written, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.session(write_lock=True) as s:
            submit_records(s, partner=s.merge(partner), records=records)
            written.set()
            release.wait(60)
    thread = threading.Thread(target=hold)
    thread.start()
    assert written.wait(30)
    return release, thread


# PostgreSQL only: SQLite has one writer at a time by design.
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_one_partners_submissions_for_other_citizens_are_written_side_by_side(
        db, make_partner) -> None:
    partner = make_partner()
    with db.session(write_lock=True) as s:  # two citizens who would share a lock bucket
        citizens = [accounts.create_citizen(s) for _ in range(CITIZEN_LOCK_BUCKETS + 1)]
    first = citizens[0]
    other = next(c for c in citizens[1:] if c.id % CITIZEN_LOCK_BUCKETS
                 == first.id % CITIZEN_LOCK_BUCKETS)
    release, thread = held_open(db, partner, [a_record(first.pseudonym)])
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            beside = pool.submit(submit, db, partner, [a_record(other.pseudonym)])
            assert beside.result(timeout=15).outcomes[0].status == "accepted"
            # ... while one more for the held citizen waits for the held transaction
            after = pool.submit(submit, db, partner, [a_record(first.pseudonym)])
            time.sleep(1.0)
            assert not after.done()
        finally:
            release.set()
            thread.join()
        assert after.result(timeout=15).outcomes[0].status == "accepted"
    assert count(db, LedgerEntry) == 3


def test_racing_submissions_from_two_partners_never_pass_the_daily_cap(db, make_partner,
                                                                       make_citizen) -> None:
    partners = [make_partner("greenbike"), make_partner("bluebike")]
    citizen = make_citizen()
    # Rides an hour or more apart (no two the same trip), 238 g each: 6 of them, 1428 g, on
    # one or two local days; whatever the interleaving, each day's credit stops at the cap.
    rides = [[a_record(citizen.pseudonym, quantity=4900, record_id=f"{p}-{i}",
                       hours_ago=2 + 2 * i + p) for i in range(3)] for p in range(2)]
    results = race(2, lambda p: submit(db, partners[p], rides[p]))
    assert [o.status for r in results for o in r.outcomes] == ["accepted"] * 6
    with db.session() as s:
        credited = list(s.execute(select(LedgerEntry.occurred_at, LedgerEntry.reduction_grams)))
    assert per_local_day(credited) == {day: min(CYCLING_CAP, 238 * n) for day, n in
                                       per_local_day([(at, 1) for at in ride_times(rides)]).items()}


CYCLING_CAP = 1000


def ride_times(rides: list[list[dict]]) -> list[int]:
    return [int(datetime.fromisoformat(r["occurred_at"]).timestamp()) for rs in rides for r in rs]


def per_local_day(amounts: list[tuple[int, int]]) -> dict[int, int]:
    days: dict[int, int] = {}
    for at, amount in amounts:
        day = methodology_in_force(at).local_day(at)
        days[day] = days.get(day, 0) + amount
    return days


# PostgreSQL only: SQLite has one writer at a time, so entries commit in seq order there.
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_an_entry_committed_after_a_later_one_is_sealed_all_the_same(db, sealer, make_partner,
                                                                      make_citizen) -> None:
    slow_partner, fast_partner = make_partner("greenbike"), make_partner("bluebike")
    slow_citizen, fast_citizen = make_citizen(), make_citizen()
    with db.session() as slow:  # takes seq n and stays open...
        submit_records(slow, partner=slow.merge(slow_partner),
                       records=[a_record(slow_citizen.pseudonym, record_id="slow")])
        submit(db, fast_partner, [a_record(fast_citizen.pseudonym, record_id="fast")])  # n + 1
        sealing = ThreadPoolExecutor(max_workers=1)
        sealed = sealing.submit(sealer.seal)
        deadline = time.monotonic() + 30
        while not sealed.done() and not waiting_on_a_lock(db):
            assert time.monotonic() < deadline, "the sealer neither finished nor waited"
            time.sleep(0.02)
    # ...and commits after the sealer looked: it must be in the batch, or wait for the next.
    sealed.result(timeout=60)
    sealing.shutdown()
    sealer.seal()
    with db.session() as s:
        seqs = list(s.scalars(select(LedgerEntry.seq)))
        batches = list(s.scalars(select(Batch)))
    assert len(seqs) == 2
    for b in batches:
        assert b.leaf_count == sum(b.first_seq <= q <= b.last_seq for q in seqs), "a leaf is missing"
    assert all(any(b.first_seq <= q <= b.last_seq for b in batches) for q in seqs)


def waiting_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                     "datname = current_database() AND wait_event_type = 'Lock'")))


@pytest.mark.parametrize("held_before", ["nobody", "an expired holder"])
def test_racing_sealers_get_one_lease(db, held_before) -> None:
    if held_before != "nobody":
        assert acquire_lease(db, "sealer", "old-host:1", seconds=-1)
    results = race(8, lambda i: acquire_lease(db, "sealer", f"host:{i}", seconds=60))
    assert results.count(True) == 1 and results.count(False) == 7, results
