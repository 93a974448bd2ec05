"""Every PostgreSQL connection the ledger opens runs without JIT (at 10 M entries the
proof's entry lookup was compiled on every call: 2-17 ms of a 0.1 ms lookup), keeping the
options an operator gives in the URL."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import text

from ledger.proofs import _ENTRY_AND_BATCH
from ledger.store.database import Database, make_engine

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


def _plan(conn, **settings: str) -> str:  # type: ignore[no-untyped-def]
    for name, value in settings.items():
        conn.exec_driver_sql(f"SET {name} = {value}")
    query = _ENTRY_AND_BATCH.compile(dialect=conn.dialect)
    return "\n".join(row[0] for row in conn.exec_driver_sql(
        f"EXPLAIN (ANALYZE, COSTS OFF) {query}", {**query.params, "entry_id": bytes(32)}))


def test_no_connection_compiles_its_plans(db: Database) -> None:
    with db.reads() as conn:
        assert conn.execute(text("SHOW jit")).scalar() == "off"
        # the cost past which PostgreSQL would compile: every plan's
        assert "JIT:" not in _plan(conn, jit_above_cost="0")
        jit_available = conn.execute(text("SELECT pg_jit_available()")).scalar()
    with db.session() as s:
        assert s.execute(text("SHOW jit")).scalar() == "off"
    if jit_available:  # the control: the same plan compiled once JIT is on again
        with db.reads() as conn:
            assert "JIT:" in _plan(conn, jit="on", jit_above_cost="0")


def test_options_in_the_url_are_kept(db: Database) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    engine = make_engine(f"{url}?options={quote('-c statement_timeout=1234')}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1234ms"
            assert conn.execute(text("SHOW jit")).scalar() == "off"
    finally:
        engine.dispose()
