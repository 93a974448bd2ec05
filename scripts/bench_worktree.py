"""Another revision's code beside this checkout, for the benchmarks that measure before
against after: one place that checks it out and removes it. Imports nothing of the
ledger, so a script that picks which checkout's ledger it imports can use it first."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_from_argv() -> Path | None:
    """The checkout named by ``--code DIR`` on the command line, or None: read before
    argparse runs, because it decides which checkout's ledger the script imports. A DIR
    that is no checkout of the ledger ends the run with one line (it would otherwise
    measure this checkout's code under the other's name)."""
    if "--code" not in sys.argv:
        return None
    at = sys.argv.index("--code") + 1
    named = sys.argv[at] if at < len(sys.argv) else ""
    code = Path(named).resolve()
    if not named or not (code / "ledger" / "__init__.py").is_file():
        sys.exit(f"{Path(sys.argv[0]).name}: error: --code: {named!r} is not a checkout of "
                 "the ledger (no ledger/__init__.py)")
    return code


def is_commit(rev: str) -> bool:
    """Whether ``rev`` names a commit of this repository."""
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          cwd=ROOT, capture_output=True).returncode == 0


@contextmanager
def worktree(rev: str, into: Path) -> Iterator[Path]:
    """``rev`` checked out, detached, at ``into`` for the block, and removed after. The
    built web pages and the npm packages (anvil among them) are not in git: the worktree
    links this checkout's, so a server or node started from it finds them."""
    subprocess.run(["git", "worktree", "add", "--detach", str(into), rev], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        for built in (Path("web") / "dist", Path("node_modules")):
            if ((into / built).parent.is_dir() and not (into / built).exists()
                    and (ROOT / built).is_dir()):
                (into / built).symlink_to(ROOT / built)
        yield into
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(into)], cwd=ROOT,
                       check=False, capture_output=True)


def schema_head(code: Path) -> str:
    """The head revision of a checkout's migrations, read by a child that imports that
    checkout's ledger."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
         "from alembic.script import ScriptDirectory; "
         "from ledger.store.schema import alembic_config; "
         "print(ScriptDirectory.from_config(alembic_config()).get_current_head())"],
        cwd=code, capture_output=True, text=True, check=True).stdout.strip()


def downgrade(url: str, revision: str) -> None:
    """Downgrade the ledger at ``url`` to ``revision`` with this checkout's migrations,
    then pack it (``VACUUM``; ``VACUUM FULL`` on PostgreSQL): for an older checkout to
    read the same entries stored as it stores them (0016 and 0017 changed how leaves and
    records are stored), laid out as if that code had written them. Imports the ledger
    when called: the caller has chosen which checkout's it imports by then."""
    from alembic import command
    from sqlalchemy import create_engine

    from ledger.store.schema import alembic_config

    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql("VACUUM" if engine.dialect.name == "sqlite" else "VACUUM FULL")
    engine.dispose()


def downgraded_copy(url: str, revision: str, into: Path) -> str:
    """A copy of the ledger at ``url`` (SQLite: a file in ``into``; PostgreSQL: a database
    beside it) downgraded to ``revision`` and packed (:func:`downgrade`), for an older
    checkout to read the same entries in the form it reads; its URL."""
    import shutil

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        shutil.copyfile(str(engine.url.database), into / "before.db")
        copy_url = f"sqlite:///{into / 'before.db'}"
    else:
        engine.dispose()
        name = f"{engine.url.database}_before"
        admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{engine.url.database}"'))
        admin.dispose()
        copy_url = engine.url.set(database=name).render_as_string(hide_password=False)
    downgrade(copy_url, revision)
    return copy_url
