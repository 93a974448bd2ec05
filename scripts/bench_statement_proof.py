"""A month statement's first proof at a large number of accounts: what a citizen's first
credential after a month's build waits for.

Writes ``--accounts`` citizens straight into a SQLite ledger, builds one month's statement
tree over them (zero totals: the tree's size is what matters, not the totals) and marks it
anchored, then times :func:`ledger.statement_builder.statement_proofs` for a random
citizen, each round on a new engine (so nothing of the tree is in the process: a first
proof; and with an empty row cache, where the code has one), then another citizen's in a
new session on that engine and cache (as a serving process's next request). Prints
medians of ``--rounds`` rounds, and the database's size.

    .venv/bin/python scripts/bench_statement_proof.py --accounts 200000
"""

from __future__ import annotations

import argparse
import inspect
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, update  # noqa: E402

from ledger import statement_builder  # noqa: E402
from ledger.methodology import local_day_offset  # noqa: E402
from ledger.proofs import TreeCache  # noqa: E402
from ledger.statement_builder import statement_proofs  # noqa: E402
from ledger.statements import period_bounds  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.models import Citizen, Statement  # noqa: E402
from ledger.store.schema import create_schema  # noqa: E402

PERIOD = 202611


def fill(db: Database, accounts: int) -> None:
    rows = [{"id": i, "pseudonym": f"c_{i:08d}", "salt": None,
             "account": secrets.token_bytes(32), "created_at": 0}
            for i in range(1, accounts + 1)]
    with db.session(write_lock=True) as s:
        for start in range(0, len(rows), 50_000):
            s.execute(insert(Citizen), rows[start:start + 50_000])


def build(db: Database) -> float:
    _, end = period_bounds(PERIOD, local_day_offset())
    started = time.perf_counter()
    with db.session(write_lock=True) as s:
        # The builder's own step, without the batches and entries a live month needs.
        statement_builder._build(s, PERIOD, end, 0, 0, 0, 0, end + 86_400)
        s.execute(update(Statement).values(status="anchored", tx_hash=b"\1" * 32,
                                           block_number=1))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    rng = random.Random(20)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ledger.db"
        db = Database(url)
        create_schema(db.engine)
        fill(db, args.accounts)
        built = build(db)
        db.engine.dispose()
        size = Path(tmp, "ledger.db").stat().st_size
        first, second = [], []
        cached = "cache" in inspect.signature(statement_proofs).parameters
        for _ in range(args.rounds):
            citizen = rng.randrange(1, args.accounts + 1)
            fresh = Database(url)  # a new engine: a first proof, as after a restart
            options = {"cache": TreeCache()} if cached else {}
            with fresh.session() as s:
                started = time.perf_counter()
                [proof] = statement_proofs(s, citizen, [PERIOD], **options)
                first.append(time.perf_counter() - started)
            with fresh.session() as s:
                other = rng.randrange(1, args.accounts + 1)
                started = time.perf_counter()
                statement_proofs(s, other, [PERIOD], **options)
                second.append(time.perf_counter() - started)
            fresh.engine.dispose()
        print(f"{args.accounts:,} accounts: build {built:.1f} s, database {size / 2**20:.1f} MiB, "
              f"proof depth {len(proof.proof)}")
        print(f"first proof on a new engine: median {statistics.median(first) * 1000:.1f} ms "
              f"(min {min(first) * 1000:.1f}, max {max(first) * 1000:.1f}) over {args.rounds}")
        print(f"another citizen's proof, a new session on that engine: median "
              f"{statistics.median(second) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
