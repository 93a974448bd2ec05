"""Kill the sealer with SIGKILL N times at its fault points and random moments, on a real
anvil, then check every entry is in one batch, ids run 1..n and every proof verifies.

    python scripts/fault_sigkill.py --rounds 100 [--seed S]

The test suite runs 20 rounds of the same (tests/test_fault_sigkill.py)."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.nodes import ManagedAnvil  # noqa: E402
from tests.test_fault_sigkill import Ledger, kill_rounds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, ManagedAnvil(Path(tmp) / "anvil") as node:
        ledger = Ledger(Path(tmp) / "ledger", node)
        ledger.setup_quietly()
        landed = kill_rounds(ledger, args.rounds, random.Random(seed))
        assert ledger.cli("seal", "--rpc", node.url) == 0
        ledger.check_invariants(all_anchored=True)
        ledger.db.engine.dispose()
    print(f"seed {seed}: {args.rounds} kills, landed {landed}; after a clean run every entry is "
          f"in one batch, ids 1..n, every proof verifies ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
