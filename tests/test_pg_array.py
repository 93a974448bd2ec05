"""``ledger.store.bulk.pg_array``: a list sent to PostgreSQL as its array's text form
comes back as the same values, whatever its strings hold, and a list it cannot write
that way is left to the driver."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, pool, text

from ledger.store.bulk import pg_array

TRICKY = ['a"b', "c\\d", "x y", " lead", "trail ", "NULL", "null", "é,{}", "", "{1,2}",
          "'quote'", "\\\"", "汉字", "tab\tand\nline", "\x01"]


def round_trip(url: str, values: list, sql_type: str) -> list:  # type: ignore[type-arg]
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT CAST(:v AS {sql_type}[])"),
                                {"v": pg_array(values)}).scalar_one()
    finally:
        engine.dispose()


def test_tricky_strings_and_integers_come_back_as_sent(pg_url: str) -> None:
    assert round_trip(pg_url, TRICKY, "varchar") == TRICKY
    assert round_trip(pg_url, [0, -1, 2**62, 7], "bigint") == [0, -1, 2**62, 7]
    assert round_trip(pg_url, [], "integer") == []


def test_only_integers_and_printable_strings_are_written_as_text() -> None:
    assert pg_array([1, 2]) == "{1,2}"
    assert pg_array(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'
    for values in (["tab\t"], ["\x01"], [True, 1], [1, "a"], [b"bytes"]):
        assert pg_array(values) == values  # the driver dumps these


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20), max_size=30))
def test_any_strings_come_back_as_sent(pg_url: str, values: list[str]) -> None:
    """Any text PostgreSQL can hold (UTF-8 without NUL: no lone surrogates), printable
    or not."""
    assert round_trip(pg_url, values, "text") == values
