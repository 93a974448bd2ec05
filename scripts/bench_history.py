"""Benchmark the reads that grew with history (#24 items 3 and 5), the old code against this one.

    python scripts/bench_history.py [--n 1000000] [--citizens 5000] [--rounds 5]
                                    [--calls 200] [--slow-calls 5] [--after DIR]
                                    [--before-report REV] [--before-pages REV]
                                    [--before-schema MIGRATION]
                                    [--cache DIR] [--postgres]
                                    [--ledger FILE] [--only report|pages]

Builds ONE ledger of N credits (or reuses the one kept in ``--cache`` for this N and
citizens on SQLite) with the code of ``--after`` (default: this checkout), through the
project's own intake (``submit_records``: every rule on, each submission decided at the
time it would have been received): a year ending three days ago at a constant rate, in
time order, of ``--citizens`` citizens' walks, rides, bus and metro trips and meals (six
behaviours of methodology v2 from four partners, quantities as ``bench_scale.py`` draws
them), sent by each partner after each stretch of at most a day and 5,000 records, in
submissions of at most 1,000. Not sealed: neither read looks at batches. Not timed.

Then, in ``--rounds`` interleaved rounds (before, after, before, after, ...; each round
begins with a *host reference*, a fixed keccak loop's milliseconds, so a busier stretch of
the shared host shows), each measurement in a fresh child process that imports the code
it measures (a temporary git worktree of the revision, or this checkout), on the ledger
the new code built:

* ``report``: the function ``GET /v1/reports/city`` calls, ``ledger.reports.city_totals``,
  for the year by day (the year the ledger holds), ``--calls`` times (the old code,
  ``--before-report``, default 8880a76~1, reads the entries: ``--slow-calls`` times);
  and ``answer``: the route's own work, its function called as the route is and its
  result made into the answer's bytes (FastAPI's encoding where it returns a dict), each
  call in a session of its own, timed apart from ``report``;
* ``pages``: for ``--calls`` random citizens (the same ones for both codes in a round), the
  functions ``GET /v1/me`` and the first page of ``GET /v1/me/entries`` call,
  ``ledger.views.citizen_summary`` and ``citizen_entries`` (the route's default page of
  50). The old code, ``--before-pages`` (default 91480e0~1), runs twice: on a copy of the
  ledger without the two indexes its pages are now read down (migration 0005's
  ``ix_entries_citizen_seq`` and ``ix_entries_citizen_behaviour_seq``: the schema the old
  code had), and on the ledger as built (the old queries with the new indexes). With
  ``--before-schema`` the copy is instead this checkout's migrations downgraded to that
  revision: ``--before-pages d7f6c0d --before-schema 0019`` measures the pages before
  migration 0020 dropped ``ix_entries_citizen_seq`` (a page of every behaviour is now a
  merge over ``ix_entries_citizen_behaviour_seq``).

Each child first makes one call of each function untimed (a serving worker is warm).
Each call is timed in its own session, as a request has one (``snapshot=True`` where the
code's ``Database.session`` has it, as its route does). Prints each round's median and
p99 per measurement, then the medians over the rounds of both. ``--postgres`` builds and
reads a database on a throwaway local PostgreSQL cluster (``tests/pg_cluster.py``, not
durable, not kept), ANALYZEd after the build. ``--ledger FILE`` measures a SQLite ledger
built elsewhere as it is (``bench_scale.py``'s of 10 M entries and 500,000 citizens, 21
behaviours: a city's year by day is then some 7,600 cells), and ``--only`` one of the two
measurements. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import atexit
import inspect
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: the last commit whose city report read every entry of the window
BEFORE_REPORT = "8880a76~1"
#: the last commit whose /v1/me grouped the citizen's entries and whose pages had no
#: (citizen_id, seq) index
BEFORE_PAGES = "91480e0~1"
#: migration 0005's indexes, that the old pages did not have
PAGE_INDEXES = ("ix_entries_citizen_seq", "ix_entries_citizen_behaviour_seq")
DAY = 86400
STRETCH_RECORDS = 5000
SUBMISSION = 1000
#: code, partner code, partner kind, weight, low, high, pace (m/s) or seconds per unit
BEHAVIOURS = (
    ("WALKING", "stepcount", "step_counter", 18, 2000, 15000, 0.0, 1),
    ("CYCLING", "greenbike", "bike_share", 20, 500, 6000, 3.5, 0),
    ("BUS", "citymetro", "transit", 12, 1500, 15000, 5.5, 0),
    ("METRO", "citymetro", "transit", 15, 3000, 25000, 9.7, 0),
    ("NO_DISPOSABLE_TABLEWARE", "foodgo", "food_delivery", 8, 1, 1, 0.0, 0),
    ("CLEAN_PLATE", "canteen", "canteen", 6, 1, 1, 0.0, 0),
)


def _option(name: str) -> Path | None:
    if name in sys.argv:
        return Path(sys.argv[sys.argv.index(name) + 1]).resolve()
    return None


# A child imports the code it measures (``--code``); the builder the code of ``--after``.
sys.path.insert(0, str(_option("--code") or _option("--after") or ROOT))

from bench_worktree import worktree  # noqa: E402  (imports nothing of the ledger)

# -- the build -------------------------------------------------------------------------

def year_end(now: int) -> int:
    """The history ends three days before ``now``: every day of it is closed for the report."""
    return now - 3 * DAY


def fill(url: str, n: int, citizens: int) -> dict[str, int]:
    """About N credits of a year, through intake, in time order; returns the outcomes."""
    from eth_account import Account

    from ledger import accounts
    from ledger.intake.service import submit_records
    from ledger.store.database import Database
    from ledger.store.models import Partner
    from ledger.store.schema import create_schema

    try:
        from ledger.methodology import submission_window
    except ImportError:  # a code without the rule: the default window
        submission_window = None  # type: ignore[assignment]

    db = Database(url)
    create_schema(db.engine)
    with db.session(write_lock=True) as s:
        partners = {}
        for _, code, kind, *_ in BEHAVIOURS:
            if code not in partners:
                partners[code] = accounts.create_partner(
                    s, code=code, name=code.title(), kind=kind,
                    signing_address=bytes.fromhex(Account.create().address[2:])).id
    pseudonyms: list[str] = []
    for lo in range(0, citizens, 5000):
        with db.session(write_lock=True) as s:
            pseudonyms += [accounts.create_citizen(s).pseudonym
                           for _ in range(min(5000, citizens - lo))]
    rng = random.Random(20261205)
    total = sum(b[3] for b in BEHAVIOURS)
    weights = [b[3] / total for b in BEHAVIOURS]
    gap = 365 * DAY / n
    start = year_end(int(time.time())) - 365 * DAY
    outcomes: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    k = 0
    while k < n:
        hi = min(n, k + min(STRETCH_RECORDS, max(1, int(DAY / gap))))
        by_partner: dict[str, list[dict[str, object]]] = defaultdict(list)
        for j in range(k, hi):
            code, partner, _, _, low, high, pace, per_unit = rng.choices(BEHAVIOURS, weights)[0]
            quantity = rng.randint(low, high)
            end = int(start + (j + rng.random()) * gap)  # a record is sent when it ends
            duration = int(quantity / pace) + 30 if pace else quantity * per_unit
            record: dict[str, object] = {"record_id": f"h-{j}", "citizen": rng.choice(pseudonyms),
                                         "behaviour": code, "quantity": quantity,
                                         "occurred_at": end - duration}
            if pace or per_unit:
                record["ended_at"] = end
            by_partner[partner].append(record)
        now = int(start + hi * gap) + 600
        for code, records in sorted(by_partner.items()):
            records.sort(key=lambda r: int(r.get("ended_at", r["occurred_at"])))  # type: ignore[call-overload]
            for lo in range(0, len(records), SUBMISSION):
                window = {"window": submission_window(now)} if submission_window else {}
                with db.session(write_lock=True) as s:
                    recorded = submit_records(s, partner=s.get_one(Partner, partners[code]),
                                              records=records[lo:lo + SUBMISSION], now=now,
                                              **window)
                for o in recorded.outcomes:
                    outcomes[o.status if not o.capped else "capped"] += 1
        if hi // 100_000 != k // 100_000:
            print(f"  {hi:,} records in {time.perf_counter() - started:.0f} s "
                  f"({hi / (time.perf_counter() - started):,.0f} records/s); {dict(outcomes)}",
                  flush=True)
        k = hi
    db.engine.dispose()
    return dict(outcomes)


def old_schema(url: str, before_schema: str | None) -> None:
    """Give the copy at ``url`` the old pages' schema: migration 0005's page indexes
    dropped, or, with ``before_schema``, this checkout's migrations downgraded to that
    revision (the schema a later ``--before-pages`` had)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if before_schema is None:
                for name in PAGE_INDEXES:
                    conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
            else:
                from alembic import command

                from ledger.store.schema import alembic_config

                config = alembic_config()
                config.attributes["connection"] = conn
                command.downgrade(config, before_schema)
    finally:
        engine.dispose()


def old_schema_sqlite(path: Path, before_schema: str | None) -> Path:
    """A copy of the SQLite ledger with the old pages' schema (:func:`old_schema`)."""
    copy = path.with_name(path.stem + "-old-indexes.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(path, copy)
    old_schema(f"sqlite:///{copy}", before_schema)
    return copy


# -- the measurements (in a child) -----------------------------------------------------

def _session(db: object) -> object:
    """A request's session, as this code's route opens it."""
    params = inspect.signature(db.session).parameters  # type: ignore[attr-defined]
    return db.session(snapshot=True) if "snapshot" in params else db.session()  # type: ignore[attr-defined]


def _heap_as_served() -> str:
    """Leave the collector as this code's serving worker has it once its app is built
    (``api.http.app.settle_heap``: startup's objects frozen, the youngest generation
    collected less often), so a call pays the collections a request would. Without it a
    full collection re-scans every imported object about once in 15 calls of the report
    (40-100 ms each, measured 2026-12-06): the p99 of the process, not of the server. A
    code whose workers had no such step keeps Python's defaults, as it was served."""
    try:
        from api.http.app import settle_heap
    except ImportError:
        return "python defaults"
    settle_heap()
    return "settled as served"


def _city_answer() -> Any:
    """The route's own work for ``GET /v1/reports/city``: its function called as the route
    is, and what it returns made into the answer's bytes. A route returning a dict (older
    codes) gets FastAPI's encoding of a dict with no response model (``jsonable_encoder``,
    then ``JSONResponse``); one whose model FastAPI inferred from the annotation paid a
    validation on top, so for such a code this is a lower bound. HTTP framing is not in it."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse, Response

    from api.http.report_routes import router

    endpoint = next(r.endpoint for r in router.routes
                    if getattr(r, "path", None) == "/v1/reports/city")

    def answer(session: Any, first: date, last: date) -> bytes:
        result = endpoint(session, first, last, "day")
        if not isinstance(result, Response):
            result = JSONResponse(jsonable_encoder(result))
        return bytes(result.body)
    return answer


def measure(url: str, what: str, calls: int, seed: int, first: str, last: str) -> dict[str, object]:
    import ledger
    from ledger.store.database import Database

    db = Database(url)
    times: dict[str, list[float]] = defaultdict(list)
    shape: dict[str, object] = {}
    if what == "report":
        from ledger.reports import Window, city_totals

        window = Window.of(date.fromisoformat(first), date.fromisoformat(last))
        answer = _city_answer()
        with _session(db) as s:  # type: ignore[attr-defined]
            city_totals(s, window, period="day")  # warm-up, not timed
            answer(s, window.first, window.last)
        shape["heap"] = _heap_as_served()
        for _ in range(calls):
            t0 = time.perf_counter()
            with _session(db) as s:  # type: ignore[attr-defined]
                report = city_totals(s, window, period="day")
            t1 = time.perf_counter()
            with _session(db) as s:  # type: ignore[attr-defined]
                size = len(answer(s, window.first, window.last))
            times["report"].append(t1 - t0)
            times["answer"].append(time.perf_counter() - t1)
        shape |= {"rows": len(report["rows"]),
                  "withheld": sum(1 for r in report["rows"] if r["withheld"]),
                  "grams": report["reductionGrams"], "citizens": report["citizens"],
                  "closedThrough": report["closedThrough"], "answer bytes": size}
    else:
        from sqlalchemy import text

        from ledger import views

        with db.session() as s:
            ids = [int(i) for (i,) in s.execute(text("SELECT id FROM citizens ORDER BY id"))]
        chosen = random.Random(seed).choices(ids, k=calls + 1)
        with _session(db) as s:  # type: ignore[attr-defined]
            views.citizen_summary(s, chosen[-1])  # warm-up, not timed
            views.citizen_entries(s, chosen.pop())
        heap = _heap_as_served()
        entries = 0
        for citizen in chosen:
            t0 = time.perf_counter()
            with _session(db) as s:  # type: ignore[attr-defined]
                views.citizen_summary(s, citizen)
            t1 = time.perf_counter()
            with _session(db) as s:  # type: ignore[attr-defined]
                page = views.citizen_entries(s, citizen)
            t2 = time.perf_counter()
            times["summary"].append(t1 - t0)
            times["page"].append(t2 - t1)
            entries += len(page["entries"])
        shape = {"mean page": entries / calls, "heap": heap}
    db.engine.dispose()
    return {"times": times, "shape": shape, "code": str(Path(ledger.__file__).parents[1])}


def host_reference() -> float:
    """Milliseconds for a fixed loop with none of the ledger's reads in it (100,000 double
    keccaks of 352 bytes, in this process)."""
    from ledger.hashing import keccak

    leaf = bytes(range(256)) + bytes(96)
    started = time.perf_counter()
    for _ in range(100_000):
        keccak(keccak(leaf))
    return (time.perf_counter() - started) * 1000


def _run(url: str, code: Path, what: str, calls: int, seed: int, first: str, last: str
         ) -> dict[str, object]:
    child = subprocess.run([sys.executable, __file__, "--measure", what, "--url", url,
                            "--code", str(code), "--calls", str(calls), "--seed", str(seed),
                            "--first", first, "--last", last],
                           capture_output=True, text=True, cwd=ROOT)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"error": (child.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records in the year")
    parser.add_argument("--citizens", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls a measurement")
    parser.add_argument("--slow-calls", type=int, default=5,
                        help="calls of the old city report (seconds each at 1 M)")
    parser.add_argument("--after", type=Path, default=ROOT, help="the checkout measured as after")
    parser.add_argument("--before-report", default=BEFORE_REPORT)
    parser.add_argument("--before-pages", default=BEFORE_PAGES)
    parser.add_argument("--before-schema", default=None,
                        help="the old pages' copy downgraded to this migration (e.g. 0019 "
                             "with --before-pages d7f6c0d), not 0005's indexes dropped")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-history")
    parser.add_argument("--postgres", action="store_true",
                        help="a database on a throwaway local PostgreSQL cluster (not kept)")
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument("--ledger", type=Path, default=None,
                        help="measure this SQLite ledger as it is (e.g. one bench_scale.py "
                             "built) instead of building one; its year is the one ending "
                             "three days ago, as both scripts build it")
    parser.add_argument("--only", choices=("report", "pages"), default=None,
                        help="measure only the report or only the pages")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: report or pages
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--last", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.before_schema is not None:  # named before the ledger is built, not after
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        from ledger.store.schema import alembic_config

        try:
            ScriptDirectory.from_config(alembic_config()).get_revision(args.before_schema)
        except CommandError:
            parser.error(f"--before-schema: no migration {args.before_schema!r}")
    if args.measure:
        print(json.dumps(measure(args.url, args.measure, args.calls, args.seed, args.first,
                                 args.last)))
        return

    from ledger.reports import _local_date  # the local day the report counts in

    end = year_end(int(time.time()))
    first, last = _local_date(end - 364 * DAY), _local_date(end)
    cluster = None
    backend = "PostgreSQL" if args.postgres else "SQLite"
    if args.postgres:
        from tests.pg_cluster import PgCluster, PgDatabases, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit("--postgres: no PostgreSQL server binaries")
        cluster = PgCluster(bin_dir, durable=False)
        atexit.register(cluster.stop)  # however the run ends
        cluster.start()
        databases = PgDatabases(f"{cluster.base_url}/postgres")
        name = databases.create(prefix="history")
        url = databases.url(name)
        print(f"building {args.n:,} records of {args.citizens:,} citizens on PostgreSQL ...",
              flush=True)
        started = time.perf_counter()
        print(f"  outcomes {fill(url, args.n, args.citizens)} in "
              f"{time.perf_counter() - started:.0f} s (not part of the figures)", flush=True)
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("ANALYZE")
        old_name = databases.create(template=name, prefix="oldidx")
        old_url = databases.url(old_name)
        old_schema(old_url, args.before_schema)
        with psycopg.connect(old_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("ANALYZE")
    elif args.ledger is not None:
        url = f"sqlite:///{args.ledger.resolve()}"
        old_url = url if args.only == "report" else \
            f"sqlite:///{old_schema_sqlite(args.ledger, args.before_schema)}"
    else:
        args.cache.mkdir(parents=True, exist_ok=True)
        path = args.cache / f"history-{args.n}-{args.citizens}.db"
        done = path.with_suffix(".done")
        url = f"sqlite:///{path}"
        if not done.exists():
            path.unlink(missing_ok=True)
            print(f"building {args.n:,} records of {args.citizens:,} citizens into {path} "
                  "(kept for the next run) ...", flush=True)
            started = time.perf_counter()
            outcomes = fill(url, args.n, args.citizens)
            done.write_text(json.dumps({"outcomes": outcomes, "end": end}) + "\n")
            print(f"  outcomes {outcomes} in {time.perf_counter() - started:.0f} s "
                  "(not part of the figures)", flush=True)
        else:
            print(f"reusing {path} ({done.read_text().strip()})")
            end = int(json.loads(done.read_text())["end"])
            first, last = _local_date(end - 364 * DAY), _local_date(end)
        old_url = f"sqlite:///{old_schema_sqlite(path, args.before_schema)}"
    print(f"the year by day: {first} to {last}, {backend}, measured "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    if args.fill_only:
        return

    runs: dict[str, list[dict[str, object]]] = defaultdict(list)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp, \
                worktree(args.before_report, Path(tmp) / "before-report") as old_report, \
                worktree(args.before_pages, Path(tmp) / "before-pages") as old_pages:
            kinds = [  # label, code, database, what, calls
                (f"report before ({args.before_report})", old_report, url, "report",
                 args.slow_calls),
                ("report after", args.after, url, "report", args.calls),
                (f"pages before ({args.before_pages}, its indexes)", old_pages, old_url, "pages",
                 args.calls),
                (f"pages before ({args.before_pages}, on this schema)", old_pages, url, "pages",
                 args.calls),
                ("pages after", args.after, url, "pages", args.calls),
            ]
            kinds = [k for k in kinds if args.only in (None, k[3])]
            for r in range(args.rounds):
                print(f"round {r + 1} host reference: {host_reference():.0f} ms", flush=True)
                for label, code, db_url, what, calls in kinds:
                    run = _run(db_url, code, what, calls, 1000 + r, first.isoformat(),
                               last.isoformat())
                    runs[label].append(run)
                    if "error" in run:
                        print(f"  {label}: FAILED: {run['error']}", flush=True)
                        continue
                    times: dict[str, list[float]] = run["times"]  # type: ignore[assignment]
                    shown = "; ".join(f"{name} median {statistics.median(v) * 1000:.2f} ms, "
                                      f"p99 {_p99(v) * 1000:.2f} ms ({len(v)} calls)"
                                      for name, v in times.items())
                    print(f"  {label}: {shown}  {run['shape']}", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()

    built = (f"the ledger {args.ledger}" if args.ledger is not None
             else f"{args.n:,} records of {args.citizens:,} citizens")
    print(f"\n{backend}, {built}, a year by day "
          f"({first} to {last}); medians over {args.rounds} rounds of each round's figure:")
    for label, rounds in runs.items():
        good = [r for r in rounds if "error" not in r]
        if not good:
            print(f"  {label}: failed in every round: {rounds[0]['error']}")
            continue
        names = list(good[0]["times"])  # type: ignore[call-overload]
        for name in names:
            per_round = [r["times"][name] for r in good]  # type: ignore[index]
            pooled = [t for v in per_round for t in v]
            median = statistics.median(statistics.median(v) for v in per_round)
            print(f"  {label}, {name}: median {median * 1000:.2f} ms, "
                  f"p99 {statistics.median(_p99(v) for v in per_round) * 1000:.2f} ms "
                  f"(pooled over {len(pooled)} calls: median {statistics.median(pooled) * 1000:.2f}, "
                  f"p99 {_p99(pooled) * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
