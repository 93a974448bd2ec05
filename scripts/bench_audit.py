"""Benchmark: audit one sealed batch of N entries, the old code against this one.

    python scripts/bench_audit.py [--n 1000000] [--rounds 3] [--workers 2] [--before REV]
                                  [--cache DIR] [--postgres]

Builds a ledger of N credits in one batch (or reuses the one already built in ``--cache``
for this N and backend): N rides of 5,000 citizens submitted through the ledger's own
intake (``submit_records``: every rule on, 1,000 records a submission, time-ordered,
every citizen riding five times a day), then sealed as one batch by the real sealer and
anchored on an in-process chain. Not timed.

Then, in interleaved rounds (before, after, before, after, ...; each round begins with
a *host reference*, a fixed keccak loop's milliseconds, so a busier stretch of the shared
host shows), each run in a fresh child process so its peak RSS is the audit's own, it
audits the batch with the code of ``--before`` (a git revision, checked out in a
temporary worktree; default: the last commit before the streaming audit; where its
schema is older than this checkout's, it audits a copy of the ledger downgraded to its
revision by this checkout's migrations: the same entries, stored as that code stores
them) and with this checkout's, each in one process and, with ``--workers`` > 1, also with
that many forked workers (an older code without them fails there, and says so).
It prints each run's entries/s, the CPU seconds it used (its own and its
workers': on a busy shared host the wall time says more about the host than about the
code), its peak RSS (the parent's, and the largest worker's), then the medians. A run
that fails (the old code's one ``IN`` list of every credit id is past SQLite's variable
limit above 32,766 credits) is printed with its error, its time and its peak RSS, and
counts as no figure.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The commit whose ``ledger/audit.py`` loaded every entry at once.
BEFORE = "7a642b0"
CITIZENS = 5000
RIDES_PER_DAY = 5


# A child measuring another checkout imports that checkout's ledger, before anything else.
from bench_worktree import (  # noqa: E402  (imports nothing of the ledger)
    code_from_argv,
    downgraded_copy,
    schema_head,
    worktree,
)

sys.path.insert(0, str(code_from_argv() or ROOT))


def fill(url: str, n: int) -> None:
    """N credited rides in one sealed, anchored batch, through intake and the sealer."""
    from eth_account import Account

    from chain.client import ChainKind
    from chain.connect import connect_anchor
    from chain.nodes import in_process_web3
    from ledger import accounts
    from ledger.intake.service import submit_records
    from ledger.sealing import Sealer, SealOptions
    from ledger.store.database import Database
    from ledger.store.schema import create_schema

    db = Database(url)
    create_schema(db.engine)
    with db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="Green Bike",
                                          kind="bike_share",
                                          signing_address=bytes.fromhex(Account.create().address[2:]))
        pseudonyms = [accounts.create_citizen(s).pseudonym for _ in range(CITIZENS)]
    gap = 86400 / (CITIZENS * RIDES_PER_DAY)  # seconds between two rides in the city
    now = int(time.time())
    first = now - 3600 - int(n * gap)
    started = time.perf_counter()
    for lo in range(0, n, 1000):
        records = [{"record_id": f"bench-{k}", "citizen": pseudonyms[k % CITIZENS],
                    "behaviour": "CYCLING", "quantity": 500 + (k * 37) % 2000,
                    "occurred_at": first + int(k * gap),
                    "ended_at": first + int(k * gap) + (500 + (k * 37) % 2000) // 4}
                   for k in range(lo, min(lo + 1000, n))]
        with db.session(write_lock=True) as s:
            outcomes = submit_records(s, partner=s.merge(partner), records=records,
                                      now=first + int(min(lo + 1000, n) * gap) + 3600).outcomes
        refused = [o for o in outcomes if o.status != "accepted"]
        if refused:
            raise SystemExit(f"the fill's record was refused: {refused[0]}")
        if lo % 100_000 == 0:
            print(f"  {lo:,} records in {time.perf_counter() - started:.0f} s", flush=True)
    anchor = connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)
    options = SealOptions(confirmations=1, workers=2)
    if hasattr(options, "max_batch"):  # one batch of N, whatever the sealer's default limit
        options = dataclasses.replace(options, max_batch=max(n, 1))
    batches = Sealer(db, anchor, options).seal()
    print(f"  sealed {[(b.id, b.leaf_count, b.status) for b in batches]}", flush=True)
    db.engine.dispose()


def measure(url: str, batch_id: int, workers: int) -> dict[str, object]:
    """One audit of ``batch_id`` in this (fresh) process, with whichever ledger it imports
    (``workers`` > 1: the new code's forked slices)."""
    import ledger
    from ledger.audit import audit_batch
    from ledger.store.database import Database

    db = Database(url)
    started = time.perf_counter()
    base = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with db.session(snapshot=True) as s:
            report = (audit_batch(s, batch_id, workers=workers) if workers > 1  # type: ignore[call-arg]
                      else audit_batch(s, batch_id))
        outcome: dict[str, object] = {"entries": report.entries, "ok": report.ok,
                                      "problems": len(report.problems)}
    except Exception as exc:  # the old code's failure is a figure of this benchmark
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        outcome = {"error": text[:200]}
    outcome["seconds"] = time.perf_counter() - started
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome["cpu_s"] = (me.ru_utime + me.ru_stime - base.ru_utime - base.ru_stime
                        + kids.ru_utime + kids.ru_stime)
    outcome["rss_mib"] = _peak_rss_mib()
    outcome["rss_worker_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    outcome["code"] = str(Path(ledger.__file__).parents[1])
    return outcome


def host_reference() -> float:
    """Milliseconds for a fixed loop with none of the audit in it (100,000 double keccaks
    of 352 bytes, in this process), so a busier stretch of the host can be told apart."""
    from ledger.hashing import keccak

    leaf = bytes(range(256)) + bytes(96)
    started = time.perf_counter()
    for _ in range(100_000):
        keccak(keccak(leaf))
    return (time.perf_counter() - started) * 1000


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM): ``ru_maxrss`` would start from the
    parent's resident set at the fork before the exec (the filling parent's, here)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(url: str, code: Path, batch_id: int, workers: int) -> dict[str, object]:
    child = subprocess.run([sys.executable, __file__, "--measure", url, "--batch", str(batch_id),
                            "--code", str(code), "--workers", str(workers)],
                           capture_output=True, text=True, cwd=ROOT)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"error": (child.stderr.strip().splitlines() or ["no output"])[-1][:200],
                "seconds": float("nan"), "rss_mib": float("nan")}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _shown(label: str, r: dict[str, object], n: int) -> str:
    seconds, rss = float(r["seconds"]), float(r["rss_mib"])  # type: ignore[arg-type]
    if "error" in r:
        return f"  {label}: FAILED after {seconds:.1f} s, peak RSS {rss:.0f} MiB: {r['error']}"
    workers = float(r.get("rss_worker_mib", 0))  # type: ignore[arg-type]
    cpu = float(r.get("cpu_s", 0))  # type: ignore[arg-type]
    return (f"  {label}: {seconds:.2f} s, {n / seconds:,.0f} entries/s ({cpu:.1f} CPU s, "
            f"{n / cpu if cpu else 0:,.0f} entries a CPU second), peak RSS {rss:.0f} MiB"
            + (f" (+ each worker {workers:.0f} MiB)" if workers else "")
            + f", ok={r['ok']} problems={r['problems']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries in the batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="the git revision to compare with")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-audit",
                        help="where the built ledgers are kept for the next run")
    parser.add_argument("--postgres", action="store_true",
                        help="a database on a throwaway local PostgreSQL cluster (not kept)")
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument("--workers", type=int, default=1,
                        help="also audit with this many worker processes (each code)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child mode: the database URL
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.batch, args.workers)))
        return

    if args.postgres:
        sys.path.insert(0, str(ROOT / "scripts"))
        from bench_api import postgres_database

        url = postgres_database(durable=False)
        print(f"filling {args.n:,} entries on PostgreSQL ...", flush=True)
        fill(url, args.n)
    else:
        args.cache.mkdir(parents=True, exist_ok=True)
        path = args.cache / f"ledger-{args.n}.db"
        url = f"sqlite:///{path}"
        if not (args.cache / f"ledger-{args.n}.done").exists():
            path.unlink(missing_ok=True)
            print(f"filling {args.n:,} entries into {path} (kept for the next run) ...", flush=True)
            started = time.perf_counter()
            fill(url, args.n)
            (args.cache / f"ledger-{args.n}.done").write_text("filled\n")
            print(f"  filled in {time.perf_counter() - started:.0f} s (not part of the figure)")
        else:
            print(f"reusing {path}")
    if args.fill_only:
        return
    with tempfile.TemporaryDirectory(prefix="bench-audit-before-") as tmp, \
            worktree(args.before, Path(tmp) / "before") as before:
        before_url = url
        if (head := schema_head(before)) != schema_head(ROOT):
            print(f"  the before code reads a copy downgraded to its schema ({head}) ...",
                  flush=True)
            before_url = downgraded_copy(url, head, Path(tmp))
        kinds = [("before", before, 1, before_url), ("after", ROOT, 1, url)]
        if args.workers > 1:  # (an older code without workers fails there, and says so)
            kinds += [(f"before, {args.workers} workers", before, args.workers, before_url),
                      (f"after, {args.workers} workers", ROOT, args.workers, url)]
        runs: dict[str, list[dict[str, object]]] = {label: [] for label, *_ in kinds}
        for k in range(args.rounds):
            print(f"  round {k + 1} host reference: {host_reference():.0f} ms", flush=True)
            for label, code, workers, ledger_url in kinds:
                runs[label].append(_run(ledger_url, code, 1, workers))
                print(_shown(f"round {k + 1} {label}", runs[label][-1], args.n), flush=True)

    print()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    for label, rev in ((label, args.before if label.startswith("before") else "this checkout")
                       for label in runs):
        good = [r for r in runs[label] if "error" not in r]
        rss = max(max(float(r["rss_mib"]), float(r.get("rss_worker_mib", 0)))  # type: ignore[arg-type]
                  for r in runs[label])
        if good:
            seconds = statistics.median(float(r["seconds"]) for r in good)  # type: ignore[arg-type]
            cpu = statistics.median(float(r["cpu_s"]) for r in good)  # type: ignore[arg-type]
            print(f"{label} ({rev}), {backend}, {args.n:,} entries in one batch: median "
                  f"{seconds:.2f} s of {len(good)} = {args.n / seconds:,.0f} entries/s; median "
                  f"{cpu:.1f} CPU s = {args.n / cpu:,.0f} entries a CPU second; "
                  f"peak RSS {rss:.0f} MiB")
        else:
            failed = runs[label][0]
            print(f"{label} ({rev}), {backend}, {args.n:,} entries in one batch: failed in "
                  f"every round, after a median "
                  f"{statistics.median(float(r['seconds']) for r in runs[label]):.1f} s "  # type: ignore[arg-type]
                  f"(peak RSS {rss:.0f} MiB): {failed['error']}")


if __name__ == "__main__":
    main()
