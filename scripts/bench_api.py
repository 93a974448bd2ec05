"""Benchmark the HTTP API on loopback: ingest and proof GETs against a running server.

    python scripts/bench_api.py [--requests 20] [--ingest-clients 1] [--citizens 5000]
                                [--order time-ordered|newest-first] [--ingest-only]
                                [--proofs 20000] [--clients 64] [--workers 1] [--postgres]

Starts `carbon-ledger node` and `carbon-ledger serve` (`--workers` uvicorn workers,
background sealer off, no access log) as separate processes on a fresh data dir, then:
1. ingest: `--requests` signed submissions of 1,000 records each (rides with a plausible
   end time), time-ordered by default as live traffic is (each submission newer than the
   last, every citizen riding five times a day; `--order newest-first` sends the same
   rides the other way round, a partner back-filling), sent by `--ingest-clients`
   clients, each one request after another over a keep-alive connection (payloads and
   signatures prepared before the clock starts), with the medians of the server's own
   timings of each (its `Server-Timing` header: check, wait for the write lock, locked,
   commit, answer), and the rate over the first and the last tenth of the requests (so a
   cost that grows with the ledger shows); `--ingest-only` stops there;
2. seals them (`carbon-ledger seal`), so every entry has an anchored proof;
3. proof GETs: `--proofs` GET /v1/entries/{id}/proof as an auditor from `--clients`
   concurrent connections (asyncio + httpx), random entries; requests/s, p50 and p99;
   then the same load for `--wrk-seconds` from wrk (Debian's `wrk`), a C client that
   leaves the cores to the server (the Python client alone tops out near 150 requests/s),
   after `--wrk-warmup` unmeasured seconds. Each worker keeps anchored bundles in memory
   (16,384 of them), so after the warm-up most proofs are answered from it.
``--postgres`` puts the ledger in a database of a throwaway local PostgreSQL cluster
(durable, as the tests' fault cluster: tests/pg_cluster.py) instead of SQLite; several
``--ingest-clients`` then really write at once, so the rate with 4 clients against 2
shows whether writers serialise on a lock. ``--sample-waits`` then samples
``pg_stat_activity`` every 5 ms during ingest and prints the top wait events and, for lock
waits, the statement waiting and the one its blocker runs. The client runs on the same 2 cores as the
server. Prints figures; asserts nothing.
It first times a fixed SQLite workload with none of our code in it (`host_reference`):
a figure that moves between runs says the host, not the code, changed speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx
from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench_ingest.py --code may have put another checkout first
    sys.path.insert(0, str(ROOT))

from api.composition import Container  # noqa: E402
from api.settings import Settings  # noqa: E402
from chain.nodes import free_port  # noqa: E402
from ledger import accounts  # noqa: E402
from ledger.credentials import issue_api_key  # noqa: E402
from ledger.intake.signed import record_hashes  # noqa: E402
from ledger.signing import records_hash, submission_headers  # noqa: E402

CLI = [sys.executable, "-c", "from api.cli.main import run; run()"]


def start(args: list[str], *, env: dict[str, str], read_stdout: bool = False,
          code: Path | None = None, log_to: Path | None = None) -> subprocess.Popen[str]:
    """The CLI with ``args``, in a session of its own (:func:`stop` ends it all); with
    ``code``, that checkout's CLI (run from its directory, which comes first on the path).
    Its stderr goes to ``log_to``, else to ``$BENCH_LOG``, else nowhere."""
    log = open(log_to or os.environ.get("BENCH_LOG", os.devnull), "a")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(CLI + args, stdout=subprocess.PIPE if read_stdout else log, stderr=log,
                            text=True, env=env, start_new_session=True, cwd=code)


def stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def wait_workers(log: Path, workers: int, server: subprocess.Popen[str]) -> None:
    """Return once ``workers`` workers of a ``serve`` whose stderr goes to ``log`` have
    started (each logs uvicorn's "Application startup complete." as its last step before
    it listens). A load begun when only the first answers lands on that one worker."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Application startup complete.") >= workers:
            return
        if server.poll() is not None:
            raise SystemExit(f"serve exited ({server.returncode}); see {log}")
        time.sleep(0.05)
    raise SystemExit(f"{workers} workers did not start in 60 s; see {log}")


def prepare(data_dir: Path, citizens: int, database_url: str | None = None
            ) -> tuple[Account, str, str, list[str]]:
    key = Account.create()
    c = Container(Settings(data_dir=data_dir, database_url=database_url))
    with c.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="Green Bike", kind="bike_share",
                                          signing_address=bytes.fromhex(key.address[2:]))
        pseudonyms = [accounts.create_citizen(s).pseudonym for _ in range(citizens)]
        partner_key = issue_api_key(s, role="partner", partner=partner)
        auditor_key = issue_api_key(s, role="auditor")
    c.db.engine.dispose()
    return key, partner_key, auditor_key, pseudonyms


def ride(record_id: str, citizen: str, metres: int, start: int) -> dict[str, object]:
    """A bike ride at about 14 km/h, plausible under every methodology version."""
    return {"record_id": record_id, "citizen": citizen, "behaviour": "CYCLING", "quantity": metres,
            "occurred_at": start, "ended_at": start + metres // 4}


#: The orders ``payloads`` sends the records in. Live traffic is time-ordered: each
#: submission newer than the last. ``newest-first`` is the same records sent the other way
#: round (a partner back-filling its history), the order these benchmarks used before.
ORDERS = ("time-ordered", "newest-first")
#: Rides per citizen per day: every citizen comes back every day.
RIDES_PER_DAY = 5
#: The traffic must fit the submission window (45 days by default) when it is sent.
MAX_SPAN_DAYS = 44


def traffic_span_days(records: int, citizens: int, rides_per_day: int = RIDES_PER_DAY) -> float:
    return records / (citizens * rides_per_day)


def payloads(key: Account, chain_id: int, contract: str, pseudonyms: list[str], requests: int,
             *, order: str = "time-ordered", rides_per_day: int = RIDES_PER_DAY,
             ) -> list[tuple[bytes, dict[str, str]]]:
    """``requests`` bodies of 1,000 rides, with their signed headers (signature, nonce, a
    deadline an hour ahead).

    Live traffic by default (``time-ordered``): ride k is citizen k % len(pseudonyms)'s,
    and rides follow each other evenly in time, every citizen riding ``rides_per_day``
    times a day (about every 4.8 hours), so each submission holds the next 1,000 rides and
    the last one ends an hour before the benchmark starts. No per-hour bound, daily or
    monthly cap is reached (rides of 0.5-2.5 km, about 365 g a day), so every record is
    decided all the way to a credit, as most real ones are. ``newest-first`` sends the same
    rides in the reverse order (each submission older than the last). The span is
    ``requests * 1000 / (citizens * rides_per_day)`` days and must fit the submission window:
    more citizens for more records."""
    if order not in ORDERS:
        raise SystemExit(f"--order: one of {', '.join(ORDERS)}")
    total = requests * 1000
    span_days = traffic_span_days(total, len(pseudonyms), rides_per_day)
    if span_days > MAX_SPAN_DAYS:
        raise SystemExit(f"{total:,} rides of {len(pseudonyms):,} citizens riding {rides_per_day} "
                         f"times a day span {span_days:.0f} days, more than the submission "
                         f"window allows ({MAX_SPAN_DAYS}): give more --citizens")
    gap = 86400 / (len(pseudonyms) * rides_per_day)  # seconds between two rides of the city
    first = int(time.time()) - 3600 - int(total * gap)
    out = []
    for r in range(requests) if order == "time-ordered" else reversed(range(requests)):
        ks = range(r * 1000, (r + 1) * 1000)
        records = [ride(f"bench-{k}", pseudonyms[k % len(pseudonyms)], 500 + (k * 37) % 2000,
                        first + int(k * gap)) for k in ks]
        signed = submission_headers(key.key, chain_id=chain_id, contract=contract,
                                    partner="greenbike", count=1000, valid_for=3600,
                                    digest=records_hash(record_hashes(records)))
        out.append((json.dumps(records).encode(), signed))
    return out


def server_timing(header: str) -> dict[str, float]:
    """``check;dur=12.3, wait;dur=0.4`` → {"check": 12.3, "wait": 0.4} (ms)."""
    out = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            out[name] = float(duration)
    return out


def ingest(base: str, partner_key: str, bodies: list[tuple[bytes, dict[str, str]]], clients: int,
           phases: dict[str, list[float]] | None = None) -> tuple[float, int, list[float]]:
    """Each client sends its share of the bodies one after another; all start together.
    The server's own timings of each request (its Server-Timing header) go to ``phases``."""
    def send(share: list[tuple[bytes, dict[str, str]]]) -> tuple[int, list[float]]:
        accepted, per_request = 0, []
        with httpx.Client(base_url=base, timeout=300) as client:
            for body, signed in share:
                t = time.perf_counter()
                r = client.post("/v1/submissions", content=body, headers={
                    "Authorization": f"Bearer {partner_key}", **signed,
                    "Content-Type": "application/json"})
                r.raise_for_status()
                per_request.append(time.perf_counter() - t)
                if phases is not None:
                    for name, ms in server_timing(r.headers.get("server-timing", "")).items():
                        phases.setdefault(name, []).append(ms)
                answer = r.json()
                if answer["accepted"] != 1000:
                    other = [o for o in answer["records"] if o["status"] != "accepted"][:3]
                    raise SystemExit(f"only {answer['accepted']} of 1,000 accepted: {other}")
                accepted += answer["accepted"]
        return accepted, per_request

    with ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        results = list(pool.map(send, [bodies[k::clients] for k in range(clients)]))
        elapsed = time.perf_counter() - started
    return elapsed, sum(a for a, _ in results), [t for _, ts in results for t in ts]


async def proof_load(base: str, auditor_key: str, entry_ids: list[str], total: int,
                     clients: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits,
                                 headers={"Authorization": f"Bearer {auditor_key}"}) as client:
        async def worker() -> None:
            nonlocal errors
            rng = random.Random()
            for _ in queue:
                t = time.perf_counter()
                try:
                    r = await client.get(f"/v1/entries/{rng.choice(entry_ids)}/proof")
                    errors += r.status_code != 200
                except httpx.HTTPError:  # counted, not fatal: the figure says how many
                    errors += 1
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - started, latencies, errors


WRK_SCRIPT = """
ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
request = function()
  return wrk.format("GET", "/v1/entries/" .. ids[math.random(#ids)] .. "/proof")
end
"""


def verify_sample(client: httpx.Client, entry_ids: list[str], n: int = 20) -> int:
    """Fetch ``n`` random bundles and have the server check each against the chain, so the
    load below is known to be answered with real, valid proofs."""
    for entry_id in random.sample(entry_ids, min(n, len(entry_ids))):
        bundle = client.get(f"/v1/entries/{entry_id}/proof").json()
        verdict = client.post("/v1/verify", json=bundle).json()
        if bundle.get("status") != "anchored" or not verdict.get("valid"):
            raise SystemExit(f"entry {entry_id}: {bundle.get('status')}, {verdict}")
    return min(n, len(entry_ids))


def proof_load_wrk(base: str, auditor_key: str, entry_ids: list[str], seconds: int,
                   clients: int, tmp: Path, warmup: int) -> str:
    """The same load from wrk (C, 2 threads), so the client does not starve the server;
    a first, unmeasured `warmup` seconds of it fill the workers' bundle caches."""
    (tmp / "ids.txt").write_text("\n".join(entry_ids) + "\n")
    (tmp / "proofs.lua").write_text(WRK_SCRIPT % (tmp / "ids.txt"))

    def run(duration: int) -> str:
        return subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{duration}s", "--latency", "-s",
                               str(tmp / "proofs.lua"), "-H", f"Authorization: Bearer {auditor_key}",
                               base], capture_output=True, text=True, check=True).stdout

    if warmup:
        run(warmup)
    out = run(seconds)
    figures = {}
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith(("50%", "99%")):
            figures[parts[0]] = parts[1]
        elif line.startswith("Requests/sec:"):
            figures["rps"] = parts[1]
        elif "Non-2xx" in line:
            figures["non2xx"] = parts[-1]
    return (f"proof GETs (wrk, {clients} connections, {seconds} s after {warmup} s of warm-up): "
            f"{float(figures['rps']):,.0f} "
            f"requests/s; p50 {figures.get('50%')}, p99 {figures.get('99%')}; "
            f"non-2xx {figures.get('non2xx', 0)}")


@contextlib.contextmanager
def serving(rpc: str, env: dict[str, str], log: Path, *, code: Path | None = None,
            workers: int = 2, every_worker: bool = True
            ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``carbon-ledger serve --no-sealer`` with ``workers`` workers on a free port (``code``'s
    CLI, if given), its stderr to ``log``: its base URL and process once it answers, and
    with ``every_worker`` once every worker has started (a load begun when only the first
    answers lands on that one); stopped after the block."""
    port = free_port()
    log.unlink(missing_ok=True)
    server = start(["serve", "--rpc", rpc, "--port", str(port), "--no-sealer", "--no-access-log",
                    "--workers", str(workers)], env=env, code=code, log_to=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/v1/info")
        if every_worker:
            wait_workers(log, workers, server)
        yield base, server
    finally:
        stop(server)


def ask_city_report(client: httpx.Client, windows: list[dict[str, str]], *,
                    tagged: bool = False) -> tuple[list[float], httpx.Response]:
    """Ms per ``GET /v1/reports/city`` of each window, in order, and the last answer; with
    ``tagged``, each call after the first sends the ``ETag`` of the one before."""
    times, headers = [], {}
    answer = None
    for params in windows:
        started = time.perf_counter()
        answer = client.get("/v1/reports/city", params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code not in (200, 304):
            raise SystemExit(f"the report answered {answer.status_code}: {answer.text[:200]}")
        if tagged and "etag" in answer.headers:
            headers = {"If-None-Match": answer.headers["etag"]}
    assert answer is not None
    return times, answer


def year_by_day(last: date) -> dict[str, str]:
    """The city report's query for the year to ``last``, by day."""
    return {"from": (last - timedelta(days=364)).isoformat(), "to": last.isoformat(),
            "period": "day"}


def percentile(values: list[float], q: float) -> float:
    """The value below which a share ``q`` of ``values`` falls (nearest rank; with fewer
    than 100 values, p99 is the largest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def host_reference(directory: Path, batches: int = 40) -> float:
    """Median ms to insert and commit 1,000 rows (a random 32-byte unique key, a citizen id
    with a second index, a 300-byte body) into a WAL-mode SQLite file, 20,000 rows in: the
    shape of ingest's locked part. The same rows every run."""
    rng = random.Random(20261204)
    path = directory / "host-reference.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, key BLOB UNIQUE, citizen INTEGER, "
                     "at INTEGER, body BLOB)")
        conn.execute("CREATE INDEX t_citizen ON t (citizen, at)")
        times = []
        for batch in range(batches):
            rows = [(rng.randbytes(32), rng.randrange(5000), batch, rng.randbytes(300))
                    for _ in range(1000)]
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO t (key, citizen, at, body) VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
            times.append(time.perf_counter() - started)
        return statistics.median(times[batches // 2:]) * 1000
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def report_ingest(args: argparse.Namespace, reference_ms: float, seconds: float, accepted: int,
                  per_request: list[float], phases: dict[str, list[float]]) -> None:
    median_ms = statistics.median(per_request) * 1000
    print(f"host reference: {reference_ms:.1f} ms per 1,000 rows (a fixed SQLite workload, "
          "none of our code; higher is a slower or busier host)")
    print(f"ingest on {'PostgreSQL' if args.postgres else 'SQLite'} ({args.order}, "
          f"{args.citizens:,} citizens, {args.workers} worker(s)): {accepted:,} records accepted in "
          f"{args.requests} requests of 1,000 from {args.ingest_clients} client(s) in "
          f"{seconds:.2f} s = {accepted / seconds:,.0f} records/s (median request "
          f"{median_ms:.0f} ms)")
    tenth = max(1, len(per_request) // 10)
    if args.ingest_clients == 1 and len(per_request) >= 10:  # one client: in sending order
        first, last = per_request[:tenth], per_request[-tenth:]
        print(f"  first tenth of the requests {tenth * 1000 / sum(first):,.0f} records/s, "
              f"last tenth {tenth * 1000 / sum(last):,.0f} records/s")
    print("  server side per request (Server-Timing, medians, ms): " + ", ".join(
        f"{name} {statistics.median(ms):.1f}" for name, ms in phases.items()))


class WaitSampler:
    """Samples ``pg_stat_activity`` every ``interval`` seconds on its own connection while
    ingest runs (``--sample-waits``): what the ledger's active backends wait on, and for a
    lock wait the statement of the backend holding it (``pg_blocking_pids``), so writers
    that serialise show where."""

    QUERY = """
        SELECT a.wait_event_type, a.wait_event
               || coalesce((SELECT ' (' || coalesce(l.relation::regclass::text, l.locktype) || ')'
                              FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1), ''),
               left(regexp_replace(a.query, '\\s+', ' ', 'g'), 90),
               (SELECT left(regexp_replace(b.query, '\\s+', ' ', 'g'), 90)
                  FROM pg_stat_activity b WHERE b.pid = (pg_blocking_pids(a.pid))[1])
          FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.state = 'active' AND a.pid <> pg_backend_pid()
    """

    def __init__(self, url: str, interval: float = 0.005) -> None:
        import threading
        from collections import Counter

        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1),
                                    autocommit=True)
        self.interval = interval
        self.samples = 0
        self.active: Counter[int] = Counter()  # active backends per sample
        self.waits: Counter[str] = Counter()
        self.holders: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rows = self.conn.execute(self.QUERY).fetchall()
            self.samples += 1
            self.active[len(rows)] += 1
            for kind, event, query, blocker in rows:
                self.waits[f"{kind}:{event}" if kind else "CPU (no wait event)"] += 1
                if kind == "Lock":
                    self.holders[(query, blocker or "?")] += 1

    def report(self, top: int = 8) -> None:
        per = max(self.samples, 1)
        print(f"  wait sampler: {self.samples:,} samples of pg_stat_activity; active backends "
              "per sample " + ", ".join(f"{n}: {c / per:.0%}" for n, c in sorted(self.active.items())))
        for name, count in self.waits.most_common(top):
            print(f"    {count / per:6.2f} backends on average in {name}")
        for (query, blocker), count in self.holders.most_common(top // 2):
            print(f"    lock wait {count / per:5.2f}: {query!r}\n"
                  f"        held by a backend running {blocker!r}")


def postgres_database(*, durable: bool = True, prefix: str = "bench") -> str:
    """A fresh database on a throwaway PostgreSQL cluster, stopped at exit (``durable``:
    commits flushed as in production, as the fault tests run it). The cluster is this
    checkout's ``tests/pg_cluster.py`` whichever ledger code a benchmark measures
    (``--code DIR`` puts DIR first on the path: an older checkout's may start it otherwise)."""
    import atexit
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_pg_cluster", ROOT / "tests" / "pg_cluster.py")
    assert spec is not None and spec.loader is not None
    pg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg)
    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        raise SystemExit("--postgres: no PostgreSQL server binaries (apt-get install postgresql)")
    cluster = pg.PgCluster(bin_dir, durable=durable)
    atexit.register(cluster.stop)  # however the run ends
    cluster.start()
    databases = pg.PgDatabases(f"{cluster.base_url}/postgres")
    return str(databases.url(databases.create(prefix=prefix)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--ingest-clients", type=int, default=1)
    parser.add_argument("--citizens", type=int, default=5000)
    parser.add_argument("--order", choices=ORDERS, default="time-ordered",
                        help="time-ordered (live traffic, the default) or newest-first")
    parser.add_argument("--ingest-only", action="store_true",
                        help="stop after ingest: no seal, no proof GETs")
    parser.add_argument("--proofs", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--wrk-seconds", type=int, default=15)
    parser.add_argument("--wrk-warmup", type=int, default=10, help="unmeasured wrk seconds first")
    parser.add_argument("--postgres", action="store_true",
                        help="the ledger on a throwaway local PostgreSQL cluster")
    parser.add_argument("--sample-waits", action="store_true",
                        help="with --postgres: sample pg_stat_activity's wait events during "
                        "ingest and print the top ones and the statements holding the locks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data_dir = Path(tmp)
        env = {**os.environ, "CARBON_LEDGER_DATA_DIR": str(data_dir),
               "CARBON_LEDGER_RATE_LIMIT": "1000000/minute"}
        url = postgres_database() if args.postgres else None
        if url:
            env["CARBON_LEDGER_DATABASE_URL"] = url
        reference_ms = host_reference(data_dir)
        key, partner_key, auditor_key, pseudonyms = prepare(data_dir, args.citizens, url)
        node = start(["node"], env=env, read_stdout=True)
        rpc = node.stdout.readline().strip()  # type: ignore[union-attr]
        port = free_port()
        server = start(["serve", "--rpc", rpc, "--port", str(port), "--no-sealer", "--no-access-log",
                        "--workers", str(args.workers)],
                       env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/v1/info")
            info = httpx.get(f"{base}/v1/info").json()
            bodies = payloads(key, info["chainId"], info["contract"], pseudonyms, args.requests,
                              order=args.order)
            phases: dict[str, list[float]] = {}
            sampler = WaitSampler(url) if args.sample_waits and url else None
            with sampler or contextlib.nullcontext():
                seconds, accepted, per_request = ingest(base, partner_key, bodies,
                                                        args.ingest_clients, phases)
            if args.ingest_only:
                report_ingest(args, reference_ms, seconds, accepted, per_request, phases)
                if sampler is not None:
                    sampler.report()
                return
            subprocess.run(CLI + ["seal", "--rpc", rpc], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            entry_ids = []
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {auditor_key}"}) as c:
                dump = c.get("/v1/batches/1/dump", timeout=120).json()
                entry_ids = [v["value"][0] for v in dump["values"]]
                checked = verify_sample(c, entry_ids)
            elapsed, latencies, errors = asyncio.run(
                proof_load(base, auditor_key, entry_ids, args.proofs, args.clients))
            with_wrk = (proof_load_wrk(base, auditor_key, entry_ids, args.wrk_seconds, args.clients,
                                       data_dir, args.wrk_warmup) if shutil.which("wrk") else
                        "proof GETs (wrk): not run, wrk is not installed (apt-get install wrk)")
        finally:
            stop(server)
            stop(node)
    p = lambda q: percentile(latencies, q) * 1000  # noqa: E731
    report_ingest(args, reference_ms, seconds, accepted, per_request, phases)
    print(f"server: {args.workers} uvicorn worker(s); {checked} sampled bundles verified "
          "against the chain by /v1/verify")
    print(with_wrk)
    print(f"proof GETs: {len(latencies):,} from {args.clients} concurrent clients in {elapsed:.2f} s = "
          f"{len(latencies) / elapsed:,.0f} requests/s; p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms; "
          f"{errors} errors")


if __name__ == "__main__":
    main()
