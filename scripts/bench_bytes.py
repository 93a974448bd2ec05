"""Bytes on disk an entry, another revision's storage against this checkout's, on one ledger.

    python scripts/bench_bytes.py [--entries 1000000] [--before 6e96a39] [--postgres] [--built-here]

Builds a ledger of ``--entries`` with the code of ``--before`` (checked out in a temporary
worktree), as ``bench_scale.py`` builds its history: every behaviour, through intake with
every rule on, sealed in batches of 10,000 and anchored on a ``carbon-ledger node``; one
citizen per 20 entries, at least 20,000. It prints each table's bytes an entry, indexes
included (SQLite's ``dbstat``, PostgreSQL's ``pg_total_relation_size``) and the
database's total (the file; ``pg_database_size``) twice: as built (after a checkpoint:
what a running service holds, its indexes filled in the order entries came) and packed
(``VACUUM`` on SQLite, ``VACUUM FULL`` on PostgreSQL). Then it upgrades the ledger with
this checkout's migrations (timed) and prints the packed sizes again. ``--built-here``
then builds a second ledger of the same history with this checkout's code and prints its
as-built and packed sizes: an upgrade copies tables in key order, so only a ledger built
by the new code shows what a service running it holds. ``--postgres`` runs it on a
throwaway PostgreSQL cluster (as ``bench_api.py --postgres``). Prints figures; asserts
nothing.
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


_RELATIONS = {  # each table and each index on its own: where an entry's bytes go
    "sqlite": "SELECT name, sum(pgsize) FROM dbstat GROUP BY name",
    "postgresql": "SELECT c.relname, CASE c.relkind WHEN 'i' THEN pg_total_relation_size(c.oid) "
                  "ELSE pg_table_size(c.oid) END FROM pg_class AS c "
                  "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
                  "WHERE c.relkind IN ('r', 'p', 'i') AND n.nspname = 'public'",
}


def sizes(url: str, packed: bool) -> tuple[int, int, dict[str, int]]:
    """Entries, total bytes and bytes per relation (each table, each index), as they are
    after a checkpoint or ``packed`` first."""
    from bench_scale import table_bytes
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            entries = int(conn.scalar(text("SELECT count(*) FROM ledger_entries")) or 0)
            if packed:
                conn.exec_driver_sql("VACUUM" if sqlite else "VACUUM FULL")
            else:  # what the WAL holds goes to the tables
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)" if sqlite else "CHECKPOINT")
            if sqlite:  # VACUUM writes the packed file through the WAL: empty it after
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            total, _, _ = table_bytes(
                conn, Path(engine.url.database) if sqlite else None)  # type: ignore[arg-type]
            per = {str(name): int(size)
                   for name, size in conn.execute(text(_RELATIONS[engine.dialect.name]))}
    finally:
        engine.dispose()
    return entries, total, per


def shown(label: str, measured: tuple[int, int, dict[str, int]]) -> str:
    entries, total, per = measured
    top = sorted(per.items(), key=lambda kv: -kv[1])[:20]
    return (f"{label}: {entries:,} entries, {total / entries:,.1f} bytes an entry in all "
            f"({total / 2**20:,.0f} MiB; relations sum to {sum(per.values()) / entries:,.1f}); "
            "by relation: " + ", ".join(f"{name} {size / entries:,.1f}" for name, size in top))


def build(code: Path, entries: int, data_dir: Path, postgres: bool) -> str:
    """A ledger of ``entries`` built by the ledger code in ``code``; its database URL."""
    data_dir.mkdir(mode=0o700)
    url = postgres_database() if postgres else f"sqlite:///{data_dir / 'ledger.db'}"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _BUILD, str(entries), str(data_dir),
                    url if postgres else ""], cwd=code, check=True)
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--before", default="6e96a39", help="the git revision that builds it")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--built-here", action="store_true",
                        help="also build the ledger with this checkout and measure it")
    args = parser.parse_args()
    if args.entries < 1:
        parser.error("--entries: at least 1")
    if not is_commit(args.before):
        parser.error(f"--before: {args.before!r} is not a commit of this repository")
    with tempfile.TemporaryDirectory(prefix="bench-bytes-") as tmp, \
            worktree(args.before, Path(tmp) / "before") as before:
        url = build(before, args.entries, Path(tmp) / "ledger", args.postgres)
        print(shown(f"before ({args.before}), as built", sizes(url, packed=False)), flush=True)
        print(shown(f"before ({args.before}), packed", sizes(url, packed=True)), flush=True)
        from sqlalchemy import create_engine

        from ledger.store.schema import upgrade_schema

        engine = create_engine(url)
        started = time.perf_counter()
        was, now = upgrade_schema(engine)
        engine.dispose()
        print(f"upgraded {was.current} -> {now.current} in {time.perf_counter() - started:.1f} s",
              flush=True)
        print(shown("upgraded (this checkout), packed", sizes(url, packed=True)), flush=True)
        if args.built_here:
            url = build(ROOT, args.entries, Path(tmp) / "ledger-here", args.postgres)
            print(shown("built by this checkout, as built", sizes(url, packed=False)), flush=True)
            print(shown("built by this checkout, packed", sizes(url, packed=True)), flush=True)


if __name__ == "__main__":
    main()
