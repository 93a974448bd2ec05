"""Benchmark ingest in process: where a 1,000-record submission's time goes, no HTTP.

    python scripts/bench_ingest.py [--requests 150] [--citizens 5000] [--block 50]
                                   [--order time-ordered|newest-first] [--data-dir DIR]
                                   [--code DIR] [--postgres]

The same submissions as `bench_api.py` (signed rides, all credited), time-ordered by
default as live traffic is (each submission newer than the last, every citizen riding
five times a day; ``--order newest-first`` sends the same rides the other way round, a
partner back-filling), decided one after another by this process on a fresh SQLite
ledger (``--postgres``: a database on a throwaway local PostgreSQL cluster, the tests'
one with commits durable: ``tests/pg_cluster.py``), with the serving process's WAL
checkpointer running and its heap settled. Per block of ``--block`` submissions it
prints medians of ``check`` (parse, canonicalise, quantify, recover the signer: outside
the write lock), ``locked`` (deciding and writing, in the lock) and ``commit``, the
mean time in the cyclic garbage collector (most submissions have none, a few a full
collection), and CPU time, which a busy shared host disturbs far less than elapsed time:
``cpu`` this process's in the locked part (median), and on PostgreSQL ``server`` the
mean CPU of the database backends the ledger's connections use (their
``/proc/PID/stat``, over the block). A host reference (``bench_api.host_reference``) is
printed before and after the fill. For the last block it also prints each bulk statement's median
(SQLAlchemy's cursor events; the plain reads go to the driver directly and are not
among them). ``1000 / (locked + commit)`` bounds what the HTTP API can ingest on
SQLite, however many workers serve. Prints figures; asserts nothing.

``--code DIR`` runs another checkout's ledger (``git worktree add /tmp/before HEAD~1``)
under this script and its traffic: before and after a change, the same benchmark.
``--requests 1000 --block 100`` is the 1 M-entry run of the README's benchmark page.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))
from bench_worktree import code_from_argv  # noqa: E402  (imports nothing of the ledger)

if (_code := code_from_argv()) is not None:  # another checkout's ledger, before this one's
    sys.path.insert(0, str(_code))

from bench_api import ORDERS, host_reference, payloads, postgres_database, prepare  # noqa: E402

from api.composition import Container  # noqa: E402
from api.http.app import settle_heap  # noqa: E402
from api.settings import Settings  # noqa: E402
from ledger.intake.service import record_submission  # noqa: E402
from ledger.intake.signed import check_submission  # noqa: E402
from ledger.store.models import Partner  # noqa: E402

CHAIN_ID = 31337  # signatures only: no chain is started
CONTRACT = "0x" + "c1" * 20  # the domain's verifyingContract, the same in signing and checking


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}" if values else "-"


class Clock:
    """Per-submission timings, and each bulk statement's time from cursor events."""

    def __init__(self, engine: Any) -> None:
        self.phases: dict[str, list[float]] = defaultdict(list)
        self.statements: dict[str, list[float]] = defaultdict(list)
        self._gc_started = 0.0
        self._gc_total = 0.0
        self._started: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        gc.callbacks.append(self._gc)

    def _before(self, _conn: Any, cursor: Any, *_args: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, statement: str, _params: Any, _context: Any,
               executemany: bool) -> None:
        started = self._started.pop(id(cursor), None)
        if executemany and started is not None:
            label = " ".join(statement.split()[:3]).replace(" INTO", "")
            self.statements[label].append(time.perf_counter() - started)

    def _gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_total += time.perf_counter() - self._gc_started

    def gc_seconds(self) -> float:
        """Collector time since the last call."""
        total, self._gc_total = self._gc_total, 0.0
        return total


class Backends:
    """CPU time of the PostgreSQL backends the engine's connections run on (their pids as
    the driver reports them, so no query is sent), read from ``/proc`` between
    submissions. Pooled connections live the whole run, so none of that time is lost."""

    def __init__(self, engine: Any) -> None:
        self.pids: set[int] = set()
        self._ticks = os.sysconf("SC_CLK_TCK")
        if engine.dialect.name == "postgresql":
            event.listen(engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection: Any, *_args: Any) -> None:
        self.pids.add(dbapi_connection.info.backend_pid)

    def seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / self._ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--citizens", type=int, default=5000)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--order", choices=ORDERS, default="time-ordered",
                        help="time-ordered (live traffic, the default) or newest-first")
    parser.add_argument("--postgres", action="store_true",
                        help="on a throwaway PostgreSQL cluster instead of SQLite")
    parser.add_argument("--code", type=Path, default=None,
                        help="the checkout whose ledger is measured (default: this one)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the scratch ledger goes (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=args.data_dir) as tmp:
        data_dir = Path(tmp)
        url = None
        if args.postgres:  # this checkout's cluster, whatever --code measures
            url = postgres_database()
        key, _partner_key, _auditor_key, pseudonyms = prepare(data_dir, args.citizens, url)
        bodies = payloads(key, CHAIN_ID, CONTRACT, pseudonyms, args.requests, order=args.order)
        container = Container(Settings(data_dir=data_dir, database_url=url))
        db, operator_key = container.db, bytes(container.signer.key)
        reference_before = host_reference(data_dir)
        backends = Backends(db.engine)
        server: list[float] = []
        with db.background_checkpoints():
            clock = Clock(db.engine)
            settle_heap()
            fill_started = time.perf_counter()
            for n, (body, signed) in enumerate(bodies):
                if n == args.requests - args.block:
                    clock.statements.clear()  # the statements of the last block only
                if n % args.block == 0:
                    server.append(backends.seconds())
                clock.gc_seconds()
                t0 = time.perf_counter()
                with db.session() as s:
                    partner = s.get_one(Partner, 1)
                checked = check_submission(partner=partner, records=json.loads(body),
                                           signature=signed["X-Signature"],
                                           nonce=signed["X-Nonce"],
                                           deadline=signed["X-Deadline"],
                                           chain_id=CHAIN_ID, contract=CONTRACT)
                c1 = time.process_time()
                t1 = time.perf_counter()
                with db.session(write_lock=True) as s:
                    recorded = record_submission(s, checked, partner=s.get_one(Partner, 1),
                                                 operator_key=operator_key, anchor_within=1200)
                    t2 = time.perf_counter()
                    c2 = time.process_time()
                t3 = time.perf_counter()
                if recorded.counts["accepted"] != 1000:
                    raise SystemExit(f"submission {n}: only {recorded.counts['accepted']} "
                                     "of 1,000 accepted")
                for name, seconds in (("check", t1 - t0), ("locked", t2 - t1),
                                      ("commit", t3 - t2), ("gc", clock.gc_seconds()),
                                      ("cpu", c2 - c1)):
                    clock.phases[name].append(seconds)
            fill_seconds = time.perf_counter() - fill_started
            server.append(backends.seconds())
        db.engine.dispose()
        reference_after = host_reference(data_dir)

    import ledger
    print(f"in process, per submission of 1,000 records (ms; medians, gc a mean), "
          f"{args.citizens:,} citizens, {args.order}, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}, code {Path(ledger.__file__).parents[1]}:")
    print(f"host reference: {reference_before:.1f} ms before the fill, {reference_after:.1f} ms "
          "after (a fixed SQLite workload, none of our code; higher is a busier host)")
    server_column = f" {'server':>7}" if args.postgres else ""
    print(f"{'records before':>16} {'check':>7} {'locked':>7} {'cpu':>6}{server_column} "
          f"{'commit':>7} {'gc':>5}  lock-bound")
    for b, start in enumerate(range(0, args.requests, args.block)):
        block = {k: v[start:start + args.block] for k, v in clock.phases.items()}
        bound = 1000 / (statistics.median(block["locked"]) + statistics.median(block["commit"]))
        cpu = (f" {(server[b + 1] - server[b]) / len(block['check']) * 1000:>7.1f}"
               if args.postgres else "")
        print(f"{start * 1000:>9,}–{(start + len(block['check'])) * 1000:<7,} "
              f"{_median_ms(block['check']):>6} {_median_ms(block['locked']):>7} "
              f"{_median_ms(block['cpu']):>6}{cpu} "
              f"{_median_ms(block['commit']):>7} {statistics.mean(block['gc']) * 1000:>5.1f}  "
              f"{bound:,.0f} records/s")
    print(f"whole fill: {args.requests * 1000:,} records in {fill_seconds:.1f} s = "
          f"{args.requests * 1000 / fill_seconds:,.0f} records/s (check, locked and commit, "
          "one after another)")
    print("bulk statements in the lock, last block (medians, ms):")
    for label, times in sorted(clock.statements.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {_median_ms(times):>5}  {label} (x{len(times) / args.block:.1f} per submission)")


if __name__ == "__main__":
    main()
