"""Benchmark how the ledger's costs grow: one ledger built through checkpoints, measured at each.

    python scripts/bench_scale.py [--sizes 10000,100000,1000000] [--citizens N] [--postgres]
                                  [--rounds 3] [--requests 20] [--wrk-seconds 10]
                                  [--data-dir DIR]

One ledger grows from empty through each size in ``--sizes`` (entries). 10,000,000 is
allowed (``--sizes 10000,100000,1000000,10000000``) and takes hours on a 2-core machine:
the history alone is built at about 10,000 records/s, and sealing it, citizens and
disk come on top (about 12 GB on SQLite).

**The history** is built the way a year of a city would arrive, through the project's own
intake path with every rule on (:func:`ledger.intake.service.submit_records`: the
submission window, plausibility, cross-partner de-duplication, caps), each submission
decided at the time it would have been received (``now=``). ``--citizens`` (default: one
per 20 entries of the largest size, at least 20,000; 500,000 at 10 M) send records of all
21 behaviours of methodology v2, each from a partner of a kind the methodology names for
it, with plausible quantities and durations (a ride of 0.5-6 km at bike speed, a hotel
stay of 1-4 nights, an appliance now and then), over a year ending three days ago at a
constant rate, in time order. Partners send what happened in each stretch of about
5,000 records (at most a day) after it, in submissions of at most 1,000; about 2 % of
bike, bus and metro trips are also reported later by a journey-planning app (``maas``),
so the de-duplication rule has work. At an earlier checkpoint the ledger holds the first
part of that year. The service seals when ``CARBON_LEDGER_SEAL_PENDING`` (10,000) entries are pending, and so
does the build: batches of about 10,000, on a ``carbon-ledger node`` (anvil) started for
the run, the same chain the server reads later.

**At each checkpoint** the build pauses (everything pending sealed first) and, in
``--rounds`` interleaved rounds, each with the host reference printed beside it:

1. starts ``carbon-ledger serve --workers 2 --no-sealer`` afresh and, once both workers
   have started and before any request but one ``/v1/info``, runs wrk (64 connections,
   ``--wrk-seconds``) on proof GETs of random old (sealed) entries: cold, no bundle in
   any worker's cache; then ``--wrk-seconds`` of
   unmeasured warm-up and the same load again: warm;
2. the public city report, a year by day, 50 different windows one after another (first
   asks), then one window 50 times (asked again: a worker keeps its answers until the next
   day closes): p50 and p99 of each as the client sees them (#24 item 3's goal: p99 <=
   50 ms at 10 M);
3. ingest over HTTP: ``--requests`` signed submissions of 1,000 current-time rides (the
   last two days and a half) by existing citizens (a slice of 5,000 of them that no
   earlier checkpoint used, every one riding five times a day) from 2 clients, as
   ``bench_api.py`` sends them: records/s;
4. reads the workers' peak RSS (VmHWM) and stops the server.

The entries ingested there stay in the ledger (so the 10,000 checkpoint holds up to
70,000 entries by its end). Then, each in a fresh child process that reports its own
peak RSS (VmHWM: ``os.wait4``'s ``ru_maxrss`` would start from this building process's
resident set, copied at the fork before the child's exec), a seal of 10,000 of the
pending entries, then a seal of the whole remaining backlog. Last, bytes on disk:
SQLite's file and WAL, and per table and index from the ``dbstat`` virtual table;
PostgreSQL's ``pg_total_relation_size`` of each table. Per entry is the total over the
entries then in the ledger. ``--postgres`` runs all of it on a throwaway durable
PostgreSQL cluster (as ``bench_api.py --postgres``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

from bench_api import (  # noqa: E402
    ask_city_report,
    host_reference,
    ingest,
    percentile,
    postgres_database,
    ride,
    serving,
    start,
    stop,
    year_by_day,
)

from api.composition import Container  # noqa: E402
from api.settings import Settings  # noqa: E402
from ledger import accounts  # noqa: E402
from ledger.credentials import issue_api_key  # noqa: E402
from ledger.intake.signed import record_hashes  # noqa: E402
from ledger.methodology import submission_window  # noqa: E402
from ledger.reports import closed_through  # noqa: E402
from ledger.signing import records_hash, submission_headers  # noqa: E402

DAY = 86400
#: records per stretch of the timeline that partners send after it ends
STRETCH_RECORDS = 5000
#: the citizens each checkpoint's live traffic rides with (a fresh slice each time)
LIVE_CITIZENS = 5000
SUBMISSION = 1000
REPORT_CALLS = 50  # city reports a round


@dataclass(frozen=True)
class Behaviour:
    """How often a behaviour happens (a relative weight), who reports it and how much."""

    code: str
    partner: str  # a partner code; its kind is in PARTNERS
    weight: float
    low: int
    high: int
    #: metres per second for trips (ended_at from it), seconds per unit for durations,
    #: 0: a moment (no ended_at)
    pace: float = 0.0
    per_unit: int = 0


#: One partner per kind the history uses (code → kind); ``greenbike`` also signs the live
#: traffic over HTTP.
PARTNERS = {"stepcount": "step_counter", "greenbike": "bike_share", "citymetro": "transit",
            "planner": "maas", "evmaker": "nev_maker", "ridetogether": "carpool",
            "foodgo": "food_delivery", "canteen": "canteen", "mart": "retailer",
            "power": "utility", "courier": "courier", "secondhand": "second_hand_platform",
            "recycler": "clothes_recycler", "appliances": "appliance_retailer",
            "hotel": "hotel", "railway": "e_ticketing"}

#: All 21 behaviours of methodology v2 (docs/methodology.md), weighted so that a citizen's
#: year looks like one: mostly trips and meals, an appliance rarely.
BEHAVIOURS = (
    Behaviour("WALKING", "stepcount", 18, 2000, 15000, per_unit=1),  # ~1 s a step
    Behaviour("CYCLING", "greenbike", 20, 500, 6000, pace=3.5),
    Behaviour("BUS", "citymetro", 12, 1500, 15000, pace=5.5),
    Behaviour("METRO", "citymetro", 15, 3000, 25000, pace=9.7),
    Behaviour("NEV_DRIVING", "evmaker", 6, 5000, 40000, pace=11.0),
    Behaviour("CARPOOLING", "ridetogether", 3, 5000, 30000, pace=11.0),
    Behaviour("NO_DISPOSABLE_TABLEWARE", "foodgo", 8, 1, 1),
    Behaviour("CLEAN_PLATE", "canteen", 6, 1, 1),
    Behaviour("E_RECEIPT_OR_TICKET", "mart", 5, 1, 20),
    Behaviour("PAPERLESS_BILL", "power", 1, 1, 3),
    Behaviour("EXPRESS_BOX_REUSE", "courier", 2, 1, 3),
    Behaviour("SECOND_HAND_CLOTHING", "secondhand", 0.5, 1, 3),
    Behaviour("SECOND_HAND_ELECTRONICS", "secondhand", 0.2, 1, 1),
    Behaviour("SECOND_HAND_BOOKS", "secondhand", 0.3, 1, 5),
    Behaviour("CLOTHES_RECYCLING", "recycler", 0.3, 1, 10),
    Behaviour("APPLIANCE_TRADE_IN", "appliances", 0.05, 1, 1),
    Behaviour("APPLIANCE_AC_GRADE1", "appliances", 0.05, 1, 1),
    Behaviour("APPLIANCE_FRIDGE_GRADE1", "appliances", 0.05, 1, 1),
    Behaviour("APPLIANCE_WASHER_GRADE1", "appliances", 0.05, 1, 1),
    Behaviour("HOTEL_NO_DISPOSABLES", "hotel", 0.3, 1, 4, per_unit=DAY - 7200),
    Behaviour("RAIL_INSTEAD_OF_FLIGHT", "railway", 0.2, 300_000, 1_500_000, pace=69.0),
)
#: the share of these trips a journey planner reports too (later: a duplicate)
ALSO_PLANNED = {"CYCLING": 0.02, "BUS": 0.02, "METRO": 0.02}


class History:
    """A year of a city's records in time order, stretch by stretch (deterministic)."""

    def __init__(self, pseudonyms: list[str], records: int, end: int) -> None:
        self.rng = random.Random(20261205)
        self.pseudonyms = pseudonyms
        self.gap = 365 * DAY / records  # seconds between two records of the city
        self.start = end - 365 * DAY
        self.k = 0
        weights = [b.weight for b in BEHAVIOURS]
        total = sum(weights)
        self.cumulative = [sum(weights[:i + 1]) / total for i in range(len(weights))]

    def _record(self, k: int, at: float) -> tuple[str, dict[str, object]]:
        rng = self.rng
        b = BEHAVIOURS[min(_bisect(self.cumulative, rng.random()), len(BEHAVIOURS) - 1)]
        quantity = rng.randint(b.low, b.high)
        end = int(at)  # a record is reported when the behaviour ends
        duration = int(quantity / b.pace) + 30 if b.pace else quantity * b.per_unit
        record: dict[str, object] = {"record_id": f"h-{k}",
                                     "citizen": rng.choice(self.pseudonyms),
                                     "behaviour": b.code, "quantity": quantity,
                                     "occurred_at": end - duration}
        if b.pace or b.per_unit:
            record["ended_at"] = end
        return b.partner, record

    def stretch(self) -> tuple[int, dict[str, list[dict[str, object]]]]:
        """The next ~5,000 records (at most a day's) by partner, and when the stretch ends."""
        by_partner: dict[str, list[dict[str, object]]] = defaultdict(list)
        # at most a day of the timeline: what a partner sends stays inside the window
        lo, hi = self.k, self.k + min(STRETCH_RECORDS, max(1, int(DAY / self.gap)))
        for k in range(lo, hi):
            partner, record = self._record(k, self.start + (k + self.rng.random()) * self.gap)
            by_partner[partner].append(record)
            share = ALSO_PLANNED.get(str(record["behaviour"]), 0.0)
            if share and self.rng.random() < share:
                by_partner["planner"].append({**record, "record_id": f"p-{k}"})
        self.k = hi
        return int(self.start + hi * self.gap) + 1, by_partner


def _bisect(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative)
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


class Ledger:
    """The growing ledger: its database, the run's node, and the build's counters."""

    def __init__(self, data_dir: Path, url: str | None, citizens: int) -> None:
        self.data_dir, self.url = data_dir, url
        self.env = {**os.environ, "CARBON_LEDGER_DATA_DIR": str(data_dir),
                    "CARBON_LEDGER_RATE_LIMIT": "1000000/minute"}
        if url:
            self.env["CARBON_LEDGER_DATABASE_URL"] = url
        self.node = start(["node"], env=self.env, read_stdout=True)
        self.rpc = self.node.stdout.readline().strip()  # type: ignore[union-attr]
        self.container = Container(Settings(data_dir=data_dir, database_url=url,
                                            rpc_url=self.rpc))
        self.db = self.container.db
        self.key = Account.create()
        started = time.perf_counter()
        with self.db.session(write_lock=True) as s:
            self.partners = {code: accounts.create_partner(
                s, code=code, name=code.title(), kind=kind,
                signing_address=bytes.fromhex((self.key if code == "greenbike" else
                                               Account.create()).address[2:])).id
                for code, kind in PARTNERS.items()}
            self.partner_key = issue_api_key(s, role="partner", partner=s.get(
                _partner_model(), self.partners["greenbike"]))
            self.auditor_key = issue_api_key(s, role="auditor")
        self.pseudonyms: list[str] = []
        for lo in range(0, citizens, 5000):
            with self.db.session(write_lock=True) as s:
                self.pseudonyms += [accounts.create_citizen(s).pseudonym
                                    for _ in range(min(5000, citizens - lo))]
        print(f"  {citizens:,} citizens and {len(PARTNERS)} partners in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        self.entries = 0  # made by the history
        self.records = 0
        self.outcomes: dict[str, int] = defaultdict(int)
        self.pending = 0
        self.build_seconds = 0.0
        self.seal_seconds = 0.0
        self.seal_pending = Settings().seal_pending

    def count_entries(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(text("SELECT count(*) FROM ledger_entries")) or 0)

    def grow(self, history: History, target: int) -> None:
        """Build the history until the ledger holds ``target`` entries, sealing as the
        service does (at ``seal_pending``)."""
        from ledger.intake.service import submit_records

        with self.container.anchor() as anchor:
            sealer = self.container.sealer(anchor)
            entries = self.count_entries()
            while entries < target:
                started = time.perf_counter()
                end, by_partner = history.stretch()
                for code, records in sorted(by_partner.items(), key=lambda kv: kv[0] == "planner"):
                    records.sort(key=lambda r: int(r.get("ended_at", r["occurred_at"])))  # type: ignore[call-overload]
                    for lo in range(0, len(records), SUBMISSION):
                        part = records[lo:lo + SUBMISSION]
                        now = end + (1800 if code == "planner" else 600)
                        with self.db.session(write_lock=True) as s:
                            partner = s.get(_partner_model(), self.partners[code])
                            recorded = submit_records(s, partner=partner, records=part, now=now,
                                                      window=submission_window(now))
                        for o in recorded.outcomes:
                            self.outcomes[o.status if not o.capped else "capped"] += 1
                            if o.entry_id is not None:
                                self.pending += 1
                                entries += 1
                        self.records += len(part)
                self.build_seconds += time.perf_counter() - started
                if self.pending >= self.seal_pending:
                    self.seal(sealer)
                if history.k % 100_000 == 0:
                    print(f"  {history.k:,} records sent, {self.records / self.build_seconds:,.0f} "
                          f"records/s; outcomes {dict(self.outcomes)}", flush=True)
            self.seal(sealer)

    def seal(self, sealer: Any) -> None:
        started = time.perf_counter()
        sealer.seal()
        self.seal_seconds += time.perf_counter() - started
        self.pending = 0


def _partner_model() -> Any:
    from ledger.store.models import Partner

    return Partner


def live_payloads(ledger: Ledger, chain_id: int, contract: str, citizens: list[str],
                  first_k: int, count: int, total: int, first_at: int, gap: float
                  ) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` signed submissions of 1,000 rides by ``citizens``, rides ``first_k`` on of a
    time-ordered series of ``total`` (as bench_api.py's payloads)."""
    out = []
    for r in range(count):
        ks = range(first_k + r * SUBMISSION, first_k + (r + 1) * SUBMISSION)
        records = [ride(f"live-{first_at}-{k}", citizens[k % len(citizens)], 500 + (k * 37) % 2000,
                        first_at + int(k * gap)) for k in ks]
        signed = submission_headers(ledger.key.key, chain_id=chain_id, contract=contract,
                                    partner="greenbike", count=SUBMISSION, valid_for=3600,
                                    digest=records_hash(record_hashes(records)))
        out.append((json.dumps(records).encode(), signed))
    return out


def wrk(base: str, auditor_key: str, ids_file: Path, seconds: int, clients: int = 64
        ) -> dict[str, float]:
    script = ids_file.with_suffix(".lua")
    script.touch(mode=0o600)
    script.write_text(f"""
ids = {{}}
for line in io.lines("{ids_file}") do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "/v1/entries/" .. ids[math.random(#ids)] .. "/proof")
end
""")
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s",
                          str(script), "-H", f"Authorization: Bearer {auditor_key}", base],
                         capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {"non2xx": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith(("50%", "99%")):
            figures[parts[0]] = _ms(parts[1])
        elif line.startswith("Requests/sec:"):
            figures["rps"] = float(parts[1])
        elif "Non-2xx" in line:
            figures["non2xx"] = float(parts[-1])
    return figures


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if value.endswith(unit):
            return float(value[:-len(unit)]) * factor
    return float(value)


def group_hwm_mib(pgid: int) -> dict[int, float]:
    """VmHWM of each process in the server's process group (the serve supervisor and its
    uvicorn workers), in MiB."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[int(entry.name)] = int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return out


def old_entry_ids(ledger: Ledger, n: int = 5000) -> list[str]:
    """Random sealed entries' ids, as the proof route takes them."""
    rng = random.Random()
    with ledger.db.session() as s:
        last = int(s.scalar(text("SELECT max(last_seq) FROM batches WHERE status = 'anchored'")) or 0)
        ids = []
        for seq in sorted(rng.randrange(1, last + 1) for _ in range(n)):
            row = s.execute(text("SELECT substr(leaf, 1, 32) FROM ledger_entries "  # the id
                                 "WHERE seq >= :s ORDER BY seq LIMIT 1"), {"s": seq}).first()
            if row is not None:
                ids.append("0x" + bytes(row[0]).hex())
    return ids


def http_round(ledger: Ledger, ids_file: Path, bodies_for: Any, wrk_seconds: int
               ) -> dict[str, Any]:
    # /v1/info the only request before the cold load, on both workers once both have started
    with serving(ledger.rpc, ledger.env, ledger.data_dir / "serve.log") as (base, server):
        cold = wrk(base, ledger.auditor_key, ids_file, wrk_seconds)
        wrk(base, ledger.auditor_key, ids_file, wrk_seconds)  # warm-up, not measured
        warm = wrk(base, ledger.auditor_key, ids_file, wrk_seconds)
        report = city_report(base)
        info = httpx.get(f"{base}/v1/info").json()
        bodies = bodies_for(info["chainId"], info["contract"])
        seconds, accepted, _ = ingest(base, ledger.partner_key, bodies, 2)
        hwm = group_hwm_mib(server.pid)
    return {"cold": cold, "warm": warm, "report": report, "ingest": accepted / seconds,
            "accepted": accepted, "rss": hwm}


def city_report(base: str, calls: int = REPORT_CALLS) -> dict[str, float]:
    """The public city report, a year by day, as a client sees it (#24 item 3: p99 <= 50 ms
    at 10 M), in ms: first asks, ``calls`` different windows each a year to 0, 1, 2, …
    days before the last closed day (none asked before: since d619d08 a worker keeps the
    answers it made until the next day closes); then asked again, the year to the last
    closed day ``calls`` times after one unmeasured call. And its rows: the history is the
    year before the last three days, so at an early checkpoint the window holds few or
    none of its days."""
    last = closed_through(int(time.time()))
    with httpx.Client(base_url=base, timeout=60) as client:
        first, _ = ask_city_report(client, [year_by_day(last - timedelta(days=n))
                                            for n in range(calls)])
        again, answer = ask_city_report(client, [year_by_day(last)] * (calls + 1))
    return {"50%": statistics.median(first), "99%": percentile(first, 0.99),
            "again 50%": statistics.median(again[1:]), "again 99%": percentile(again[1:], 0.99),
            "rows": float(len(answer.json()["rows"]))}


def seal_child(url: str | None, data_dir: str, rpc: str, limit: int) -> None:
    """In a fresh process: seal at most ``limit`` pending entries (0: all), print JSON."""
    c = Container(Settings(data_dir=Path(data_dir), database_url=url or None, rpc_url=rpc))
    with c.anchor() as anchor:
        sealer = c.sealer(anchor)
        with c.db.session() as s:
            pending_before = int(s.scalar(text(
                "SELECT count(*) FROM ledger_entries WHERE seq > "
                "(SELECT coalesce(max(last_seq), 0) FROM batches)")) or 0)
        started = time.perf_counter()
        if limit:
            sealer.options = dataclasses.replace(sealer.options, max_batch=limit)
            sealer._take_lease()
            try:
                batch = sealer.seal_new_batch()
                leaves = batch.leaf_count if batch else 0
                if batch is not None:
                    sealer.advance(batch.id)
            finally:
                sealer._release_lease()
        else:
            leaves = sum(b.leaf_count for b in sealer.seal())
        seconds = time.perf_counter() - started
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "leaves": leaves, "pending": pending_before,
                      "vmhwm_mib": hwm / 1024,
                      # forked leaf workers: their peak counts the pages shared at the fork
                      "workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def measure_seal(ledger: Ledger, limit: int) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, __file__, "--seal-child", ledger.url or "",
                             str(ledger.data_dir), ledger.rpc, str(limit)],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()  # type: ignore[union-attr]
    if proc.wait() != 0:
        raise SystemExit(f"the seal child failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    # Not usage.ru_maxrss: Linux starts it from this (large) parent's resident set at the
    # fork, before the child's exec; the child reads its own VmHWM.
    result["rss_mib"] = result["vmhwm_mib"]
    return result


def disk(ledger: Ledger) -> tuple[int, dict[str, int], str]:
    """Total bytes, bytes per table (indexes with their table), and what the total is."""
    with ledger.db.engine.connect() as conn:
        return table_bytes(conn, None if ledger.url else ledger.data_dir / "ledger.db")


def table_bytes(conn: Any, sqlite_file: Path | None) -> tuple[int, dict[str, int], str]:
    """:func:`disk` on a connection: PostgreSQL's ``pg_total_relation_size`` of each table
    and ``pg_database_size``; SQLite's ``dbstat`` by table and ``sqlite_file`` and its WAL."""
    per: dict[str, int] = defaultdict(int)
    if sqlite_file is None:
        for name, size in conn.execute(text(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'")):
            per[name] = int(size)
        total = int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)
        return total, dict(per), "pg_database_size"
    indexes = dict(conn.execute(text("SELECT name, tbl_name FROM sqlite_master "
                                     "WHERE type = 'index'")).all())
    try:
        for name, size in conn.execute(text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")):
            per[indexes.get(name, name)] += int(size)
    except Exception:  # noqa: BLE001 - SQLite built without dbstat
        per["(dbstat not available)"] = 0
    total = sum(p.stat().st_size for p in (sqlite_file, sqlite_file.with_name(
        sqlite_file.name + "-wal")) if p.exists())
    return total, dict(per), "file + WAL"


def checkpoint(ledger: Ledger, args: argparse.Namespace, size: int, index: int) -> dict[str, Any]:
    entries = ledger.count_entries()
    print(f"checkpoint {size:,}: {entries:,} entries ({ledger.records:,} history records, "
          f"outcomes {dict(ledger.outcomes)}); history built at "
          f"{ledger.records / max(ledger.build_seconds, 1e-9):,.0f} records/s, sealing "
          f"{ledger.seal_seconds:.0f} s so far", flush=True)
    bytes_total, per_table, what = disk(ledger)
    ids_file = ledger.data_dir / f"ids-{index}.txt"
    ids_file.write_text("\n".join(old_entry_ids(ledger)) + "\n")
    ids_file.chmod(0o600)  # the data dir holds secrets: serve refuses files others may read
    citizens = ledger.pseudonyms[index * LIVE_CITIZENS:(index + 1) * LIVE_CITIZENS]
    if len(citizens) < LIVE_CITIZENS:
        raise SystemExit(f"--citizens: checkpoint {index + 1} needs {LIVE_CITIZENS:,} citizens no "
                         "earlier checkpoint rode with")
    total = args.rounds * args.requests * SUBMISSION
    gap = DAY / (len(citizens) * 5)  # five rides a citizen a day
    first_at = int(time.time()) - 3600 - int(total * gap)
    rounds = []
    for r in range(args.rounds):
        reference = host_reference(ledger.data_dir)

        def bodies_for(chain_id: int, contract: str, r: int = r) -> list[tuple[bytes, dict[str, str]]]:
            return live_payloads(ledger, chain_id, contract, citizens, r * args.requests * SUBMISSION,
                                 args.requests, total, first_at, gap)

        result = http_round(ledger, ids_file, bodies_for, args.wrk_seconds)
        result["reference"] = reference
        rounds.append(result)
        c, w = result["cold"], result["warm"]
        print(f"  round {r + 1}: host reference {reference:.1f} ms; ingest {result['ingest']:,.0f} "
              f"records/s; proofs cold {c['rps']:,.0f}/s p50 {c['50%']:.1f} p99 {c['99%']:.1f} ms "
              f"(non-2xx {c['non2xx']:.0f}), warm {w['rps']:,.0f}/s p50 {w['50%']:.1f} "
              f"p99 {w['99%']:.1f} ms; city report, a year by day ({result['report']['rows']:.0f} "
              f"rows), first asks p50 {result['report']['50%']:.1f} p99 "
              f"{result['report']['99%']:.1f} ms, asked again p50 "
              f"{result['report']['again 50%']:.1f} p99 {result['report']['again 99%']:.1f} ms; "
              f"server RSS peaks "
              f"{', '.join(f'{v:.0f}' for v in sorted(result['rss'].values()))} MiB", flush=True)
    seal_10k = measure_seal(ledger, ledger.seal_pending)
    seal_all = measure_seal(ledger, 0)
    entries_after = ledger.count_entries()
    med = lambda key, sub: statistics.median(r[key][sub] for r in rounds)  # noqa: E731
    row = {
        "size": size, "entries": entries, "entries_after": entries_after,
        "reference": statistics.median(r["reference"] for r in rounds),
        "ingest": statistics.median(r["ingest"] for r in rounds),
        "ingest_rounds": [round(r["ingest"]) for r in rounds],
        "cold_rps": med("cold", "rps"), "cold_p50": med("cold", "50%"),
        "cold_p99": med("cold", "99%"), "warm_rps": med("warm", "rps"),
        "warm_p50": med("warm", "50%"), "warm_p99": med("warm", "99%"),
        "cold_p99_rounds": [r["cold"]["99%"] for r in rounds],
        "report_p50": statistics.median(r["report"]["50%"] for r in rounds),
        "report_p99": statistics.median(r["report"]["99%"] for r in rounds),
        "report_again_p50": statistics.median(r["report"]["again 50%"] for r in rounds),
        "report_again_p99": statistics.median(r["report"]["again 99%"] for r in rounds),
        "worker_rss": max(max(r["rss"].values()) for r in rounds),
        "seal_10k": seal_10k, "seal_all": seal_all,
        "bytes": bytes_total, "bytes_what": what, "per_table": per_table,
    }
    print(f"  seal {seal_10k['leaves']:,} of {seal_10k['pending']:,} pending: "
          f"{seal_10k['seconds']:.2f} s, peak RSS {seal_10k['rss_mib']:.0f} MiB (leaf workers "
          f"{seal_10k['workers_mib']:.0f}); the rest ({seal_all['leaves']:,}): "
          f"{seal_all['seconds']:.2f} s, peak RSS {seal_all['rss_mib']:.0f} MiB (leaf workers "
          f"{seal_all['workers_mib']:.0f})", flush=True)
    print(f"  disk ({what}) {bytes_total:,} B = {bytes_total / entries:,.0f} B per entry "
          f"at {entries:,}; by table (indexes included):", flush=True)
    for name, size_b in sorted(per_table.items(), key=lambda kv: -kv[1])[:14]:
        print(f"    {name:<28} {size_b:>15,} B {size_b / entries:>9,.1f} B/entry")
    print("  " + json.dumps(row), flush=True)
    return row


def table(rows: list[dict[str, Any]], backend: str) -> None:
    print(f"\n{backend}: medians of the rounds at each checkpoint")
    print("| entries | host ref. ms | ingest rec/s | proofs cold req/s, p50 / p99 ms | "
          "proofs warm req/s, p50 / p99 ms | city report p50 / p99 ms (asked again) | "
          "seal 10,000 | "
          "seal backlog | bytes/entry (total) | "
          "worker RSS | seal RSS (10k / backlog) |")
    print("| ---: | ---: | ---: | --- | --- | --- | --- | --- | --- | ---: | --- |")
    for r in rows:
        s1, s2 = r["seal_10k"], r["seal_all"]
        print(f"| {r['entries']:,} | {r['reference']:.1f} | {r['ingest']:,.0f} | "
              f"{r['cold_rps']:,.0f}, {r['cold_p50']:.1f} / {r['cold_p99']:.1f} | "
              f"{r['warm_rps']:,.0f}, {r['warm_p50']:.1f} / {r['warm_p99']:.1f} | "
              f"{r['report_p50']:.1f} / {r['report_p99']:.1f} ({r['report_again_p50']:.1f} / "
              f"{r['report_again_p99']:.1f}) | "
              f"{s1['seconds']:.2f} s | {s2['seconds']:.2f} s ({s2['leaves']:,}) | "
              f"{r['bytes'] / r['entries']:,.0f} ({r['bytes'] / 2**20:,.0f} MiB) | "
              f"{r['worker_rss']:.0f} MiB | {s1['rss_mib']:.0f} / {s2['rss_mib']:.0f} MiB |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--seal-child":
        url, data_dir, rpc, limit = sys.argv[2:6]
        seal_child(url, data_dir, rpc, int(limit))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="checkpoints in entries, comma-separated (10,000,000 takes hours)")
    parser.add_argument("--citizens", type=int, default=None,
                        help="default: one per 20 entries of the largest size, at least 20,000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20,
                        help="submissions of 1,000 per round of HTTP ingest")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    try:
        sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes: {args.sizes!r} is not a comma-separated list of entry counts")
    citizens = args.citizens or max(20_000, sizes[-1] // 20)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"bench_scale on {backend}: checkpoints {', '.join(f'{s:,}' for s in sizes)}; "
          f"{citizens:,} citizens", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.data_dir) as tmp:
        data_dir = Path(tmp)
        url = postgres_database() if args.postgres else None
        print(f"host reference at the start: {host_reference(data_dir):.1f} ms per 1,000 rows "
              "(a fixed SQLite workload, none of our code; higher is a slower or busier host)",
              flush=True)
        ledger = Ledger(data_dir, url, citizens)
        try:
            # records, not entries: a few records make no entry (duplicates, 0 g)
            history = History(ledger.pseudonyms, int(sizes[-1] * 1.05), int(time.time()) - 3 * DAY)
            rows = []
            for index, size in enumerate(sizes):
                ledger.grow(history, size)
                rows.append(checkpoint(ledger, args, size, index))
                table(rows, backend)
        finally:
            ledger.db.engine.dispose()
            stop(ledger.node)
    print(f"peak RSS of this (building) process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
