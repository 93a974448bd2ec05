"""Bytes on disk an entry, another revision's storage against this checkout's, on one ledger.

    python scripts/bench_bytes.py [--entries 1000000] [--before 6e96a39] [--postgres]

Builds a ledger of ``--entries`` with the code of ``--before`` (checked out in a temporary
worktree), as ``bench_scale.py`` builds its history: every behaviour, through intake with
every rule on, sealed in batches of 10,000 and anchored on a ``carbon-ledger node``; one
citizen per 20 entries, at least 20,000. Then gives the space back (``VACUUM`` on SQLite,
``VACUUM FULL`` on PostgreSQL, so that both sides are measured as packed as they go) and
prints each table's bytes an entry, indexes included (SQLite's ``dbstat``, PostgreSQL's
``pg_total_relation_size``) and the database's total (the file; ``pg_database_size``);
then upgrades it with this checkout's migrations (timed), gives the space back again and
prints the same. ``--postgres`` runs it on a throwaway PostgreSQL cluster (as
``bench_api.py --postgres``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

from bench_api import postgres_database  # noqa: E402
from bench_worktree import is_commit, worktree  # noqa: E402

# Run in a fresh process from the older checkout: its own ledger code builds the history.
_BUILD = """
import sys, time
sys.path.insert(0, "."); sys.path.insert(1, "scripts")
from pathlib import Path
from bench_scale import DAY, History, Ledger, stop
n, data_dir, url = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] or None
ledger = Ledger(data_dir, url, max(20_000, n // 20))
try:
    ledger.grow(History(ledger.pseudonyms, int(n * 1.05), int(time.time()) - 3 * DAY), n)
finally:
    ledger.db.engine.dispose()
    stop(ledger.node)
"""


def sizes(url: str) -> tuple[int, int, dict[str, int]]:
    """Entries, total bytes and bytes per table (indexes with their table), packed first."""
    from bench_scale import table_bytes
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            entries = int(conn.scalar(text("SELECT count(*) FROM ledger_entries")) or 0)
            conn.exec_driver_sql("VACUUM" if sqlite else "VACUUM FULL")
            if sqlite:  # VACUUM writes the packed file through the WAL: empty it after
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            total, per, _ = table_bytes(
                conn, Path(engine.url.database) if sqlite else None)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    return entries, total, per


def shown(label: str, measured: tuple[int, int, dict[str, int]]) -> str:
    entries, total, per = measured
    top = sorted(per.items(), key=lambda kv: -kv[1])[:12]
    return (f"{label}: {entries:,} entries, {total / entries:,.1f} bytes an entry in all "
            f"({total / 2**20:,.0f} MiB); by table: "
            + ", ".join(f"{name} {size / entries:,.1f}" for name, size in top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--before", default="6e96a39", help="the git revision that builds it")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.entries < 1:
        parser.error("--entries: at least 1")
    if not is_commit(args.before):
        parser.error(f"--before: {args.before!r} is not a commit of this repository")
    with tempfile.TemporaryDirectory(prefix="bench-bytes-") as tmp, \
            worktree(args.before, Path(tmp) / "before") as before:
        data_dir = Path(tmp) / "ledger"
        data_dir.mkdir(mode=0o700)
        url = postgres_database() if args.postgres else f"sqlite:///{data_dir / 'ledger.db'}"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", _BUILD, str(args.entries), str(data_dir),
                        url if args.postgres else ""], cwd=before, check=True)
        print(f"built in {time.perf_counter() - started:.0f} s by {args.before}", flush=True)
        print(shown(f"before ({args.before})", sizes(url)), flush=True)
        from sqlalchemy import create_engine

        from ledger.store.schema import upgrade_schema

        engine = create_engine(url)
        started = time.perf_counter()
        was, now = upgrade_schema(engine)
        engine.dispose()
        print(f"upgraded {was.current} -> {now.current} in {time.perf_counter() - started:.1f} s",
              flush=True)
        print(shown("after (this checkout)", sizes(url)), flush=True)


if __name__ == "__main__":
    main()
