"""The audit streams a batch (#24 item 2): pages of seq whatever the batch's size, each
read through indexes, bounded statements and memory, and every tampering it named when it
read the batch whole still named when the tampered entry sits on any page."""

from __future__ import annotations

import os
import time
import tracemalloc
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.dialects import sqlite

from ledger import accounts, audit, entry_audit
from ledger.audit import audit_batch, audit_entries, in_child
from ledger.entries import entry_row
from ledger.entry_audit import page_query
from ledger.intake.service import submit_records
from ledger.merkle import build_tree, root, sorted_root
from ledger.store.database import Database
from ledger.store.models import (
    ENTRY_KEY_BYTES,
    ActivityRecord,
    Batch,
    DailyTotal,
    EntryLocator,
    LedgerEntry,
)
from tests.conftest import a_record

#: SQLite's default limit on a statement's bound variables: the old audit's one IN list
#: of every credit id failed past it.
OLD_VARIABLE_LIMIT = 32_766


def rides(db: Database, partner: Any, count: int, citizens: int = 400) -> None:
    """``count`` credited rides through intake, 1,000 a submission, oldest first, every
    citizen riding a few times a day (no cap reached)."""
    with db.session(write_lock=True) as s:
        names = [accounts.create_citizen(s).pseudonym for _ in range(citizens)]
    now = int(time.time())
    gap = 86400 // (citizens * 5)
    first = now - 3600 - count * gap
    for lo in range(0, count, 1000):
        records = [{"record_id": f"r-{k}", "citizen": names[k % citizens], "behaviour": "CYCLING",
                    "quantity": 500 + k % 1500, "occurred_at": first + k * gap,
                    "ended_at": first + k * gap + (500 + k % 1500) // 4}
                   for k in range(lo, min(lo + 1000, count))]
        with db.session(write_lock=True) as s:
            outcomes = submit_records(s, partner=s.merge(partner), records=records, now=now).outcomes
        assert all(o.status == "accepted" for o in outcomes), outcomes[0]


def statements(db: Database) -> list[int]:
    """The number of bound values of every statement the database runs from now on."""
    seen: list[int] = []

    def count(_conn: Any, _cursor: Any, _statement: str, params: Any, _context: Any,
              _many: bool) -> None:
        seen.append(len(params) if params else 0)

    event.listen(db.engine, "before_cursor_execute", count)
    return seen


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_batch_past_the_old_variable_limit_audits_in_bounded_statements(
        db, make_partner, sealer) -> None:
    """33,000 credits in one batch: the old audit's IN list failed here on SQLite. Every
    statement now binds a page's worth of values at most, and the audit holds. (SQLite
    only: PostgreSQL's limit is twice as far, and its pages are the same statements.)"""
    rides(db, make_partner(), 33_000)
    [batch] = sealer.seal()
    assert batch.leaf_count == 33_000 > OLD_VARIABLE_LIMIT
    bound = statements(db)
    with db.session(snapshot=True) as s:
        report = audit_batch(s, batch.id)
    assert report.ok, report.problems
    assert (report.entries, report.credits, report.capped) == (33_000, 33_000, 0)
    assert report.recomputed == report.sealed
    assert len(bound) >= 33_000 // audit.PAGE_SIZE  # it read in pages ...
    assert max(bound) <= 3 * 300 + 10  # ... and no statement grew with the batch


def test_each_page_reads_a_page_wide_range_and_gaps_are_crossed(db, make_partner,
                                                                sealer) -> None:
    """A page's statement covers at most a page's width of seqs, whatever is left of the
    batch (an open range, with PostgreSQL's statistics older than the batch, was planned as
    a scan of the rest of the batch); a gap in the seqs wider than a page (writes rolled
    back) is crossed, by the whole audit and by one page of the per-entry audit."""
    rides(db, make_partner(), 40, citizens=10)
    with db.session() as s:
        seqs = list(s.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)))
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq.between(seqs[10], seqs[19])))
    [batch] = sealer.seal()
    assert batch.leaf_count == 30
    ranges: list[tuple[int, int]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any,
               _many: bool) -> None:
        if "FROM ledger_entries LEFT OUTER JOIN entry_locator" in statement:
            values = list(params.values()) if isinstance(params, dict) else list(params)
            ranges.append((values[0], values[1]))  # seq > after, seq <= last

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.session(snapshot=True) as s:
            report = audit_batch(s, batch.id, page_size=4)
            page = audit_entries(s, batch.id, after=seqs[9], limit=4)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert report.ok and report.entries == 30, report.problems
    assert ranges and all(hi - lo <= 4 for lo, hi in ranges), ranges
    assert [e.seq for e in page.entries] == seqs[20:24]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_raw_records_are_read_as_runs_of_ids(db, make_partner, sealer,
                                                 monkeypatch) -> None:
    """Intake writes records in their entries' order: after the first page, each page's
    records are one run of the primary key, none looked for by its key."""
    rides(db, make_partner(), 5000)
    [batch] = sealer.seal()
    by_key: list[int] = []
    query = entry_audit.records_query
    monkeypatch.setattr(entry_audit, "records_query", lambda seqs: by_key.append(len(seqs))
                        or query(seqs))
    with db.session(snapshot=True) as s:
        report = audit_batch(s, batch.id, page_size=500)
    assert report.ok and report.entries == 5000, report.problems
    assert sum(by_key) == 500  # the first page's, to find where the run begins


def test_audit_memory_does_not_follow_the_batch(tmp_path) -> None:
    """Traced memory at the audit's peak: 32 bytes a leaf and a page, not the batch's rows
    (the old audit held about 2.4 KB an entry)."""
    db = Database(f"sqlite:///{tmp_path}/ledger.db")
    from ledger.store.schema import create_schema

    create_schema(db.engine)
    n = 20_000
    with db.session() as s:
        citizen = accounts.create_citizen(s)
        account, partner = os.urandom(32), os.urandom(20)
        rows = [entry_row(entry_id=os.urandom(32), citizen_id=citizen.id, account=account,
                          kind=2, behaviour="REDEMPTION", quantity=1, reduction_grams=0,
                          points=1, methodology=1, occurred_at=1_763_000_000 + i,
                          record_hash=bytes(32), partner_address=partner) for i in range(n)]
        s.execute(LedgerEntry.__table__.insert(), rows)
        hashes = bytearray(b"".join(audit.keccak(audit.keccak(r["leaf"])) for r in rows))
        del rows
        s.add(Batch(id=1, first_seq=1, last_seq=n, leaf_count=n, root=sorted_root(hashes),
                    content_hash=bytes(32), status="sealed", sealed_at=0))
    tracemalloc.start()
    try:
        with db.session(snapshot=True) as s:
            report = audit_batch(s, 1, page_size=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.entries == n and report.recomputed is not None
    assert report.recomputed.root == report.sealed.root  # type: ignore[union-attr]
    assert report.problem_count == n + 1  # the locator lacks each one; the content hash
    assert len(report.problems) == audit.MAX_PROBLEMS  # ... kept to a bounded few
    assert peak < 8 * 2**20, peak  # 20,000 entries: 640 KB of hashes and one page


@pytest.mark.parametrize("n", [*range(1, 40), 64, 65, 127, 1000])
def test_the_streamed_root_is_the_tree_builders(n: int) -> None:
    hashes = bytearray(os.urandom(32 * n))
    leaves = sorted(bytes(hashes[i:i + 32]) for i in range(0, len(hashes), 32))
    expected = root(build_tree(leaves))
    assert sorted_root(bytearray(hashes)) == expected
    assert sorted_root(hashes, elsewhere=in_child) == expected  # the left half in a forked child


def _sqlite_plan(db: Database, statement: Any) -> list[str]:
    query = statement.compile(dialect=sqlite.dialect(),
                              compile_kwargs={"render_postcompile": True})
    params = tuple(query.params[name] for name in query.positiontup)  # type: ignore[union-attr]
    with db.engine.connect() as conn:
        return [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", params)]


TOTALS = entry_audit.totals_query(DailyTotal, DailyTotal.day, [(1, "CYCLING", 2), (3, "METRO", 4)])


RUN = entry_audit.run_query(1, audit.PAGE_SIZE)
BY_KEY = entry_audit.records_query([1, 2, 3])


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_page_reads_use_indexes_on_sqlite(db) -> None:
    assert _sqlite_plan(db, page_query(0, 10**6, audit.PAGE_SIZE)) == [
        "SEARCH ledger_entries USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        "SEARCH entry_locator USING PRIMARY KEY (entry_key=?) LEFT-JOIN"]
    citizen = "SEARCH citizens USING INTEGER PRIMARY KEY (rowid=?) LEFT-JOIN"  # a pseudonym
    assert _sqlite_plan(db, RUN) == [
        "SEARCH activity_records USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", citizen]
    assert _sqlite_plan(db, BY_KEY) == [
        "SEARCH ledger_entries USING INTEGER PRIMARY KEY (rowid=?)",
        "SEARCH activity_records USING INDEX ix_records_citizen_behaviour "
        "(citizen_id=? AND behaviour=? AND occurred_at=?)", citizen]
    plan = _sqlite_plan(db, TOTALS)  # the cap totals of a page's capped credits
    assert "MULTI-INDEX OR" in plan, plan
    assert [line for line in plan if "daily_totals" in line] == [
        "SEARCH daily_totals USING INDEX sqlite_autoindex_daily_totals_1 "
        "(citizen_id=? AND behaviour=? AND day=?)"] * 2, plan


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_the_page_reads_use_indexes_on_postgresql(db) -> None:
    """Every way to read but an index priced out (bitmap scans allowed for the OR'ed keys:
    they are index searches too), and each table read through an index."""
    for statement, tables, bitmaps in (
            (page_query(0, 10**6, audit.PAGE_SIZE), ("ledger_entries", "entry_locator"), False),
            (RUN, ("activity_records", "citizens"), False),
            (BY_KEY, ("ledger_entries", "activity_records", "citizens"), False),
            (TOTALS, ("daily_totals",), True)):
        query = statement.compile(dialect=db.engine.dialect,
                                  compile_kwargs={"render_postcompile": True})
        with db.engine.begin() as conn:
            for way in ("seqscan", "hashjoin", "mergejoin", *(() if bitmaps else ("bitmapscan",))):
                conn.exec_driver_sql(f"SET LOCAL enable_{way} = off")
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {query}",
                                                                     query.params))
        assert "Seq Scan" not in plan, plan
        for table in tables:
            assert f" on {table}" in plan, plan
        assert plan.count("Index Scan") >= len(tables), plan
        if statement is BY_KEY:
            assert "ix_records_citizen_behaviour" in plan, plan


@pytest.mark.parametrize("k", [0, 4, -4])
def test_a_record_written_out_of_order_is_still_found(db, batch, k) -> None:
    """A record written long after its entry (here its id moved past every other) or
    before it is found all the same: by its entry's citizen, behaviour, time and id, not
    by order."""
    e = nth(db, batch, k)
    with db.session() as s:
        for record_id in (10**9, 0):
            s.execute(update(ActivityRecord).where(ActivityRecord.entry_id == e.entry_id)
                      .values(id=record_id))
            assert problems(db, batch.id) == []


@pytest.mark.parametrize("column", ["citizen_id", "behaviour", "occurred_at"])
def test_a_record_of_the_entrys_id_but_another_citizen_behaviour_or_time_is_not_its(
        db, batch, make_citizen, column) -> None:
    """Found in the run of records or by its key, a record is the entry's only if its
    citizen, behaviour, time and entry id are the entry's."""
    e, f = nth(db, batch, 0), nth(db, batch, -4)  # on the first page and on a later one
    other = make_citizen().id
    with db.session() as s:
        for entry in (e, f):
            record = s.scalar(select(ActivityRecord)
                              .where(ActivityRecord.entry_id == entry.entry_id))
            setattr(record, column, {"citizen_id": other, "behaviour": "WALKING",
                                     "occurred_at": record.occurred_at + 1}[column])
    assert problems(db, batch.id) == [f"entry 0x{x.entry_id.hex()}: no raw record for this credit"
                                      for x in (e, f)]


# -- tampering, wherever it sits ----------------------------------------------------------------

@pytest.fixture
def batch(db, make_partner, make_citizen, sealer) -> Batch:  # type: ignore[no-untyped-def]
    """Entries over pages of two: credits (the first citizen's capped by the daily cap, the
    second citizen's seven rides not) and a redemption's debit, last."""
    partner, capped, citizen = make_partner(), make_citizen(), make_citizen()
    records = [a_record(capped.pseudonym, quantity=q) for q in (3000, 4000, 30000, 45000)]
    records += [a_record(citizen.pseudonym, quantity=q, hours_ago=2 + k / 2)
                for k, q in enumerate((1200, 1300, 1400, 1500, 1600, 1700, 1800))]
    with db.session(write_lock=True) as s:
        outcomes = submit_records(s, partner=s.merge(partner), records=records).outcomes
        assert any(o.capped for o in outcomes)
        c = s.merge(citizen)
        s.execute(LedgerEntry.__table__.insert(), [entry_row(
            entry_id=os.urandom(32), citizen_id=c.id, account=os.urandom(32), kind=2,
            behaviour="REDEMPTION", quantity=1, reduction_grams=0, points=1, methodology=1,
            occurred_at=int(time.time()), record_hash=bytes(32), partner_address=bytes(20))])
    [sealed] = sealer.seal()
    return sealed  # type: ignore[no-any-return]


def problems(db: Database, batch_id: int) -> list[str]:
    with db.session(snapshot=True) as s:
        report = audit_batch(s, batch_id, page_size=2)
    with db.session(snapshot=True) as s:  # the per-entry pages say the same
        paged, after = [], None
        while True:
            page = audit_entries(s, batch_id, after=after, limit=3)
            paged += [f"entry 0x{e.entry_id.hex()}: {p}" for e in page.entries for p in e.problems]
            if page.next_after is None:
                break
            after = page.next_after
    assert paged == [p for p in report.problems if p.startswith("entry ")]
    assert report.problem_count == len(report.problems)
    return report.problems


def nth(db: Database, batch: Batch, k: int, credit: bool = True) -> LedgerEntry:
    with db.session() as s:
        return s.scalars(select(LedgerEntry).where(
            LedgerEntry.seq.between(batch.first_seq, batch.last_seq),
            LedgerEntry.kind == (1 if credit else 2)).order_by(LedgerEntry.seq)).all()[k]


def test_an_honest_batch_holds_on_every_page(db, batch) -> None:
    assert problems(db, batch.id) == []
    with db.session(snapshot=True) as s:
        report = audit_batch(s, batch.id, page_size=2)
        page = audit_entries(s, batch.id, limit=100)
    assert (report.entries, report.credits) == (batch.leaf_count, batch.leaf_count - 1)
    assert report.capped >= 1 and report.ok
    assert [e.seq for e in page.entries] == list(range(batch.first_seq, batch.last_seq + 1))
    assert page.next_after is None
    capped = [e for e in page.entries if e.capped]
    assert capped and all(e.full_grams > e.credited_grams for e in capped)  # type: ignore[operator]
    debit = page.entries[-1]
    assert (debit.kind, debit.record_hash, debit.methodology) == (2, None, None)


def test_a_missing_record_is_named(db, batch) -> None:
    e = nth(db, batch, -7)
    with db.session() as s:
        s.execute(delete(ActivityRecord).where(ActivityRecord.entry_id == e.entry_id))
    assert problems(db, batch.id) == [f"entry 0x{e.entry_id.hex()}: no raw record for this credit"]


def test_a_locator_that_lacks_or_misplaces_an_entry_is_named(db, batch) -> None:
    e, f = nth(db, batch, -6), nth(db, batch, 0, credit=False)
    with db.session() as s:
        s.execute(delete(EntryLocator).where(EntryLocator.entry_key == e.entry_id[:ENTRY_KEY_BYTES]))
        s.execute(update(EntryLocator).where(EntryLocator.entry_key == f.entry_id[:ENTRY_KEY_BYTES])
                  .values(seq=f.seq + 1))
    assert problems(db, batch.id) == [f"entry 0x{e.entry_id.hex()}: the locator lacks it",
                                      f"entry 0x{f.entry_id.hex()}: the locator points elsewhere"]


def test_a_leaf_unlike_its_columns_or_not_canonical_is_named(db, batch) -> None:
    e, f = nth(db, batch, -5), nth(db, batch, -4)
    with db.session() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == e.seq)
                  .values(reduction_grams=e.reduction_grams + 1))
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == f.seq)
                  .values(leaf=f.leaf[:64] + b"\x01" + f.leaf[65:]))  # the kind's padding
    found = problems(db, batch.id)
    assert found[:2] == [f"entry 0x{e.entry_id.hex()}: the sealed leaf differs from the "
                         "entry's columns",
                         f"entry 0x{f.entry_id.hex()}: leaf does not decode: not a canonical "
                         "leaf encoding: non-zero padding"]
    assert [p.split(" 0x")[0] for p in found[2:]] == ["the leaves give root",
                                                      "the leaves give content hash"]


def test_a_record_that_no_longer_parses_or_differs_is_named(db, batch) -> None:
    e, f = nth(db, batch, -3), nth(db, batch, -2)
    with db.session() as s:
        for entry, edit in ((e, lambda raw: raw.replace('"quantity":', '"quantity":-')),
                            (f, lambda raw: raw.replace('"quantity":', '"quantity":1'))):
            record = s.scalar(select(ActivityRecord).where(ActivityRecord.entry_id == entry.entry_id))
            record.raw = edit(record.raw)
            s.flush()
            entry_hash = audit.keccak(record.raw.encode())  # the leaf and entry re-sealed to it
            s.execute(update(LedgerEntry).where(LedgerEntry.seq == entry.seq).values(
                leaf=_leaf(entry, record_hash=entry_hash)))
    found = problems(db, batch.id)
    assert found[:2] == [f"entry 0x{e.entry_id.hex()}: the raw record no longer parses "
                         "(quantity: must be positive)",
                         f"entry 0x{f.entry_id.hex()}: the raw record's behaviour, quantity or "
                         "time differ from the entry"]


@pytest.mark.parametrize("k", range(10))
def test_a_raw_record_whose_quantity_differs_is_named_wherever_it_sits(db, batch, k) -> None:
    """The record, its hash and the leaf altered together (the root alone would show it,
    not which entry): the quantity it gives is not the entry's, on every page, whether
    its record is found in the run of records or by its key."""
    e = nth(db, batch, k)
    with db.session() as s:
        record = s.scalar(select(ActivityRecord).where(ActivityRecord.entry_id == e.entry_id))
        record.raw = record.raw.replace(f'"quantity":{e.quantity}', f'"quantity":{e.quantity + 1}')
        s.flush()
        entry_hash = audit.keccak(record.raw.encode())
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == e.seq).values(
            leaf=_leaf(e, record_hash=entry_hash)))
    found = problems(db, batch.id)
    assert found[0] == (f"entry 0x{e.entry_id.hex()}: the raw record's behaviour, quantity "
                        "or time differ from the entry"), found
    assert [p.split(" 0x")[0] for p in found[1:]] == ["the leaves give root",
                                                      "the leaves give content hash"]


def test_a_wrong_version_points_or_an_uncapped_shortfall_is_named(db, batch) -> None:
    e, f = nth(db, batch, -7), nth(db, batch, -6)
    with db.session() as s:
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == e.seq).values(
            leaf=_leaf(e, methodology=e.methodology + 1)))  # the version is the leaf's only
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == f.seq).values(
            points=f.points + 1, leaf=_leaf(f, points=f.points + 1)))
        s.execute(update(DailyTotal).values(grams=0))  # the capped credit's cap never reached
    found = problems(db, batch.id)
    assert f"entry 0x{e.entry_id.hex()}: methodology v{e.methodology + 1} recorded, " \
           f"v{e.methodology} was in force" in found
    assert f"entry 0x{f.entry_id.hex()}: points {f.points + 1}, the rule gives {f.points}" in found
    assert any("CYCLING credit at" in p and "no cap was reached" in p for p in found), found


def test_a_missing_entry_or_a_reordering_is_named(db, batch) -> None:
    e, f = nth(db, batch, -5), nth(db, batch, -4)
    with db.session() as s:  # two entries swap places: the same leaves, another order
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == e.seq).values(seq=-1))
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == f.seq).values(seq=e.seq))
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == -1).values(seq=f.seq))
        for moved, to in ((e, f.seq), (f, e.seq)):
            key = moved.entry_id[:ENTRY_KEY_BYTES]
            s.execute(update(EntryLocator).where(EntryLocator.entry_key == key).values(seq=to))
    found = problems(db, batch.id)
    assert [p.split(" 0x")[0] for p in found] == ["the leaves give content hash"], found
    with db.session() as s:
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq == batch.last_seq))
    assert problems(db, batch.id) == [f"the batch holds {batch.leaf_count - 1} entries, "
                                      f"sealed {batch.leaf_count}"]


def test_workers_find_what_one_process_finds(db, batch, monkeypatch) -> None:
    e = nth(db, batch, -1)
    with db.session() as s:
        s.execute(update(ActivityRecord).where(ActivityRecord.entry_id == e.entry_id)
                  .values(raw='{"erased":true}'))
    monkeypatch.setattr(audit, "_FORK_AT", 2)
    seen: list[tuple[int, int]] = []
    with db.session(snapshot=True) as s:
        one = audit_batch(s, batch.id, page_size=2)
        two = audit_batch(s, batch.id, page_size=2, workers=3,
                          progress=lambda done, total: seen.append((done, total)))
    assert two.as_dict() == one.as_dict()
    assert one.problems == [f"entry 0x{e.entry_id.hex()}: the raw record does not hash to the "
                            "sealed recordHash"]
    assert seen and seen[-1] == (batch.leaf_count, batch.leaf_count)


def test_a_page_past_the_end_or_of_no_batch(db, batch) -> None:
    with db.session(snapshot=True) as s:
        page = audit_entries(s, batch.id, after=batch.last_seq, limit=5)
        assert (page.entries, page.next_after) == ([], None)
        first = audit_entries(s, batch.id, limit=5)
        assert first.next_after == first.entries[-1].seq == batch.first_seq + 4
        with pytest.raises(audit.NotFound):
            audit_entries(s, batch.id + 1)


def _leaf(entry: LedgerEntry, **changes: Any) -> bytes:
    values = {name: getattr(entry, name) for name in (
        "entry_id", "citizen_id", "kind", "behaviour", "quantity", "reduction_grams", "points",
        "methodology", "occurred_at", "record_hash", "partner_address")}
    values.update(changes)
    return entry_row(account=entry.leaf[32:64], **values)["leaf"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_cli_shows_progress_on_a_terminal_only(db, batch, tmp_path) -> None:
    """The same report either way; the progress bar only where stderr is a terminal."""
    import pty
    import subprocess
    import sys
    from pathlib import Path

    data_dir = tmp_path / "cli"
    data_dir.mkdir(mode=0o700)
    command = [sys.executable, "-c", "from api.cli.main import main; raise SystemExit(main())",
               "audit", str(batch.id), "--data-dir", str(data_dir)]
    env = {**os.environ, "CARBON_LEDGER_DATABASE_URL": db.url, "COLUMNS": "100"}
    root = Path(__file__).resolve().parents[1]
    piped = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "recomputed, all hold" in piped.stdout and piped.stderr == ""
    leader, follower = pty.openpty()
    on_tty = subprocess.run(command, stdout=subprocess.PIPE, stderr=follower, text=True, env=env,
                            cwd=root, timeout=60)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert on_tty.returncode == 0 and on_tty.stdout == piped.stdout
    assert f"auditing batch {batch.id}".encode() in shown, shown


def test_a_second_record_claiming_an_entry_neither_repeats_nor_drops_entries(db, batch) -> None:
    """Two rows of one entry in a page's read: each entry is still checked once, and the
    pages still end where the batch does."""
    e = nth(db, batch, -3)
    with db.session() as s:
        record = s.scalar(select(ActivityRecord).where(ActivityRecord.entry_id == e.entry_id))
        copy = {c.name: getattr(record, c.name) for c in ActivityRecord.__table__.columns
                if c.name != "id"}
        s.execute(ActivityRecord.__table__.insert().values(
            **{**copy, "partner_record_id": copy["partner_record_id"] + "-again"}))
    assert problems(db, batch.id) == []
    with db.session(snapshot=True) as s:
        seqs, after = [], None
        while True:
            page = audit_entries(s, batch.id, after=after, limit=2)
            seqs += [x.seq for x in page.entries]
            if page.next_after is None:
                break
            after = page.next_after
    assert seqs == list(range(batch.first_seq, batch.last_seq + 1))
