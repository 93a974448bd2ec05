"""Benchmark: seal N entries from the database, end to end, beside raw keccak and OZ's JS;
and, with ``--before``, the code before and after side by side.

    python scripts/bench_seal.py [--n 1000000] [--repeat 3] [--workers 2] [--js-n 100000]
    python scripts/bench_seal.py --before DIR [--n 3000000] [--max-batch 1000000]
                                 [--repeat 3] [--proofs 5] [--postgres]
    python scripts/bench_seal.py --before DIR --phases [--n 1000000] [--repeat 5]
    python scripts/bench_seal.py --backlog-only [--n 20000000] [--max-batch 1000000]

Fills a fresh SQLite ledger with N credit entries (not timed), then, in a fresh child
process each time (so peak RSS is the seal's own), seals them all and anchors the roots
on an in-process chain: read from the database, leaf hashing on ``--workers`` processes,
sort, inner nodes, tree stored, anchor sent and confirmed. After each seal it times a raw
one-core keccak loop (300,000 leaf hashes): the machine bound it prints (cores x keccak/s
÷ 3) is from their median, and the seal's ratio to it. It also times OpenZeppelin's JS
``StandardMerkleTree.of`` on ``--js-n`` leaves.

``--before DIR`` (a checkout of older code, e.g. ``git worktree add /tmp/wt-before REV``)
seals copies of one ledger with DIR's code and with this one, interleaved round by round,
and after each seal starts ``--proofs`` fresh processes per side that each time their
first proof (a random entry: the batch's tree is not in memory yet). It prints medians
of the seal's time and peak RSS and of the first proof's latency and the process's RSS.

``--postgres`` puts the ledger in a database on a throwaway local PostgreSQL cluster
(this checkout's tests/pg_cluster.py; commits synchronous, fsync off) instead of a file,
for every mode; it is vacuumed and analysed once filled. With ``--before`` each round then
seals fresh copies of it (``CREATE DATABASE ... TEMPLATE``, written to disk before the
seals), one per side, dropped after the round's proofs. Each round first times a fixed
SQLite workload with none of our code in it (bench_api's ``host_reference``), so a busier
stretch of the host can be told apart.

``--phases`` (with ``--before``) times a seal's phases instead (leaf hashes, sort and
inner nodes, storing the tree, the locator, commit; no anchor), so a change to one phase
is seen apart from the host's noise in the others.

``--backlog-only`` seals N entries with this code alone and prints, batch by batch, the
time and the sealing process's RSS, so the memory a backlog of any size needs is seen to
be the memory one batch needs. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A child measuring other code imports the ledger from there (--code DIR), not from here.
from bench_worktree import code_from_argv  # noqa: E402  (imports nothing of the ledger)

CODE = code_from_argv() or ROOT
sys.path.insert(0, str(CODE))

from sqlalchemy import LargeBinary, create_engine, insert, inspect, make_url, text  # noqa: E402

from ledger.entries import entry_row  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.models import Citizen, LedgerEntry  # noqa: E402
from ledger.store.schema import create_schema  # noqa: E402

#: the tables a stored tree has lived in: one BLOB a tree, then rows of 32 nodes
TREE_TABLES = ("batch_trees", "batch_tree_chunks")


def fill(url: str, n: int) -> float:
    started = time.perf_counter()
    db = Database(url)
    create_schema(db.engine)
    with db.session() as s:
        s.add(Citizen(id=1, pseudonym="c_bench", salt=os.urandom(32), account=os.urandom(32),
                      created_at=0))
    account, partner = os.urandom(32), os.urandom(20)
    chunk = 50_000
    for lo in range(0, n, chunk):
        rows = [entry_row(entry_id=os.urandom(32), citizen_id=1, account=account, kind=1,
                          behaviour="CYCLING", quantity=1000 + i % 9000,
                          reduction_grams=(1000 + i % 9000) * 487 // 10000,
                          points=(1000 + i % 9000) * 487 // 10000, methodology=1,
                          occurred_at=1_763_000_000 + i, record_hash=os.urandom(32),
                          partner_address=partner)
                for i in range(lo, min(lo + chunk, n))]
        with db.engine.begin() as conn:
            conn.execute(insert(LedgerEntry), rows)
    db.engine.dispose()
    return time.perf_counter() - started


def add_old_tree_table(url: str) -> None:
    """The table the older code (before migration 0008) stores a tree in, one value each."""
    engine = create_engine(url)
    blob = LargeBinary().compile(dialect=engine.dialect)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS batch_trees (batch_id INTEGER NOT NULL "
                          f"PRIMARY KEY REFERENCES batches (id), nodes {blob} NOT NULL)"))
    engine.dispose()


def on_postgres_server(url: str, *statements: str) -> None:
    """Run statements outside a transaction on the server of ``url`` (its postgres
    database): CREATE, DROP DATABASE. No connection to ``url`` stays open, so it can be
    copied."""
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def unseal(db: Database) -> None:
    """Back to every entry unsealed, whichever code's tables the ledger has."""
    tables = set(inspect(db.engine).get_table_names())
    with db.engine.begin() as conn:
        for table in ("entry_locator", *TREE_TABLES, "batches"):
            if table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


def rss_now_mib() -> tuple[float, float]:
    """(current, peak) resident set of this process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def measure_seal(url: str, workers: int, max_batch: int | None) -> dict[str, object]:
    """Seal + anchor every entry in this (fresh) process; figures as a dict. With
    ``max_batch``, code that knows the option cuts the backlog into batches."""
    import dataclasses

    from eth_account import Account

    from chain.client import ChainKind
    from chain.connect import connect_anchor
    from chain.nodes import in_process_web3
    from ledger.sealing import Sealer, SealOptions

    db = Database(url)
    unseal(db)  # start from unsealed entries every time
    anchor = connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)
    started = time.perf_counter()
    per_batch: list[dict[str, float]] = []

    def on_step(step: str, batch_id: int) -> None:
        if step == "confirmed":
            now, peak = rss_now_mib()
            per_batch.append({"batch": batch_id, "at": time.perf_counter() - started,
                              "rss_mib": now, "peak_mib": peak})

    options = {"confirmations": 1, "workers": workers, "on_step": on_step}
    if max_batch and "max_batch" in {f.name for f in dataclasses.fields(SealOptions)}:
        options["max_batch"] = max_batch
    sealer = Sealer(db, anchor, SealOptions(**options))  # type: ignore[arg-type]
    batches = sealer.seal()
    took = time.perf_counter() - started
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"leaves": sum(b.leaf_count for b in batches), "batches": len(batches),
            "seconds": took, "rss_self_mib": rss_self, "rss_worker_mib": rss_children,
            "status": ",".join(sorted({b.status for b in batches})), "per_batch": per_batch}


def measure_first_proof(url: str, entry_hex: str) -> dict[str, float]:
    """This fresh process's first proof of the entry's batch: no row of its tree in
    memory. The process is warmed up first as a serving one is at its start and by any
    request (its proof service made, the ORM's mappers configured, the entry lookup's
    statements compiled, by asking for an entry that does not exist), so the figure is
    the batch's own cost; the warm-up is timed apart, and is the same whatever the batch."""
    from sqlalchemy.orm import configure_mappers

    from ledger.errors import NotFound
    from ledger.proof_service import ProofService

    db = Database(url)
    entry_id = bytes.fromhex(entry_hex)
    started = time.perf_counter()
    service = ProofService(db)
    configure_mappers()
    with contextlib.suppress(NotFound):
        service.bundle(bytes(32))
    warm_up = time.perf_counter() - started
    rss_before, _ = rss_now_mib()
    started = time.perf_counter()
    bundle = service.bundle(entry_id)
    took = time.perf_counter() - started
    rss_after, peak = rss_now_mib()
    return {"ms": took * 1000, "warm_up_ms": warm_up * 1000, "depth": len(bundle["proof"]),
            "rss_grew_mib": rss_after - rss_before, "peak_mib": peak}


def measure_phases(url: str, workers: int) -> dict[str, float]:
    """One batch of every entry, phase by phase, without anchoring (then unsealed again):
    where a seal's time goes. Needs code that stores trees in rows (#24 on)."""
    import inspect as pyinspect

    from sqlalchemy import func, select

    from ledger import batch_builder, sealing
    from ledger.store.models import Batch
    from ledger.store.trees import store_tree

    db = Database(url)
    unseal(db)
    with db.session() as s:
        last = s.scalar(select(func.max(LedgerEntry.seq)))
    times = {}
    started = time.perf_counter()
    hashes = batch_builder.leaf_hashes(db.engine, 1, last, workers=workers)
    times["leaves"] = time.perf_counter() - started
    started = time.perf_counter()
    parallel = "workers" in pyinspect.signature(batch_builder.tree_from_leaf_hashes).parameters
    built = (batch_builder.tree_from_leaf_hashes(hashes, workers=workers) if parallel  # type: ignore[call-arg]
             else batch_builder.tree_from_leaf_hashes(hashes))
    times["sort + inner nodes"] = time.perf_counter() - started
    with db.session(write_lock=True) as s:
        s.add(Batch(id=1, first_seq=1, last_seq=last, leaf_count=built.leaf_count,
                    root=built.root, content_hash=built.content_hash, status="sealed",
                    sealed_at=0))
        s.flush()
        started = time.perf_counter()
        store_tree(s.connection(), 1, built.nodes)
        times["store tree"] = time.perf_counter() - started
        started = time.perf_counter()
        if hasattr(sealing, "locate"):  # the sealer's own step, as it runs it
            sealing.locate(s.connection(), 1, 1, last, threads=workers)
        else:  # older code: the statement the sealer executed
            s.execute(sealing._locate(1, 1, last))
        times["locator"] = time.perf_counter() - started
        started = time.perf_counter()
    times["commit"] = time.perf_counter() - started
    unseal(db)
    return times


def child(mode: str, code: Path, *args: str) -> dict[str, object]:
    """Run this script as a fresh process on ``code``'s ledger package; its JSON line."""
    out = subprocess.run([sys.executable, __file__, "--code", str(code), mode, *args],
                         capture_output=True, text=True, cwd=code)
    if out.returncode:
        raise SystemExit(f"{mode} on {code} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_keccak(n: int) -> float:
    """The same number of leaf hashes (keccak of a 352-byte encoding, then of 32 bytes)."""
    from ledger.hashing import keccak

    inputs = [os.urandom(352) for _ in range(1024)]
    started = time.perf_counter()
    for i in range(n):
        keccak(keccak(inputs[i & 1023]))
    return time.perf_counter() - started


def oz_js(n: int) -> dict[str, float] | None:
    if n <= 0:  # --js-n 0: not asked for
        return None
    try:
        out = subprocess.run(["node", str(ROOT / "scripts" / "bench_oz.mjs"), str(n)],
                             capture_output=True, text=True, check=True, cwd=ROOT, timeout=1800)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"OZ JS benchmark not run: {exc}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def filled(args: argparse.Namespace, tmp: str) -> str:
    """The URL of a ledger of ``--n`` entries: ``--ledger`` if it exists, else filled;
    with ``--postgres`` a database filled on a throwaway cluster, then vacuumed and
    analysed (so neither autovacuum nor hint bits land in a seal's time)."""
    if args.postgres:
        from bench_api import postgres_database

        url = postgres_database(prefix="seal")
        print(f"filling {args.n:,} entries on PostgreSQL ...", flush=True)
        print(f"  filled in {fill(url, args.n):.1f} s (not part of the figure)", flush=True)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        engine.dispose()
        return url
    path = Path(args.ledger) if args.ledger else Path(tmp) / "ledger.db"
    url = f"sqlite:///{path}"
    if path.exists():
        print(f"reusing {path} (not filled again)", flush=True)
    else:
        print(f"filling {args.n:,} entries ...", flush=True)
        print(f"  filled in {fill(url, args.n):.1f} s (not part of the figure)", flush=True)
    return url


def seal_line(r: dict[str, object]) -> str:
    return (f"{r['seconds']:.2f} s, {r['leaves']:,} leaves in {r['batches']} batch(es), peak RSS "
            f"{r['rss_self_mib']:.0f} MiB (+ worker {r['rss_worker_mib']:.0f} MiB), {r['status']}")


@contextlib.contextmanager
def round_ledgers(filled_url: str, tmp: str, older_schema: str | None = None
                  ) -> Iterator[dict[str, str]]:
    """A round's ledger for each side, copies of the filled one, the older code's with its
    tree table, and downgraded to ``older_schema`` when that code's schema is older than
    this checkout's (:func:`bench_worktree.downgrade`: its leaves stored as it stores
    them). PostgreSQL: fresh copies, then a checkpoint and a sync, so writing them out
    (gigabytes of dirty pages the kernel would flush during the seals) is in no seal's
    time; dropped after the round. SQLite: the filled file for this code and one copy for
    the older code, kept from round to round (each seal unseals first)."""
    import shutil

    from bench_worktree import downgrade

    if filled_url.startswith("sqlite"):
        before = Path(tmp) / "before.db"
        if not before.exists():
            shutil.copyfile(filled_url.removeprefix("sqlite:///"), before)
            add_old_tree_table(f"sqlite:///{before}")
            if older_schema:
                downgrade(f"sqlite:///{before}", older_schema)
        yield {"before": f"sqlite:///{before}", "after": filled_url}
        return
    template = make_url(filled_url).database
    names = {side: f"{template}_{side}" for side in ("before", "after")}
    on_postgres_server(filled_url, *(f"CREATE DATABASE {name} TEMPLATE {template} "
                                     "STRATEGY FILE_COPY" for name in names.values()),
                       "CHECKPOINT")
    os.sync()
    urls = {side: make_url(filled_url).set(database=name).render_as_string(hide_password=False)
            for side, name in names.items()}
    add_old_tree_table(urls["before"])
    if older_schema:
        downgrade(urls["before"], older_schema)
    try:
        yield urls
    finally:
        on_postgres_server(filled_url, *(f"DROP DATABASE {name} WITH (FORCE)"
                                         for name in names.values()))


def entries_to_prove(url: str, rng: random.Random, count: int) -> list[str]:
    """``count`` random entries' ids, in hex."""
    engine = create_engine(url)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(seq) FROM ledger_entries")).scalar_one()
        entries = [conn.execute(text("SELECT substr(leaf, 1, 32) FROM ledger_entries "  # the id
                                     "WHERE seq >= :q ORDER BY seq LIMIT 1"),
                                {"q": rng.randint(1, top)}).scalar_one().hex()
                   for _ in range(count)]
    engine.dispose()
    return entries


def host_load(tmp: str) -> float:
    """bench_api's host reference: ms for a fixed SQLite workload with none of our code."""
    from bench_api import host_reference

    return host_reference(Path(tmp))


def older_schema(code: Path) -> str | None:
    """The schema head of an older checkout, when it is not this checkout's."""
    from bench_worktree import schema_head

    head = schema_head(code)
    return None if head == schema_head(ROOT) else head


def before_after(args: argparse.Namespace, tmp: str) -> None:
    """Both codes on copies of one ledger, interleaved; medians."""
    filled_url = filled(args, tmp)
    if args.phases:
        phases(args, filled_url, tmp)
        return
    codes = {"before": Path(args.before).resolve(), "after": ROOT}
    seals: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    proofs: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    hosts: list[float] = []
    rates: list[float] = []  # raw keccak/s, a loop each round
    rng = random.Random(24)
    max_batch = [] if args.max_batch is None else ["--max-batch", str(args.max_batch)]
    older = older_schema(codes["before"])
    if older:
        print(f"  the older code seals copies downgraded to its schema, {older}", flush=True)
    for k in range(args.repeat):
        order = ["before", "after"] if k % 2 == 0 else ["after", "before"]
        hosts.append(host_load(tmp))
        print(f"  round {k + 1} host reference: {hosts[-1]:.1f} ms", flush=True)
        with round_ledgers(filled_url, tmp, older) as urls:
            for name in order:
                seals[name].append(child("--measure", codes[name], urls[name], "--workers",
                                         str(args.workers), *max_batch))
                print(f"  round {k + 1} {name:6} seal: {seal_line(seals[name][-1])}",
                      flush=True)
            rates.append(keccak_rate())
            for entry in entries_to_prove(urls["after"], rng, args.proofs):
                for name in order:
                    proofs[name].append(child("--first-proof", codes[name], urls[name], entry))
        for name in order if args.proofs else ():
            mine = proofs[name][-args.proofs:]
            print(f"  round {k + 1} {name:6} first proofs: "
                  + ", ".join(f"{p['ms']:.1f}" for p in mine) + " ms; process grew "
                  + ", ".join(f"{p['rss_grew_mib']:.0f}" for p in mine) + " MiB", flush=True)
    print()
    print(f"{args.n:,} entries, {backend(args)}, {args.workers} leaf workers, max batch "
          f"{args.max_batch or 'the code default'}; {args.repeat} interleaved rounds, "
          f"{args.proofs} first proofs per side per round")
    print(f"host reference by round: {', '.join(f'{h:.1f}' for h in hosts)} ms per 1,000 rows "
          "(a fixed SQLite workload, none of our code; higher is a slower or busier host)")
    bound = machine_bound(rates)
    for name in ("before", "after"):
        r, p = seals[name], proofs[name]
        seal_s = statistics.median(x["seconds"] for x in r)
        print(f"  {name:6}: seal median {seal_s:.2f} s = {args.n / seal_s:,.0f} leaves/s = "
              f"{args.n / seal_s / bound:.2f} x the machine bound "
              f"({statistics.median(x['batches'] for x in r):.0f} batches), peak RSS median "
              f"{statistics.median(x['rss_self_mib'] for x in r):.0f} MiB (workers "
              f"{statistics.median(x['rss_worker_mib'] for x in r):.0f} MiB)")
        if p:
            print(f"          first proof median {statistics.median(x['ms'] for x in p):.1f} ms "
                  f"({min(x['ms'] for x in p):.1f}-{max(x['ms'] for x in p):.1f}), the process "
                  "grew median "
                  f"{statistics.median(x['rss_grew_mib'] for x in p):.0f} MiB (depth "
                  f"{statistics.median(x['depth'] for x in p):.0f}; the process's warm-up "
                  f"before it, median {statistics.median(x['warm_up_ms'] for x in p):.0f} ms)")


def phases(args: argparse.Namespace, filled_url: str, tmp: str) -> None:
    """A seal's phases, both codes interleaved; medians."""
    codes = {"before": Path(args.before).resolve(), "after": ROOT}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    older = older_schema(codes["before"])
    for k in range(args.repeat):
        print(f"  round {k + 1} host reference: {host_load(tmp):.1f} ms", flush=True)
        with round_ledgers(filled_url, tmp, older) as urls:
            for name in (["before", "after"] if k % 2 == 0 else ["after", "before"]):
                runs[name].append(child("--measure-phases", codes[name], urls[name],  # type: ignore[arg-type]
                                        "--workers", str(args.workers)))
                print(f"  round {k + 1} {name:6}: " + ", ".join(
                    f"{p} {t:.2f} s" for p, t in runs[name][-1].items()), flush=True)
    print(f"\n{args.n:,} entries, {backend(args)}, {args.workers} workers; medians of "
          f"{args.repeat} interleaved rounds")
    for name in ("before", "after"):
        r = runs[name]
        total = statistics.median(sum(x.values()) for x in r)
        print(f"  {name:6}: " + ", ".join(f"{p} {statistics.median(x[p] for x in r):.2f} s"
                                         for p in r[0]) + f"; all {total:.2f} s")


def backend(args: argparse.Namespace) -> str:
    return "PostgreSQL" if args.postgres else "SQLite"


def keccak_rate(n: int = 300_000) -> float:
    """keccak/s of a raw one-core loop of ``n`` leaf hashes, timed now."""
    return 2 * n / raw_keccak(n)


def machine_bound(rates: list[float]) -> float:
    """Leaves/s this machine could seal if hashing were all it did, on every core: a
    leaf costs two keccaks and an inner node one, so cores x keccak/s / 3, keccak/s the
    median of raw one-core loops timed between the seals (one loop timed once swung
    from 435,755 to 690,000 keccak/s within minutes on this host). Printed with how it
    was found."""
    cores = len(os.sched_getaffinity(0))
    per_second = statistics.median(rates)
    bound = cores * per_second / 3
    print(f"machine bound: {cores} cores x {per_second:,.0f} keccak/s (raw one-core loop, "
          f"median of {len(rates)} timed between the seals: {min(rates):,.0f}-"
          f"{max(rates):,.0f}) / 3 = {bound:,.0f} leaves/s")
    return bound


def backlog(args: argparse.Namespace, tmp: str) -> None:
    """This code alone, one seal of the whole backlog, batch by batch."""
    url = filled(args, tmp)
    max_batch = [] if args.max_batch is None else ["--max-batch", str(args.max_batch)]
    r = child("--measure", ROOT, url, "--workers", str(args.workers), *max_batch)
    last = 0.0
    for b in r["per_batch"]:  # type: ignore[union-attr]
        print(f"  batch {b['batch']:3}: anchored at {b['at']:7.1f} s (+{b['at'] - last:.1f} s), "
              f"RSS {b['rss_mib']:.0f} MiB, peak so far {b['peak_mib']:.0f} MiB")
        last = b["at"]
    print(f"backlog of {args.n:,} ({backend(args)}): {seal_line(r)} = "
          f"{r['leaves'] / r['seconds']:,.0f} leaves/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--js-n", type=int, default=100_000)
    parser.add_argument("--max-batch", type=int, default=None,
                        help="entries per batch (default: the code's own default)")
    parser.add_argument("--before", help="a checkout of the code to compare with")
    parser.add_argument("--proofs", type=int, default=5,
                        help="with --before: first proofs per side per round")
    parser.add_argument("--backlog-only", action="store_true",
                        help="seal N entries once, printing each batch's time and RSS")
    parser.add_argument("--ledger", help="a SQLite file to fill, or reuse if it exists")
    parser.add_argument("--postgres", action="store_true",
                        help="the ledger on a throwaway local PostgreSQL cluster, not SQLite")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # internal: whose ledger package
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: child mode
    parser.add_argument("--first-proof", nargs=2, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--phases", action="store_true",
                        help="with --before: time a seal's phases (no anchor), not whole seals")
    parser.add_argument("--measure-phases", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.postgres and args.ledger:
        parser.error("--ledger is a SQLite file; --postgres fills a fresh database")
    if args.before and not (Path(args.before) / "ledger" / "sealing.py").is_file():
        parser.error(f"--before: {args.before!r} is not a checkout of this project "
                     "(git worktree add DIR REV)")
    if args.measure:
        print(json.dumps(measure_seal(args.measure, args.workers, args.max_batch)))
        return
    if args.measure_phases:
        print(json.dumps(measure_phases(args.measure_phases, args.workers)))
        return
    if args.first_proof:
        print(json.dumps(measure_first_proof(*args.first_proof)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        if args.before:
            before_after(args, tmp)
            return
        if args.backlog_only:
            backlog(args, tmp)
            return
        url = filled(args, tmp)
        runs, rates = [], []
        for k in range(args.repeat):
            runs.append(child("--measure", ROOT, url, "--workers", str(args.workers),
                              *([] if args.max_batch is None else
                                ["--max-batch", str(args.max_batch)])))
            rates.append(keccak_rate())
            print(f"  seal run {k + 1}: {seal_line(runs[-1])}; raw keccak loop "
                  f"{rates[-1]:,.0f}/s")
    seal_s = statistics.median(float(r["seconds"]) for r in runs)  # type: ignore[arg-type]
    rss = max(max(r["rss_self_mib"], r["rss_worker_mib"]) for r in runs)  # type: ignore[type-var]
    js = oz_js(args.js_n)

    print()
    print(f"seal end to end ({backend(args)}): {args.n:,} leaves, median {seal_s:.2f} s of {args.repeat} = "
          f"{args.n / seal_s:,.0f} leaves/s ({args.workers} workers); peak RSS {rss:.0f} MiB")
    bound = machine_bound(rates)
    print(f"the seal is {args.n / seal_s / bound:.2f} x the machine bound")
    if js:
        print(f"OZ StandardMerkleTree.of (JS), {js['n']:,} leaves: {js['seconds']:.2f} s = "
              f"{js['n'] / js['seconds']:,.0f} leaves/s")
        print(f"ratio: ours / OZ JS = {(args.n / seal_s) / (js['n'] / js['seconds']):.1f}x")


if __name__ == "__main__":
    main()
