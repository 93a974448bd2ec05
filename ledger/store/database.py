"""The one place that opens database engines and sessions: a :class:`Database` is an engine
plus units of work that commit or roll back whole. SQLite gets WAL, foreign keys, a busy
timeout and the writers' turn (:mod:`ledger.store.sqlite`)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import Session, sessionmaker

from ledger.errors import DatabaseUnavailable, InvalidInput
from ledger.store.sqlite import WalCheckpointer, WriterLock


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    # Enough connections for a server's thread pool (FastAPI runs sync routes on 40).
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 40)
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url, **kwargs)
        return create_engine(url, pool_pre_ping=True, **_postgres_options(url, kwargs))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:  # ImportError: no driver
        raise InvalidInput(f"not a usable SQLAlchemy URL: {exc}", field="database_url") from exc


#: Set on every PostgreSQL connection as it opens (after any ``options`` in the URL).
#: No JIT: the ledger's statements are short lookups and writes, and PostgreSQL compiles
#: any plan whose estimated cost passes ``jit_above_cost``. The proof's entry lookup
#: passes it at about 10 M entries (its never-run arm for unsealed entries is estimated at
#: a third of the table), and compiling cost 2-17 ms of a lookup that runs in 0.1 ms:
#: proof GETs fell twentyfold (docs/benchmarks.md, "Cold proofs at 10 M").
POSTGRES_OPTIONS = "-c jit=off"


def _postgres_options(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    connect_args = dict(kwargs.pop("connect_args", {}))
    given = (connect_args.get("options") or make_url(url).query.get("options")
             or os.environ.get("PGOPTIONS", ""))  # libpq's own default, which this replaces
    connect_args["options"] = f"{given} {POSTGRES_OPTIONS}".strip()
    return {**kwargs, "connect_args": connect_args}


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
    SQLite gives its -wal, -shm and journal files the database file's mode.

    A file that exists is never opened here: SQLite's locks are POSIX record locks, which
    a process loses on *every* descriptor of the file when it closes *any* one of them.
    Opening and closing the file beside live connections of this process (a second
    :class:`Database` on it) dropped their shared lock, so another process closing its
    last connection took itself for the last one, checkpointed and deleted the
    write-ahead log under them: they went on reading, and writing, a log no one else saw."""
    if not path or path == ":memory:" or path.startswith("file:") or "uri" in query:
        return
    if os.path.isdir(os.path.dirname(os.path.abspath(path))):
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


class _OutageOnOneLine(logging.Filter):
    """SQLAlchemy's pool logs a traceback when it cannot close a cursor or reset a
    connection the database has already dropped; the failure itself reaches the caller as
    :class:`DatabaseUnavailable`, so here it is one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], OUTAGES + _DRIVER_OUTAGES):
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {first_line(error)}"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


#: What the driver raises when the database cannot be reached or drops the connection, for
#: code that reads through the engine rather than a session (``session()`` turns these
#: into :class:`DatabaseUnavailable` itself).
OUTAGES = (OperationalError, InterfaceError)
_DRIVER_OUTAGES: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)
try:
    import psycopg

    _DRIVER_OUTAGES += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # PostgreSQL support not installed
    pass
for _pool in ("sqlalchemy.pool.impl.QueuePool", "sqlalchemy.pool.impl.NullPool",
              "sqlalchemy.pool.impl.SingletonThreadPool", "sqlalchemy.pool.base"):
    logging.getLogger(_pool).addFilter(_OutageOnOneLine())


class Database:
    """Engine plus session factory; ``session()`` is a unit of work that commits or rolls
    back whole, so nothing is ever half-written."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # reads() on the same pool; PostgreSQL's in autocommit (SQLite's are transactions)
        self._reader = (self.engine if self.is_sqlite else
                        self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        path = self.engine.url.database if self.is_sqlite else None
        #: The SQLite file, or None (PostgreSQL, or SQLite in memory).
        self.sqlite_file = path if path and path != ":memory:" else None
        self._writer_lock = WriterLock.beside(self.sqlite_file) if self.sqlite_file else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write_lock: bool = False, snapshot: bool = False) -> Iterator[Session]:
        """A transaction. ``write_lock`` takes SQLite's write lock at BEGIN, so a
        read-then-write unit of work never fails to upgrade its lock halfway. PostgreSQL
        has no such lock to take: there the units of work lock the rows they decide on
        (``SELECT … FOR UPDATE``) and take amounts with conditional UPDATEs.

        ``snapshot``: a read-only transaction whose every query sees the same committed
        state (REPEATABLE READ on PostgreSQL, where the default READ COMMITTED lets a
        commit between two queries be half seen; SQLite's read transactions already are).
        It ends in a rollback (PostgreSQL refuses writes in it; on SQLite anything written
        would be undone), and a connection lost after the reads is no error: under HTTP
        the answer may already be on its way.

        A database that cannot be reached, or that drops the connection, raises
        :class:`DatabaseUnavailable` (a 503 over HTTP, exit 6 on the CLI): nothing of the
        unit of work was committed unless the failure came during COMMIT itself, when
        whether it was is unknown, and a retry with the same idempotency key or signed
        body is the safe answer."""
        with ExitStack() as stack:
            if write_lock and self._writer_lock is not None:
                stack.enter_context(self._writer_lock)
            s = stack.enter_context(self._sessions())
            try:
                if write_lock and self.is_sqlite:
                    s.connection(execution_options={"sqlite_immediate": True})
                elif snapshot and not self.is_sqlite:
                    s.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                    "postgresql_readonly": True})
                yield s
                if snapshot:  # read only: nothing to commit, the answer whole
                    with contextlib.suppress(*OUTAGES):
                        s.rollback()
                else:
                    s.commit()
            except DataError as exc:  # a value the column cannot hold (PostgreSQL checks)
                s.rollback()
                raise InvalidInput(f"a value does not fit the database: {exc.orig}",
                                   field="database") from exc
            except OUTAGES as exc:
                with contextlib.suppress(*OUTAGES):
                    s.rollback()  # the connection may be gone: then there is nothing to undo
                raise DatabaseUnavailable(f"the database did not answer: "
                                          f"{first_line(exc.orig)}", field="database") from exc
            except BaseException:
                s.rollback()
                raise

    @contextmanager
    def reads(self) -> Iterator[Connection]:
        """A Core connection for reads that need no more than each statement's own snapshot
        (a proof: its entry and batch in one statement, then tree rows that never change
        once written), with none of an ORM session's work: a proof is a hot path, where the
        session's bookkeeping cost about as much as its statements (docs/benchmarks.md,
        "Cold proofs").

        On PostgreSQL the connection is in autocommit: no transaction is opened, so only
        for reads (a write would commit at once). On SQLite its first statement begins a
        read transaction (one snapshot), rolled back at the end. A database that cannot be
        reached raises :class:`DatabaseUnavailable`, as :meth:`session` does."""
        try:
            with self._reader.connect() as conn:
                yield conn
        except OUTAGES as exc:
            raise DatabaseUnavailable(f"the database did not answer: {first_line(exc.orig)}",
                                      field="database") from exc

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


def first_line(error: object) -> str:
    """A driver error's first line, at most 200 characters: what a log line or a problem shows."""
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def driver_rows(connection: Connection, statement: Any) -> list[tuple[Any, ...]]:
    """``statement``'s rows (its parameters bound in it) as the driver gives them, tuples,
    for reads of many plain columns (integers, strings, bytes) that need none of
    SQLAlchemy's result processing: its ``Row`` objects cost about 0.7 us a row, often
    more than the database's read of it."""
    query = statement.compile(dialect=connection.dialect)
    params = (tuple(query.params[name] for name in query.positiontup) if query.positiontup
              else query.params)
    result = connection.exec_driver_sql(str(query), params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()
