"""Benchmark the public city report over HTTP on a city's year of rollups, before and after.

    python scripts/bench_city_report.py [--postgres] [--entries 10000000] [--citizens 500000]
                                        [--before REV] [--rounds 3] [--calls 200]

``GET /v1/reports/city`` reads only the city's rollups (``city_cells``, ``city_gaps``,
``city_presence``: :mod:`ledger.store.rollups`), never the ledger's entries. So this script
writes those three tables directly, as the intake would have kept them for a year of
``--entries`` credits (default 10,000,000) of ``--citizens`` citizens (500,000): each
credit on a uniformly random day of the year before the last closed day, of a uniformly
random citizen, of one of methodology v2's 21 behaviours weighted as ``bench_scale.py``
weights them; a citizen counted once per cell, the gaps worked out from the presence rows
as the migration's rebuild does. It takes a few minutes instead of
``bench_scale.py``'s hours, and the report's work is the same: it depends on the cells and
gap rows of the window, not on how the rows came to be.

Then, in ``--rounds`` interleaved rounds, for each code (``--before REV``, checked out
beside this checkout, then this checkout), with the host reference printed beside it:
``carbon-ledger serve --workers 2 --no-sealer`` over that database, and, on one
kept-alive connection, as a client sees them (HTTP and the ~1 MB answer included):

1. **first asks**: ``--calls`` different windows, each a year by day (ending 0, 1, 2, …
   days before the last closed day), one after another, after one unmeasured call of
   another window: no answer asked before;
2. **asked again**: the year to the last closed day, ``--calls`` times after one
   unmeasured call;
3. **asked again with its tag**: the same with ``If-None-Match`` set to the answer's
   ``ETag`` (a code that does not tag its answers answers in full).

Prints p50 and p99 of each (#24 item 3's goal: p99 <= 50 ms for a year by day at
10,000,000 entries). ``--postgres`` runs it on a throwaway PostgreSQL cluster (as
``bench_api.py --postgres``), else on a SQLite file. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from bench_api import (  # noqa: E402
    ask_city_report,
    host_reference,
    percentile,
    postgres_database,
    serving,
    start,
    stop,
    year_by_day,
)
from bench_scale import BEHAVIOURS  # noqa: E402
from bench_worktree import is_commit, worktree  # noqa: E402

from ledger.reports import EPOCH, closed_through  # noqa: E402
from ledger.store import rollups  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.schema import upgrade_schema  # noqa: E402

SCOPES = [b.code for b in BEHAVIOURS] + [rollups.ANY]
DAY_BITS = 12  # days of the year, in a packed key
CITIZEN_BITS = 24


def build(db: Database, entries: int, citizens: int, last: int, days: int = 365
          ) -> dict[str, int]:
    """The city's rollups of ``days`` days to ``last`` (a day number) at ``entries``
    credits a year, written straight into the three tables; how many rows each got."""
    rng = np.random.default_rng(20261208)
    first = last - days + 1
    entries = entries * days // 365
    weights = np.array([b.weight for b in BEHAVIOURS], dtype=float)
    day = rng.integers(0, days, entries, dtype=np.int64)
    citizen = rng.integers(1, citizens + 1, entries, dtype=np.int64)
    behaviour = rng.choice(len(BEHAVIOURS), entries, p=weights / weights.sum()).astype(np.int64)
    grams = rng.integers(1, 2000, entries, dtype=np.int64)
    del weights

    def pack(scope: Any, who: Any, days: Any) -> Any:
        return (scope << (CITIZEN_BITS + DAY_BITS)) | (who << DAY_BITS) | days

    # presence: (scope, citizen, day) once each, sorted by that key (the table's)
    presence = np.unique(np.concatenate([
        pack(behaviour, citizen, day),
        pack(np.full(entries, len(SCOPES) - 1, dtype=np.int64), citizen, day)]))
    scope = presence >> (CITIZEN_BITS + DAY_BITS)
    who = (presence >> DAY_BITS) & ((1 << CITIZEN_BITS) - 1)
    days_in = presence & ((1 << DAY_BITS) - 1)
    # cells: entries and grams by (day, behaviour); citizens from the behaviour's presence
    cell = day * len(SCOPES) + behaviour
    keys, at = np.unique(cell, return_inverse=True)
    counts = np.bincount(at)
    sums = np.bincount(at, weights=grams).astype(np.int64)
    del day, citizen, behaviour, grams, cell, at
    own = scope < len(SCOPES) - 1
    present_keys, present = np.unique(days_in[own] * len(SCOPES) + scope[own], return_counts=True)
    in_cell = dict(zip(present_keys.tolist(), present.tolist(), strict=True))
    cells = [(int(k // len(SCOPES)) + first, SCOPES[int(k % len(SCOPES))], 0, int(n), int(g),
              in_cell[int(k)]) for k, n, g in zip(keys, counts, sums, strict=True)]
    # gaps: each presence row's days since the citizen's last in the scope, counted
    same = np.concatenate([[False], (scope[1:] == scope[:-1]) & (who[1:] == who[:-1])])
    gap = np.where(same, days_in - np.concatenate([[0], days_in[:-1]]), rollups.NO_PREVIOUS)
    gap_keys, gap_counts = np.unique(((scope << DAY_BITS) | days_in) << 31 | gap, return_counts=True)
    gaps = [(SCOPES[int(k >> (31 + DAY_BITS))], int((k >> 31) & ((1 << DAY_BITS) - 1)) + first,
             int(k & ((1 << 31) - 1)), 0, int(n)) for k, n in zip(gap_keys, gap_counts, strict=True)]

    def presence_rows() -> Iterator[tuple[str, int, int]]:
        for s, c, d in zip(scope.tolist(), who.tolist(), days_in.tolist(), strict=True):
            yield SCOPES[s], c, d + first

    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        postgres = db.engine.dialect.name == "postgresql"
        indexes: list[str] = []
        if not postgres:  # a throwaway file: no journal while it is filled, indexes after
            cursor.execute("PRAGMA journal_mode=OFF")
            cursor.execute("PRAGMA synchronous=OFF")
            found = cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name IN ('city_cells', 'city_gaps', 'city_presence')").fetchall()
            for name, _ in found:
                cursor.execute(f"DROP INDEX {name}")
            indexes = [sql for _, sql in found]
            cursor.execute("BEGIN")  # one transaction (the engine's connections autocommit)
        for table, columns, rows in (
                ("city_cells", "day, behaviour, part, entries, grams, citizens", iter(cells)),
                ("city_gaps", "scope, day, gap, part, citizens", iter(gaps)),
                ("city_presence", "scope, citizen_id, day", presence_rows())):
            if postgres:
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns.split(",")))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        for sql in indexes:
            cursor.execute(sql)
        raw.commit()
        if postgres:
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            raw.driver_connection.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
        else:
            cursor.execute("ANALYZE")
            raw.commit()
            cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()
    return {"city_cells": len(cells), "city_gaps": len(gaps), "city_presence": len(presence)}


def one_round(code: Path, env: dict[str, str], rpc: str, data_dir: Path, calls: int,
              last: date) -> dict[str, Any]:
    with serving(rpc, env, data_dir / "serve.log", code=code) as (base, _), \
            httpx.Client(base_url=base, timeout=120) as client:
        ask_city_report(client, [year_by_day(last - timedelta(days=calls))])  # not measured
        first, _ = ask_city_report(client, [year_by_day(last - timedelta(days=n))
                                            for n in range(calls)])
        again, answer = ask_city_report(client, [year_by_day(last)] * (calls + 1))
        tagged, told = ask_city_report(client, [year_by_day(last)] * (calls + 2), tagged=True)
    rows = answer.json()["rows"]
    return {"first": first, "again": again[1:], "tagged": tagged[2:], "status": told.status_code,
            "rows": len(rows), "withheld": sum(r["withheld"] for r in rows),
            "bytes": len(answer.content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--citizens", type=int, default=500_000)
    parser.add_argument("--before", default=None, help="a revision to measure beside this one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200, help="of each kind a round (p99 is "
                        "the second slowest of 200, the slowest of 100 or fewer)")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.citizens < 1 << CITIZEN_BITS or args.entries < 1 or not 1 <= args.calls <= 3000:
        parser.error(f"--citizens from 1 to {(1 << CITIZEN_BITS) - 1:,}; --entries at least 1; "
                     "--calls from 1 to 3,000")
    if args.before and not is_commit(args.before):
        parser.error(f"--before: {args.before!r} names no commit of this repository")

    with tempfile.TemporaryDirectory(prefix="bench-city-") as tmp:
        data_dir = Path(tmp) / "state"
        data_dir.mkdir(mode=0o700)
        url = (postgres_database(durable=False, prefix="city") if args.postgres
               else f"sqlite:///{data_dir / 'ledger.db'}")
        db = Database(url)
        upgrade_schema(db.engine)
        last = closed_through(int(time.time()))
        started = time.perf_counter()
        # the year of every window asked, the last ending --calls days before the last one
        counts = build(db, args.entries, args.citizens, (last - EPOCH).days, 365 + args.calls + 1)
        db.engine.dispose()
        print(f"{'PostgreSQL' if args.postgres else 'SQLite'}: the rollups of {args.entries:,} "
              f"credits a year of {args.citizens:,} citizens, {366 + args.calls} days to {last}, in "
              f"{time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{n:,} {t}" for t, n in counts.items()), flush=True)
        env = {**os.environ, "CARBON_LEDGER_DATA_DIR": str(data_dir),
               "CARBON_LEDGER_RATE_LIMIT": "1000000/minute", "CARBON_LEDGER_DATABASE_URL": url}
        node = start(["node"], env=env, read_stdout=True)
        rpc = node.stdout.readline().strip()  # type: ignore[union-attr]
        try:
            if args.before:
                with worktree(args.before, Path(tmp) / "before") as before:
                    measure(args, [("before", before), ("after", ROOT)], env, rpc, data_dir,
                            last)
            else:
                measure(args, [("this", ROOT)], env, rpc, data_dir, last)
        finally:
            stop(node)


def measure(args: argparse.Namespace, codes: list[tuple[str, Path]], env: dict[str, str],
            rpc: str, data_dir: Path, last: date) -> None:
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in codes}
    for n in range(args.rounds):
        for name, code in codes:
            reference = host_reference(data_dir)
            got = one_round(code, env, rpc, data_dir, args.calls, last)
            results[name].append(got)
            print(f"round {n + 1} {name}: host reference {reference:.1f} ms; "
                  + "; ".join(f"{k} p50 {statistics.median(got[k]):.1f} / p99 "
                              f"{percentile(got[k], 0.99):.1f} ms"
                              for k in ("first", "again", "tagged"))
                  + f" (tagged: {got['status']}); {got['rows']:,} rows, {got['withheld']} "
                  f"withheld, {got['bytes']:,} bytes", flush=True)
    print(f"\nmedians over {args.rounds} rounds of {args.calls} calls each, ms "
          f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC):")
    print("| code | first asks p50 / p99 | asked again p50 / p99 | with its tag p50 / p99 |")
    print("| --- | --- | --- | --- |")
    for name, rounds in results.items():
        cells = []
        for k in ("first", "again", "tagged"):
            cells.append(f"{statistics.median(statistics.median(r[k]) for r in rounds):.1f} / "
                         f"{statistics.median(percentile(r[k], 0.99) for r in rounds):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
