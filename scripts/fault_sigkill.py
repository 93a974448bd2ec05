"""Fault run: SIGKILL the sealer N times between choosing entries and confirming the anchor.

    python scripts/fault_sigkill.py [--rounds 200] [--seed S] [--exec] [--database-url URL]

Starts an anvil (it outlives every sealer), then round after round adds a few entries,
starts `carbon-ledger seal` (forked from this interpreter, or with ``--exec`` a fresh
Python each time, much slower to start) and kills it with SIGKILL at the next named step
or, every fourth round, after a random time. A last sealer finishes. Then it checks what
tests/test_fault_sigkill.py checks (every entry in one batch, ids 1..n on chain once
each, every proof verifies, one transaction per batch) and prints the figures. Exit
status 0 when everything held.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chain.nodes import ManagedAnvil  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.schema import create_schema  # noqa: E402
from tests.fault_support import (  # noqa: E402
    Entries,
    assert_ledger_matches_chain,
    sigkill_rounds,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--exec", action="store_true", help="a fresh interpreter per sealer")
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a "
                                               "temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fault-sigkill-") as tmp:
        work = Path(tmp)
        db = Database(args.database_url or f"sqlite:///{work / 'ledger.db'}")
        create_schema(db.engine)
        with ManagedAnvil(work / "anvil") as node:
            print(f"seed {args.seed}, {args.rounds} rounds, anvil {node.url}", flush=True)
            entries = Entries(db)
            report = sigkill_rounds(db, node.url, work, rounds=args.rounds, seed=args.seed,
                                    entries=entries, exec_cli=args.exec)
            try:
                batches = assert_ledger_matches_chain(db, node.url, other_txs=1)
            except AssertionError as exc:
                print(f"FAILED after {report.rounds} rounds (seed {args.seed}): {exc}")
                return 1
        db.engine.dispose()
    points = ", ".join(f"{k} {v}" for k, v in sorted(report.by_point.items()))
    print(f"{report.rounds} rounds in {report.seconds:.1f} s: {report.kills} sealers killed "
          f"({points}), {report.completed} finished before the kill")
    print(f"OK: {entries.added} entries in {len(batches)} batches, ids 1..{len(batches)} on chain "
          "once each, every proof verified against the chain, one transaction per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
