"""What SQLite needs beyond SQLAlchemy to serve many writers well: the writers' turn across
threads and processes, and the write-ahead log checkpointed off the request path."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time

from ledger.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class WriterLock:
    """The turn to write a SQLite file, across threads and processes: an exclusive
    ``flock`` on a file beside it, taken before ``BEGIN IMMEDIATE``.

    SQLite's own busy handler sleeps in steps of up to 25-100 ms while another
    connection writes, so a waiting writer oversleeps the holder by about half a step,
    and under steady ingest the lock stood idle that long between two submissions. This
    lock is polled every half millisecond (a failed ``flock`` is one system call), so the
    next writer starts almost as soon as the last one commits. Each acquisition opens
    the file anew: two threads of one process then exclude each other too. A holder
    that dies releases it with its descriptors."""

    def __init__(self, path: str, *, timeout: float = 30.0) -> None:
        self.path, self.timeout = path, timeout
        self._local = threading.local()

    @classmethod
    def beside(cls, sqlite_file: str, *, timeout: float = 30.0) -> WriterLock:
        """The lock every writer of ``sqlite_file`` takes: ``<file>-writer.lock``."""
        return cls(sqlite_file + "-writer.lock", timeout=timeout)

    def __enter__(self) -> WriterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline, pause = time.monotonic() + self.timeout, 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise DatabaseUnavailable(f"another writer held the database for over "
                                              f"{self.timeout:g} s", field="database") from None
                time.sleep(pause)
        self._local.fd = fd
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self._local.fd)  # closing the descriptor releases the lock


class WalCheckpointer:
    """Checkpoints a SQLite database's write-ahead log from a thread of its own.

    By default the connection whose commit takes the log past 1,000 pages copies it into
    the database file and syncs both, on the request's time. A submission dirties about
    2,000 index pages once the ledger holds a few hundred thousand entries, so every
    commit paid for a checkpoint, and the same hot pages were copied again and again.
    Here, each ``interval``: a passive checkpoint (waits for no one) copies what it can;
    if the log has grown past ``restart_pages`` a restart checkpoint then rewinds it, so
    it does not grow without end under steady writes. A restart waits until no one
    writes and holds new writers back meanwhile, so it first takes the writers' turn
    (:class:`WriterLock`) like any writer: taken inside SQLite instead, the writer arriving
    next fell through to SQLite's busy handler and overslept the restart by tens of
    milliseconds, and a restart begun mid-write waited out ``wait_ms`` and failed. It
    still waits up to ``wait_ms`` for readers, then gives up until next time, as it does
    when the turn is not free within ``turn_timeout``. Serving connections checkpoint
    on commit only past :attr:`BACKSTOP_PAGES` (if this thread stops). Several processes
    may each run one: SQLite lets one checkpoint run at a time, and the others find it
    busy."""

    BACKSTOP_PAGES = 20_000

    def __init__(self, path: str, *, interval: float = 1.0, restart_pages: int = 4_000,
                 wait_ms: int = 100, turn_timeout: float = 1.0) -> None:
        self.path, self.interval = path, interval
        self.restart_pages, self.wait_ms = restart_pages, wait_ms
        self._writer_lock = WriterLock.beside(path, timeout=turn_timeout)
        self.checkpoints = self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.wait_ms / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(conn)
                except (sqlite3.Error, DatabaseUnavailable) as exc:  # busy: next time
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One round: the log's pages and how many of them are in the database file."""
        busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        self.checkpoints += 1
        if not busy and pages >= self.restart_pages:
            with self._writer_lock:
                busy, pages, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()[0]
            self.restarts += not busy
        return pages, copied
