"""The one place that opens database engines and sessions, and brings a database's schema
to the version the code expects (Alembic migrations in ``ledger/migrations``)."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import Session, sessionmaker

from ledger.errors import DatabaseUnavailable, InvalidInput, SchemaOutOfDate

MIGRATIONS = Path(__file__).parent / "migrations"
#: The tables of revision 0001: a database that has exactly these and no version table
#: was made by ``create_all`` before migrations existed, and is adopted as 0001.
BASELINE_REVISION = "0001"
# pg_advisory_xact_lock key: "carbonle" as an int64, so two processes never migrate at once.
_MIGRATION_LOCK = int.from_bytes(b"carbonle", "big") >> 1

log = logging.getLogger(__name__)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    # Enough connections for a server's thread pool (FastAPI runs sync routes on 40).
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 40)
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url, **kwargs)
        return create_engine(url, pool_pre_ping=True, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:  # ImportError: no driver
        raise InvalidInput(f"not a usable SQLAlchemy URL: {exc}", field="database_url") from exc


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    if url in ("sqlite://", "sqlite:///:memory:"):
        kwargs.pop("pool_size"), kwargs.pop("max_overflow")
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
    _create_private(engine.url.database, engine.url.query)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN reach SQLite so BEGIN IMMEDIATE works (see db docs).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _create_private(path: str | None, query: Any) -> None:
    """Create a new SQLite file owner-only (0600) before SQLite does (0644 less the umask):
    SQLite gives its -wal, -shm and journal files the database file's mode."""
    if not path or path == ":memory:" or path.startswith("file:") or "uri" in query:
        return
    if os.path.isdir(os.path.dirname(os.path.abspath(path))):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


# -- schema versions ----------------------------------------------------------------------

def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the ledger, with no ini file: the scripts ship in the
    package. ``url`` is only needed when Alembic opens the database itself."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against the code's migrations."""

    current: str | None  # the revision in alembic_version; None if there is none
    head: str
    has_tables: bool  # any ledger table at all (an empty database has none)
    known: bool  # ``current`` is one of this code's revisions (or None)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None and not self.has_tables

    def describe(self) -> str:
        if self.up_to_date:
            return f"at head {self.head}"
        if self.empty:
            return f"empty (no tables); head is {self.head}"
        if self.current is None:
            return f"has tables but no schema version (made before migrations); head is {self.head}"
        if not self.known:
            return (f"at revision {self.current}, which this code does not know (a newer "
                    f"version migrated it?); head is {self.head}")
        return f"at revision {self.current}, behind head {self.head}"


def _head(config: Config) -> str:
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "ledger/migrations has no revisions"
    return head


def _status(conn: Connection, config: Config) -> SchemaStatus:
    current = MigrationContext.configure(conn).get_current_revision()
    tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    scripts = ScriptDirectory.from_config(config)
    try:
        known = current is None or scripts.get_revision(current) is not None
    except (RevisionError, CommandError):  # the latter wraps the former, in some versions
        known = False
    return SchemaStatus(current, _head(config), bool(tables), known)


@contextmanager
def _connection(engine: Engine) -> Iterator[Connection]:
    """A connection, or :class:`DatabaseUnavailable` naming the URL (password hidden)."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to {where}: {exc.orig}",
                                  field="database_url") from exc
    with conn:
        yield conn


def schema_status(engine: Engine, *, config: Config | None = None) -> SchemaStatus:
    """The database's current revision against the code's head."""
    with _connection(engine) as conn:
        return _status(conn, config or alembic_config())


def upgrade_schema(engine: Engine, *, revision: str = "head",
                   config: Config | None = None) -> tuple[SchemaStatus, SchemaStatus]:
    """Run the migrations up to ``revision``; returns the status before and after.

    A database made by ``create_all`` before migrations existed (0001's tables, no
    version) is stamped 0001 first. On PostgreSQL an advisory lock makes concurrent
    upgrades (several hosts starting at once) take turns; the second finds nothing to do.
    """
    config = config or alembic_config()
    with _connection(engine) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # batch mode copies tables: FKs are checked at the end, not per copy
            _sqlite_pragma(conn, "foreign_keys=OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
                before = _status(conn, config)
                if not before.known:
                    raise SchemaOutOfDate(f"the database is {before.describe()}",
                                          field="schema")
                config.attributes["connection"] = conn
                if before.current is None and before.has_tables:
                    _adopt_baseline(conn, config)
                try:
                    command.upgrade(config, revision)
                except DBAPIError as exc:
                    raise SchemaOutOfDate(f"a migration to {revision} failed and was rolled back: "
                                          f"{exc.orig}", field="schema") from exc
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise SchemaOutOfDate("a migration left rows whose foreign keys do not "
                                          "hold; nothing was changed", field="schema")
                after = _status(conn, config)
        finally:
            if sqlite:
                _sqlite_pragma(conn, "foreign_keys=ON")
    return before, after


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    # On the driver's connection: through SQLAlchemy it would begin a transaction, and
    # SQLite ignores this pragma inside one.
    conn.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


def _adopt_baseline(conn: Connection, config: Config) -> None:
    script = ScriptDirectory.from_config(config).get_revision(BASELINE_REVISION)
    baseline = set(getattr(script.module, "TABLES", ()))
    tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    if tables != baseline:
        raise SchemaOutOfDate(f"the database has tables but no schema version, and they are "
                              f"not revision {BASELINE_REVISION}'s: differing "
                              f"{', '.join(sorted(tables ^ baseline))}", field="schema")
    command.stamp(config, BASELINE_REVISION)


def create_schema(engine: Engine) -> None:
    """Make the database usable by this code: an empty one is migrated to head; one at
    head is left alone; any other is refused (run ``carbon-ledger db upgrade``), never
    upgraded behind the operator's back."""
    status = schema_status(engine)
    if status.up_to_date:
        return
    if status.empty:
        upgrade_schema(engine)
        return
    raise SchemaOutOfDate(f"the database is {status.describe()}: run `carbon-ledger db upgrade`",
                          field="schema")


def new_revision(rev_id: str, message: str, scratch_url: str) -> None:
    """For developers: autogenerate revision ``rev_id`` from the models' changes, against
    a scratch database (``scratch_url``) first migrated to the current head."""
    engine = create_engine(scratch_url)
    try:
        upgrade_schema(engine)
        config = alembic_config()
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.revision(config, message, autogenerate=True, rev_id=rev_id)
    finally:
        engine.dispose()


# -- sessions -----------------------------------------------------------------------------

class Database:
    """Engine plus session factory; ``session()`` is a unit of work that commits or rolls
    back whole, so nothing is ever half-written."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        path = self.engine.url.database if self.is_sqlite else None
        #: The SQLite file, or None (PostgreSQL, or SQLite in memory).
        self.sqlite_file = path if path and path != ":memory:" else None
        self._writer_lock = WriterLock.beside(self.sqlite_file) if self.sqlite_file else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write_lock: bool = False) -> Iterator[Session]:
        """A transaction. ``write_lock`` takes SQLite's write lock at BEGIN, so a
        read-then-write unit of work never fails to upgrade its lock halfway. PostgreSQL
        has no such lock to take: there the units of work lock the rows they decide on
        (``SELECT … FOR UPDATE``) and take amounts with conditional UPDATEs."""
        with ExitStack() as stack:
            if write_lock and self._writer_lock is not None:
                stack.enter_context(self._writer_lock)
            s = stack.enter_context(self._sessions())
            if write_lock and self.is_sqlite:
                s.connection(execution_options={"sqlite_immediate": True})
            try:
                yield s
                s.commit()
            except DataError as exc:  # a value the column cannot hold (PostgreSQL checks)
                s.rollback()
                raise InvalidInput(f"a value does not fit the database: {exc.orig}",
                                   field="database") from exc
            except BaseException:
                s.rollback()
                raise

    @contextmanager
    def background_checkpoints(self, *, interval: float = 1.0) -> Iterator[WalCheckpointer | None]:
        """For a serving process on a SQLite file: its connections leave the write-ahead
        log to a :class:`WalCheckpointer` thread instead of checkpointing when they commit."""
        path = self.sqlite_file
        if path is None:
            yield None
            return

        @event.listens_for(self.engine, "connect")
        def _backstop(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.BACKSTOP_PAGES}")

        self.engine.dispose()  # pooled connections were opened with the default
        checkpointer = WalCheckpointer(path, interval=interval)
        checkpointer.start()
        try:
            yield checkpointer
        finally:
            checkpointer.stop()
            event.remove(self.engine, "connect", _backstop)
            self.engine.dispose()


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
