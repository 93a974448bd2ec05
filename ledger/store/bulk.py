"""Many rows written by the driver, in the caller's transaction: for the ledger's bulk
inserts, whose columns (integers, strings, bytes) need none of SQLAlchemy's per-row
parameter handling, which costs more than the database's insert of the row. SQLite
takes them by the driver's ``executemany``; PostgreSQL by one binary ``COPY``, where
psycopg formats the rows in C (docs/benchmarks.md: ingest on PostgreSQL, seal
throughput)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Table, text


def pg_array(values: Sequence[Any]) -> Any:
    """``values`` as one PostgreSQL array parameter, for SQL that casts it to its type
    (``CAST(:x AS integer[])``): integers, or printable strings, as the array's text
    form, written by orjson in C. Any other list is returned as it is, for psycopg to
    dump.

    For integers, and for strings without control characters (intake's texts are
    printable: :func:`ledger.records.parse_record`), a JSON list is PostgreSQL's array
    literal once its brackets are braces: the only escapes JSON writes in such strings,
    ``\\"`` and ``\\\\``, are read the same by both. psycopg dumps a list in a Python
    loop a value (its text form also matches each string against a pattern): about 1 ms
    a list of 1,000, 25-35 ms of a 1,000-record submission's locked CPU on PostgreSQL
    (docs/benchmarks.md, "Intake on PostgreSQL without foreign keys, its lists as
    text"). The parameter stays a constant the planner sees, so it knows how many keys a
    join has (a JSON list read by ``json_array_elements`` hid that, and young statistics
    then planned hash joins over whole tables)."""
    kinds = set(map(type, values))  # C loops: a check a value in Python cost ~3 ms
    if kinds <= {int} or (kinds == {str} and "".join(values).isprintable()):
        return "{" + orjson.dumps(values).decode()[1:-1] + "}"
    return list(values)


def pg_columns(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """PostgreSQL: each column of ``rows`` as one array parameter (:func:`pg_array`),
    named ``names`` in column order."""
    return {name: pg_array([row[i] for row in rows]) for i, name in enumerate(names)}


# COPY's column types, found once per table and columns
_COPY_TYPES: dict[tuple[str, tuple[str, ...]], list[str]] = {}


def insert_rows(connection: Connection, table: Table, columns: Sequence[str],
                rows: Iterable[tuple[Any, ...]]) -> None:
    """``rows`` (tuples in ``columns`` order) into ``table``: ``executemany`` on SQLite,
    a binary COPY on PostgreSQL (:func:`copy_rows`), in the rows' order either way."""
    if connection.dialect.name != "sqlite":
        copy_rows(connection, table, columns, rows)
        return
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                           f"VALUES ({', '.join('?' * len(columns))})", rows)
    finally:
        cursor.close()


def copy_rows(connection: Connection, table: Table, columns: Sequence[str],
              rows: Iterable[tuple[Any, ...]]) -> None:
    """``rows`` into ``table`` by one binary COPY (PostgreSQL, psycopg). COPY takes the
    rows in order (so intake's entries draw their seq in the order of its decision) and
    fires the same constraints and triggers as INSERT."""
    key = (table.name, tuple(columns))
    types = _COPY_TYPES.get(key)
    if types is None:  # VARCHAR(32) -> varchar: the type's name as COPY knows it
        types = _COPY_TYPES[key] = [
            str(table.c[name].type.compile(dialect=connection.dialect)).split("(")[0].lower()
            for name in columns]
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN "  # type: ignore[attr-defined]
                         "(FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def update_column(connection: Connection, table: str, key: str, column: str, pg_type: str,
                  rows: Sequence[tuple[Any, Any]]) -> None:
    """Set ``column`` of ``table`` for each (key value, new value) of ``rows``: the driver's
    ``executemany`` on SQLite, one statement over two arrays on PostgreSQL (``pg_type`` the
    column's, e.g. ``bytea``; the key is a bigint), not one statement a row."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                                   [(value, at) for at, value in rows])
        return
    connection.execute(text(
        f"UPDATE {table} AS t SET {column} = v.value FROM unnest(CAST(:keys AS bigint[]), "
        f"CAST(:values AS {pg_type}[])) AS v(key, value) WHERE t.{key} = v.key"),
        {"keys": [at for at, _ in rows], "values": [value for _, value in rows]})


def fill_entry_columns(connection: Connection,
                       columns: Sequence[tuple[str, str, Callable[[bytes], Any]]], *,
                       chunk: int = 20_000) -> None:
    """Fill ``ledger_entries``' ``columns`` (name, PostgreSQL type, the value from an
    entry's leaf in its ABI form) from the leaves, a chunk of entries at a time: the
    downgrades of the migrations that moved columns into the leaf (0018, 0021)."""
    from ledger.leaf import expand_leaf

    after = -1
    while rows := connection.execute(text(
            "SELECT seq, leaf FROM ledger_entries WHERE seq > :after ORDER BY seq LIMIT :n"),
            {"after": after, "n": chunk}).all():
        after = rows[-1][0]
        leaves = [(seq, expand_leaf(bytes(leaf))) for seq, leaf in rows]
        for column, pg_type, value in columns:
            update_column(connection, "ledger_entries", "seq", column, pg_type,
                          [(seq, value(leaf)) for seq, leaf in leaves])
