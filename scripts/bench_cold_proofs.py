"""Benchmark proof GETs against freshly started workers, another revision's code against
this checkout's, on one ledger.

    python scripts/bench_cold_proofs.py [--before 214dd14] [--entries 20000] [--rounds 4]
                                        [--wrk-seconds 10] [--postgres] [--at-first-answer]
                                        [--in-process N]

Builds a ledger of ``--entries`` as ``bench_scale.py`` builds its history (every
behaviour, through intake with every rule on, sealed in batches of 10,000 and anchored on
a ``carbon-ledger node``; 20,000 citizens), then, in interleaved rounds (the order
alternating; a host reference printed at each round's start), for each code: starts
``serve --workers 2 --no-sealer`` from it and, once both workers have started, runs wrk
with 64 connections for ``--wrk-seconds`` on proof GETs of 5,000 random sealed entries
(cold: new processes, every connection new, every bundle made from the database), then
the same again (warm). With ``--at-first-answer`` the cold load starts as soon as
``/v1/info`` answers, as in a restart under load: the connections then land on whichever
worker is up first. ``--before`` is a git revision, checked out in a temporary
worktree; where its schema is older than this checkout's, it serves a copy of the ledger
downgraded to its revision and packed (the same entries, stored as it stores them).
With ``--in-process N`` there is no HTTP: each round runs, for each code, a fresh process
that makes 300 bundles (its connections opened, its statements prepared), then times N
more, every one a cold bundle from the database (``ProofService.answer``, no bundle kept
before), and prints ms a bundle and the tree queries a bundle made; both codes draw the
same ids in a round. Prints figures; asserts nothing. ``--postgres`` runs it all on a
throwaway PostgreSQL cluster (as ``bench_api.py --postgres``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

from bench_api import host_reference, postgres_database, serving  # noqa: E402
from bench_scale import DAY, History, Ledger, old_entry_ids, stop, wrk  # noqa: E402
from bench_worktree import downgraded_copy, is_commit, schema_head, worktree  # noqa: E402

# Run in a fresh process from a checkout's directory: that code's cold bundle, timed.
_IN_PROCESS = """
import gc, json, random, sys, time
sys.path.insert(0, ".")
from ledger.proof_service import ProofService
from ledger.store.database import Database
import ledger.proofs as proofs
url, ids_path, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids = [bytes.fromhex(line[2:]) for line in open(ids_path).read().split()]
trees = []
tree = proofs.TreeCache.tree
def counted(self, *args, **kwargs):
    trees.append(tree(self, *args, **kwargs))
    return trees[-1]
proofs.TreeCache.tree = counted
service = ProofService(Database(url), head=lambda: 1 << 40)
sample = random.Random(seed).sample(ids, min(len(ids), 300 + n))
for entry_id in sample[:300]:
    service.answer(entry_id)
del trees[:]
gc.collect()
started = time.perf_counter()
for entry_id in sample[300:]:
    service.answer(entry_id)
took = time.perf_counter() - started
print(json.dumps({"ms": took / len(sample[300:]) * 1e3,
                  "queries": sum(t.queries for t in trees) / max(1, len(trees))}))
"""


def in_process(code: Path, url: str, ids: Path, n: int, seed: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _IN_PROCESS, url, str(ids), str(n), str(seed)],
                         cwd=code, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the in-process run of {code} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="214dd14", help="git revision to compare with")
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--at-first-answer", action="store_true",
                        help="start the cold load when the first worker answers, not when both "
                             "have started")
    parser.add_argument("--in-process", type=int, default=0, metavar="N",
                        help="no HTTP: time N cold bundles in a fresh process of each code")
    args = parser.parse_args()
    if args.in_process < 0:
        parser.error("--in-process: a number of bundles, at least 1 (0, the default: over HTTP)")
    if not is_commit(args.before):
        parser.error(f"--before: {args.before!r} is not a commit of this repository")
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp, \
            worktree(args.before, Path(tmp) / "before") as before:
        data_dir = Path(tmp) / "ledger"
        data_dir.mkdir(mode=0o700)
        url = postgres_database() if args.postgres else None
        ledger = Ledger(data_dir, url, max(20_000, args.entries // 20))
        try:
            history = History(ledger.pseudonyms, int(args.entries * 1.05),
                              int(time.time()) - 3 * DAY)
            ledger.grow(history, args.entries)
            ids = data_dir / "ids.txt"
            ids.write_text("\n".join(old_entry_ids(ledger)) + "\n")
            ids.chmod(0o600)
            print(f"{ledger.count_entries():,} entries", flush=True)
            codes = {f"before ({args.before})": before, "this checkout": ROOT}
            # the older code reads a copy in its own schema (0016-0017 changed the storage)
            url_now = ledger.db.engine.url.render_as_string(hide_password=False)
            urls = dict.fromkeys(codes, url_now)
            if (head := schema_head(before)) != schema_head(ROOT):
                ledger.db.engine.dispose()
                urls[f"before ({args.before})"] = downgraded_copy(url_now, head, Path(tmp))
                print(f"the older code reads a copy downgraded to its schema, {head}", flush=True)
            envs = {name: {**ledger.env, "CARBON_LEDGER_DATABASE_URL": urls[name]}
                    for name in codes}
            if args.in_process:
                bundles_in_process(codes, urls, ids, args.in_process, args.rounds, data_dir)
                return
            runs: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {c: [] for c in codes}
            for r in range(args.rounds):
                print(f"round {r + 1}: host reference {host_reference(data_dir):.1f} ms",
                      flush=True)
                for name in list(codes) if r % 2 == 0 else list(codes)[::-1]:
                    log = Path(tmp) / f"serve-{r}-{len(runs[name])}.log"
                    with serving(ledger.rpc, envs[name], log, code=codes[name],
                                 every_worker=not args.at_first_answer) as (base, _):
                        cold = wrk(base, ledger.auditor_key, ids, args.wrk_seconds)
                        warm = wrk(base, ledger.auditor_key, ids, args.wrk_seconds)
                    runs[name].append((cold, warm))
                    print(f"  {name}: cold {cold['rps']:,.0f}/s p50 {cold['50%']:.1f} p99 "
                          f"{cold['99%']:.1f} ms; warm {warm['rps']:,.0f}/s p50 {warm['50%']:.1f} "
                          f"p99 {warm['99%']:.1f} ms (non-2xx {cold['non2xx'] + warm['non2xx']:.0f})",
                          flush=True)
            print("medians of the rounds:")
            for name, rows in runs.items():
                def med(which: int, key: str, rows: list = rows) -> float:  # type: ignore[type-arg]
                    return statistics.median(row[which][key] for row in rows)
                print(f"  {name}: cold {med(0, 'rps'):,.0f}/s p50 {med(0, '50%'):.1f} p99 "
                      f"{med(0, '99%'):.1f} ms; warm {med(1, 'rps'):,.0f}/s p50 {med(1, '50%'):.1f} "
                      f"p99 {med(1, '99%'):.1f} ms")
        finally:
            ledger.db.engine.dispose()
            stop(ledger.node)


def bundles_in_process(codes: dict[str, Path], urls: dict[str, str], ids: Path, n: int,
                       rounds: int, data_dir: Path) -> None:
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in codes}
    for r in range(rounds):
        print(f"round {r + 1}: host reference {host_reference(data_dir):.1f} ms", flush=True)
        for name in list(codes) if r % 2 == 0 else list(codes)[::-1]:
            runs[name].append(in_process(codes[name], urls[name], ids, n, seed=r))
            print(f"  {name}: {runs[name][-1]['ms']:.3f} ms a cold bundle, "
                  f"{runs[name][-1]['queries']:.2f} tree queries", flush=True)
    print("medians of the rounds:")
    for name, rows in runs.items():
        print(f"  {name}: {statistics.median(row['ms'] for row in rows):.3f} ms a cold bundle "
              f"({min(row['ms'] for row in rows):.3f}-{max(row['ms'] for row in rows):.3f}), "
              f"{statistics.median(row['queries'] for row in rows):.2f} tree queries")


if __name__ == "__main__":
    main()
