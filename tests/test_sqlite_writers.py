"""The SQLite writer's turn (a file lock beside the database) and the background
checkpointer that keeps the write-ahead log short while serving."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.errors import DatabaseUnavailable
from ledger.store.database import Database
from ledger.store.sqlite import WalCheckpointer, WriterLock


def test_a_second_writer_waits_for_the_first_and_starts_as_it_commits(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "db-writer.lock"))
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with lock:
            order.append("first in")
            held.set()
            time.sleep(0.2)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    started = time.monotonic()
    with lock:
        waited = time.monotonic() - started
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]
    assert 0.1 < waited < 0.2 + 0.05  # not before the first left, and soon after


def test_a_writer_held_too_long_gives_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writer.lock")
    with (WriterLock(path), pytest.raises(DatabaseUnavailable, match="over 0.1 s"),
          WriterLock(path, timeout=0.1)):
        pass
    with WriterLock(path, timeout=0.1):  # released by the first's exit, not leaked by the second
        pass


def test_write_locked_sessions_serialise_their_read_then_write(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    with db.session() as s:
        s.execute(text("CREATE TABLE counter (n INTEGER)"))
        s.execute(text("INSERT INTO counter VALUES (0)"))

    def bump() -> None:
        for _ in range(20):
            with db.session(write_lock=True) as s:
                n = s.execute(text("SELECT n FROM counter")).scalar_one()
                s.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session() as s:
        assert s.execute(text("SELECT n FROM counter")).scalar_one() == 80
    db.engine.dispose()


def _insert_blobs(db: Database, rows: int) -> None:
    """``rows`` rows of 4,000 random bytes each, in one write-locked unit of work."""
    with db.session(write_lock=True) as s:
        s.execute(text("INSERT INTO blob SELECT randomblob(4000) FROM "
                       "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       "WHERE i < :rows) SELECT i FROM n)"), {"rows": rows})


def _wal_pages(path: Path) -> int:
    return path.with_name(path.name + "-wal").stat().st_size // 4096


def test_the_checkpointer_copies_the_log_and_rewinds_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    db = Database(f"sqlite:///{path}")
    with db.background_checkpoints(interval=3600) as checkpointer:  # rounds driven below
        assert checkpointer is not None
        with db.engine.connect() as conn:  # serving connections no longer checkpoint at 1,000
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == \
                WalCheckpointer.BACKSTOP_PAGES
        with db.session() as s:
            s.execute(text("CREATE TABLE blob (b BLOB)"))
        for _ in range(3):
            _insert_blobs(db, 1500)
        grown = _wal_pages(path)
        assert grown > 1500 * 3  # nothing checkpointed on commit

        conn = sqlite3.connect(path, isolation_level=None)
        small = WalCheckpointer(str(path), restart_pages=1000)
        pages, copied = small.checkpoint(conn)
        assert small.restarts == 1 and pages == copied > 1500 * 3
        with db.session(write_lock=True) as s:  # the next writer starts the log over
            s.execute(text("INSERT INTO blob VALUES (x'00')"))
        assert conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0][1] < 10
        conn.close()
        with db.session() as s:
            assert s.execute(text("SELECT count(*) FROM blob")).scalar_one() == 4501
    with db.engine.connect() as conn:  # back to the default once serving stops
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    db.engine.dispose()


def test_the_checkpointers_restart_waits_for_the_writers_turn(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    db = Database(f"sqlite:///{path}")
    with db.background_checkpoints(interval=3600):  # rounds driven below
        with db.session() as s:
            s.execute(text("CREATE TABLE blob (b BLOB)"))
        _insert_blobs(db, 1500)
        conn = sqlite3.connect(path, isolation_level=None)
        writing = threading.Event()

        def writer() -> None:  # a writer in the middle of its unit of work
            with db.session(write_lock=True) as s:
                s.execute(text("INSERT INTO blob VALUES (x'01')"))
                writing.set()
                time.sleep(0.3)

        t = threading.Thread(target=writer)
        t.start()
        writing.wait(5)
        impatient = WalCheckpointer(str(path), restart_pages=1000, turn_timeout=0.05)
        with pytest.raises(DatabaseUnavailable):  # the thread's loop skips to its next round
            impatient.checkpoint(conn)
        patient = WalCheckpointer(str(path), restart_pages=1000, wait_ms=10)
        started = time.monotonic()
        pages, copied = patient.checkpoint(conn)
        waited = time.monotonic() - started
        t.join()
        # It restarted the log once the writer committed, rather than failing busy
        # after wait_ms with new writers held back meanwhile.
        assert waited > 0.1 and patient.restarts == 1 and pages == copied > 1500
        conn.close()
    db.engine.dispose()


def test_the_checkpointer_thread_runs_on_its_own(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    with db.background_checkpoints(interval=0.05) as checkpointer:
        assert checkpointer is not None
        deadline = time.monotonic() + 5
        while checkpointer.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert checkpointer.checkpoints >= 2
    db.engine.dispose()


def test_no_checkpointer_for_an_in_memory_database() -> None:
    db = Database("sqlite://")
    with db.background_checkpoints() as checkpointer:
        assert checkpointer is None
