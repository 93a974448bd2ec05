"""Benchmark: seal N entries from the database, end to end, beside raw keccak and OZ's JS.

    python scripts/bench_seal.py [--n 1000000] [--repeat 3] [--workers 2] [--js-n 100000]

Fills a fresh SQLite ledger with N credit entries (not timed), then, in a fresh child
process each time (so peak RSS is the seal's own), seals them all into one batch and
anchors the root on an in-process chain: read from the database, leaf hashing on
``--workers`` processes, sort, inner nodes, tree stored, anchor sent and confirmed.
In the same run it times a raw keccak loop of the same number of leaf hashes and
OpenZeppelin's JS ``StandardMerkleTree.of`` on ``--js-n`` leaves. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert  # noqa: E402

from ledger.entries import entry_row  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.models import Batch, BatchTreeChunk, Citizen, LedgerEntry  # noqa: E402
from ledger.store.schema import create_schema  # noqa: E402


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


def measure_seal(url: str, workers: int) -> dict[str, float]:
    """One seal + anchor in this (fresh) process; prints a JSON line of figures."""
    from eth_account import Account

    from chain.client import ChainKind
    from chain.connect import connect_anchor
    from chain.nodes import in_process_web3
    from ledger.sealing import Sealer, SealOptions

    db = Database(url)
    with db.session() as s:  # start from unsealed entries every time
        s.execute(delete(BatchTreeChunk))
        s.execute(delete(Batch))
    anchor = connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)
    sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=workers))
    started = time.perf_counter()
    [batch] = sealer.seal()
    built = time.perf_counter() - started
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"leaves": batch.leaf_count, "seconds": built, "rss_self_mib": rss_self,
            "rss_worker_mib": rss_children, "status": batch.status}


def raw_keccak(n: int) -> float:
    """The same number of leaf hashes (keccak of a 352-byte encoding, then of 32 bytes)."""
    from ledger.hashing import keccak

    inputs = [os.urandom(352) for _ in range(1024)]
    started = time.perf_counter()
    for i in range(n):
        keccak(keccak(inputs[i & 1023]))
    return time.perf_counter() - started


def oz_js(n: int) -> dict[str, float] | None:
    try:
        out = subprocess.run(["node", str(ROOT / "scripts" / "bench_oz.mjs"), str(n)],
                             capture_output=True, text=True, check=True, cwd=ROOT, timeout=1800)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"OZ JS benchmark not run: {exc}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--js-n", type=int, default=100_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: child mode
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_seal(args.measure, args.workers)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        url = f"sqlite:///{tmp}/ledger.db"
        print(f"filling {args.n:,} entries ...", flush=True)
        print(f"  filled in {fill(url, args.n):.1f} s (not part of the figure)")
        runs = []
        for k in range(args.repeat):
            child = subprocess.run([sys.executable, __file__, "--measure", url,
                                    "--workers", str(args.workers)],
                                   capture_output=True, text=True, check=True)
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            r = runs[-1]
            print(f"  seal run {k + 1}: {r['seconds']:.2f} s, {r['leaves'] / r['seconds']:,.0f} "
                  f"leaves/s, RSS {r['rss_self_mib']:.0f} MiB (+ worker {r['rss_worker_mib']:.0f} "
                  f"MiB), {r['status']}")
    seal_s = statistics.median(r["seconds"] for r in runs)
    rss = max(max(r["rss_self_mib"], r["rss_worker_mib"]) for r in runs)
    keccak_s = raw_keccak(args.n)
    js = oz_js(args.js_n)

    print()
    print(f"seal end to end: {args.n:,} leaves, median {seal_s:.2f} s of {args.repeat} = "
          f"{args.n / seal_s:,.0f} leaves/s ({args.workers} workers); peak RSS {rss:.0f} MiB")
    print(f"raw keccak loop, 1 core: {args.n:,} leaf hashes in {keccak_s:.2f} s = "
          f"{args.n / keccak_s:,.0f} leaf hashes/s ({2 * args.n / keccak_s:,.0f} keccak/s)")
    if js:
        print(f"OZ StandardMerkleTree.of (JS), {js['n']:,} leaves: {js['seconds']:.2f} s = "
              f"{js['n'] / js['seconds']:,.0f} leaves/s")
        print(f"ratio: ours / OZ JS = {(args.n / seal_s) / (js['n'] / js['seconds']):.1f}x")


if __name__ == "__main__":
    main()
