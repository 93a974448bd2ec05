"""Two :class:`Database` objects on one SQLite file in one process (a test beside the
server's container, a command that opens it twice) leave the process's connections
holding their lock on the file: SQLite's locks are POSIX record locks, dropped on every
descriptor of a file when any one is closed, and a process that lost its lock let another
take itself for the file's last connection, checkpoint and delete the write-ahead log under
it. Its connections then read and wrote a log no other process saw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from ledger.store.database import Database

ROOT = Path(__file__).parents[1]


def elsewhere(url: str, sql: str) -> str:
    """Run ``sql`` in a process of its own (through a Database it closes) and its answer."""
    code = ("import sys\n"
            "from sqlalchemy import text\n"
            "from ledger.store.database import Database\n"
            "db = Database(sys.argv[1])\n"
            "with db.session(write_lock=True) as s:\n"
            "    print(s.execute(text(sys.argv[2])).scalar())\n"
            "db.engine.dispose()\n")
    return subprocess.run([sys.executable, "-c", code, url, sql], capture_output=True,
                          text=True, check=True, timeout=60, cwd=ROOT).stdout.strip()


def test_a_second_database_on_the_file_leaves_one_log_for_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    server = Database(url)
    try:
        with server.session(write_lock=True) as s:
            s.execute(text("CREATE TABLE job (state TEXT)"))
            s.execute(text("INSERT INTO job VALUES ('none')"))
        Database(url).engine.dispose()  # a second one, beside the server's live connections
        elsewhere(url, "UPDATE job SET state = 'done' RETURNING state")  # writes, then closes
        assert (tmp_path / "ledger.db-wal").exists()  # the server's log was not taken away
        with server.session(write_lock=True) as s:
            s.execute(text("UPDATE job SET state = 'running'"))  # the server's claim
        assert elsewhere(url, "SELECT state FROM job") == "running"
        elsewhere(url, "UPDATE job SET state = 'done again' RETURNING state")
        with server.session(snapshot=True) as s:
            assert s.execute(text("SELECT state FROM job")).scalar() == "done again"
    finally:
        server.engine.dispose()
