"""The one place that opens database engines and sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ledger.models import Base


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    # Enough connections for a server's thread pool (FastAPI runs sync routes on 40).
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 40)
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.pop("pool_size"), kwargs.pop("max_overflow")
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

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
    return create_engine(url, pool_pre_ping=True, **kwargs)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


class Database:
    """Engine plus session factory; ``session()`` is a unit of work that commits or rolls
    back whole, so nothing is ever half-written."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write_lock: bool = False) -> Iterator[Session]:
        """A transaction. ``write_lock`` takes SQLite's write lock at BEGIN, so a
        read-then-write unit of work never fails to upgrade its lock halfway."""
        with self._sessions() as s:
            if write_lock and self.is_sqlite:
                s.connection(execution_options={"sqlite_immediate": True})
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
