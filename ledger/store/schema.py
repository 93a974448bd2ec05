"""A database's schema against the code's: Alembic migrations in ``ledger/store/migrations``,
the status of a database, upgrades (with a lock so two hosts never migrate at once) and the
refusal to run on a schema that is not this version's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ledger.errors import DatabaseUnavailable, SchemaOutOfDate
from ledger.store.database import first_line
from ledger.store.locks import MIGRATION_LOCK

MIGRATIONS = Path(__file__).parent / "migrations"
#: The tables of revision 0001: a database that has exactly these and no version table
#: was made by ``create_all`` before migrations existed, and is adopted as 0001.
BASELINE_REVISION = "0001"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the ledger, with no ini file: the scripts ship in the
    package. ``url`` is only needed when Alembic opens the database itself."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def built_on(dialect: str) -> Any:
    """Alembic's ``include_object`` for a database of ``dialect``: a model's object whose
    DDL is for another dialect only (SQLAlchemy's ``ddl_if``, e.g.
    :func:`ledger.store.models.intake_key`) is not expected in it. Objects the database
    has are all compared, but Alembic pairs a reflected foreign key with a model's by its
    columns before it filters, so one the database has against a model's for another
    dialect goes unseen (``tests/test_migrations.py`` checks those keys directly)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        return reflected or condition is None or condition.dialect in (None, dialect)

    return include


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
    assert head is not None, "ledger/store/migrations has no revisions"
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
    try:
        with conn:  # closing rolls back, which fails too on a connection that dropped
            yield conn
    except (OperationalError, InterfaceError) as exc:  # the connection dropped midway
        raise DatabaseUnavailable(f"{where} stopped answering: "
                                  f"{first_line(exc.orig)}",
                                  field="database_url") from exc


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
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
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
