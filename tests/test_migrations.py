"""Schema migrations, on SQLite and PostgreSQL: the migrations at head build exactly the
models' schema, an empty database is brought to head by the first command, and any other
database not at head is refused (``serve`` included) until ``carbon-ledger db upgrade``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, pool, text

from api.cli.main import main
from chain.nodes import free_port
from ledger.store.models import UPDATED_IN_PLACE, Base
from ledger.store.schema import alembic_config, built_on, schema_status, upgrade_schema


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def differences(engine: Engine) -> list[object]:
    """What autogenerate would change to make the database match the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": True,
            "include_object": built_on(conn.dialect.name)})
        return list(compare_metadata(context, Base.metadata))


def missing_checks(engine: Engine) -> list[str]:
    """CHECK constraints of the models the database lacks (autogenerate does not see them)."""
    inspector = inspect(engine)
    missing = []
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_check_constraints(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.constraints
                    if c.__visit_name__ == "check_constraint" and c.name not in have]
    return missing


def run_alembic(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def test_migrations_at_head_build_exactly_the_models_schema(empty_db_url: str) -> None:
    with engine_for(empty_db_url) as engine:
        before, after = upgrade_schema(engine)
        assert before.empty and after.up_to_date
        assert differences(engine) == []
        assert missing_checks(engine) == []
        run_alembic(engine, "downgrade", "base")  # every downgrade runs, and undoes it all
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_schema(engine)
        assert differences(engine) == [] and schema_status(engine).up_to_date


def test_the_comparison_sees_a_schema_that_differs(empty_db_url: str) -> None:
    with engine_for(empty_db_url) as engine:
        upgrade_schema(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_entries_citizen"))
        assert [d[0] for d in differences(engine)] == ["add_index"]  # type: ignore[index]


INTAKE_TABLES = ("activity_records", "ledger_entries", "daily_totals", "monthly_totals",
                 "citizen_totals")


def test_intake_tables_keep_foreign_keys_on_sqlite_only(empty_db_url: str) -> None:
    """Migration 0022: the tables intake writes for every record have their foreign keys
    on SQLite and none on PostgreSQL. Checked here, not by the comparison: Alembic pairs a
    reflected key with the model's by its columns before any filter, so it would not see
    one put back on PostgreSQL."""
    with engine_for(empty_db_url) as engine:
        upgrade_schema(engine)
        sqlite = engine.dialect.name == "sqlite"
        keys = {(table, tuple(fk["constrained_columns"]), fk["referred_table"])
                for table in INTAKE_TABLES for fk in inspect(engine).get_foreign_keys(table)}
        expected = {("activity_records", ("citizen_id",), "citizens"),
                    ("activity_records", ("partner_id",), "partners"),
                    ("activity_records", ("duplicate_of",), "activity_records"),
                    *((t, ("citizen_id",), "citizens") for t in INTAKE_TABLES[1:])}
        assert keys == (expected if sqlite else set())
        assert inspect(engine).get_foreign_keys("balances")  # the others stay on both


def test_totals_updated_in_place_leave_room_on_postgresql(pg_url: str) -> None:
    """Migration 0023: the two citizen-keyed tables intake updates in place for every
    submission leave half of each page free on PostgreSQL (so an update's new row version
    is heap-only), as the models declare (Alembic does not compare storage parameters)."""
    declared = {t.name for t in Base.metadata.sorted_tables
                if t.dialect_options["postgresql"]["with"] == UPDATED_IN_PLACE["postgresql_with"]}
    assert declared == {"balances", "citizen_totals"}
    with engine_for(pg_url) as engine:
        upgrade_schema(engine)
        with engine.connect() as conn:
            options = dict(conn.execute(text(
                "SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL")).all())
    assert options == {name: ["fillfactor=50"] for name in declared}


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


def test_an_empty_database_is_brought_to_head_by_the_first_command(
        empty_db_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", empty_db_url)
    code, said = cli(capsys, "admin", "citizen-add", "--data-dir", tmp_path)
    assert code == 0, said
    code, said = cli(capsys, "db", "current", "--data-dir", tmp_path)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert code == 0 and f"current {head}, head {head}" in said


def previous_revision() -> str:
    scripts = ScriptDirectory.from_config(alembic_config())
    down = scripts.get_revision(scripts.get_current_head()).down_revision
    if not isinstance(down, str):
        pytest.skip("a single revision: no database can be behind head")
    return down


def behind_head(engine: Engine) -> None:
    run_alembic(engine, "upgrade", previous_revision())


def made_before_migrations(engine: Engine) -> None:
    """0001's tables and no version, as ``create_all`` left data dirs before migrations."""
    run_alembic(engine, "upgrade", "0001")
    run_alembic(engine, "stamp", "base")


def serve(tmp_path: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    """``carbon-ledger serve`` in a process of its own; a server that starts is a failure
    (it would never return: the timeout ends it)."""
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", "serve", "--data-dir",
         str(tmp_path), "--chain", "tester", "--port", str(free_port())],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CARBON_LEDGER_")},
             "CARBON_LEDGER_DATABASE_URL": db_url},
        capture_output=True, text=True, timeout=60)


def test_serve_refuses_a_database_behind_head(empty_db_url: str, tmp_path: Path) -> None:
    with engine_for(empty_db_url) as engine:
        behind_head(engine)
    refused = serve(tmp_path, empty_db_url)
    assert refused.returncode == 6, refused.stderr
    assert "run `carbon-ledger db upgrade`" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("make_stale", [behind_head, made_before_migrations])
def test_a_stale_database_is_refused_untouched_until_db_upgrade(
        empty_db_url: str, tmp_path: Path, monkeypatch, capsys, make_stale) -> None:
    with engine_for(empty_db_url) as engine:
        make_stale(engine)
        stale = schema_status(engine)
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", empty_db_url)
    code, said = cli(capsys, "admin", "citizen-add", "--data-dir", tmp_path)
    assert code == 6 and "run `carbon-ledger db upgrade`" in said
    with engine_for(empty_db_url) as engine:
        assert schema_status(engine) == stale
    code, said = cli(capsys, "db", "upgrade", "--data-dir", tmp_path)
    assert code == 0 and f"upgraded from {stale.current or 'an empty database'} to" in said
    assert cli(capsys, "db", "current", "--data-dir", tmp_path)[0] == 0
    assert cli(capsys, "admin", "citizen-add", "--data-dir", tmp_path)[0] == 0
    with engine_for(empty_db_url) as engine:
        assert differences(engine) == []


def test_a_database_migrated_by_newer_code_is_refused_and_left_alone(
        empty_db_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    with engine_for(empty_db_url) as engine:
        upgrade_schema(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", empty_db_url)
    for args in (["db", "upgrade"], ["db", "current"], ["admin", "citizen-add"]):
        code, said = cli(capsys, *args, "--data-dir", tmp_path)
        assert code == 6 and "9999, which this code does not know" in said, said
    with engine_for(empty_db_url) as engine:
        assert schema_status(engine).current == "9999"


@pytest.mark.parametrize(("url", "code"), [
    ("nonsense", 2),
    ("mysql://someone:s3cret@127.0.0.1:1/ledger", 2),  # no driver installed
    ("postgresql+psycopg://someone:s3cret@127.0.0.1:1/ledger", 6),  # nothing listens there
])
def test_a_bad_database_url_is_one_line_naming_it(url: str, code: int, tmp_path: Path,
                                                  monkeypatch, capsys) -> None:
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", url)
    for args in (["db", "current"], ["db", "upgrade"], ["admin", "citizen-add"]):
        got, said = cli(capsys, *args, "--data-dir", tmp_path)
        assert (got, "database_url:" in said, "s3cret" in said) == (code, True, False), said
