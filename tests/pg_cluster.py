"""A throwaway PostgreSQL cluster for the tests, from Debian's packages.

Started once per test session on 127.0.0.1 and a free port, in a temporary folder,
with durability off (fsync, synchronous_commit: nothing here must survive a crash), and
removed afterwards. ``initdb`` refuses to run as root, so as root the cluster belongs to
an unprivileged user (``postgres`` from the Debian package, else ``nobody``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from chain.nodes import free_port

SUPERUSER = "ledger"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if os.access(Path(p).parent / "pg_ctl", os.X_OK)]
    return max(found, key=lambda p: int(p.parent.name), default=None)


class PgCluster:
    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        """``durable``: a commit is in the write-ahead log before it returns
        (``synchronous_commit=on``), so a crash-stop loses nothing committed; the shared
        cluster runs without, for speed (nothing there must survive a crash)."""
        self.bin_dir = bin_dir
        self.durable = durable
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="carbon-ledger-pg-"))
        self.data = self.root / "data"
        self._user = self._unprivileged_user() if os.geteuid() == 0 else None
        if self._user is not None:
            record = pwd.getpwnam(self._user)
            os.chown(self.root, record.pw_uid, record.pw_gid)

    @staticmethod
    def _unprivileged_user() -> str:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' user")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, timeout=120)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{tail}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-sync")
        self.restart()

    def crash(self) -> None:
        """Stop the server as a crash would (``-m immediate``: no checkpoint, every
        connection cut); :meth:`restart` brings it back with its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.root} -c max_connections=300 "
                   f"-c fsync=off -c synchronous_commit={'on' if self.durable else 'off'} "
                   "-c full_page_writes=off "
                   "-c shared_buffers=64MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}"


class PgDatabases:
    """Creates and drops databases on a server, given a URL to one of its databases
    (``CARBON_LEDGER_TEST_PG_URL`` or the throwaway cluster's ``postgres``)."""

    def __init__(self, admin_url: str) -> None:
        scheme, sep, rest = admin_url.partition("://")
        if scheme in ("postgres", "postgresql"):  # the ledger talks to PostgreSQL via psycopg 3
            scheme = "postgresql+psycopg"
        self.admin_url = scheme + sep + rest
        self._numbers = itertools.count(1)
        self._next_copy: dict[str, Future[str]] = {}
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-copies")

    def _admin(self) -> psycopg.Connection:
        url = self.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        return psycopg.connect(url, autocommit=True)

    def url(self, name: str) -> str:
        head, _, _ = self.admin_url.rpartition("/")
        return f"{head}/{name}"

    def create(self, *, template: str | None = None, prefix: str = "t") -> str:
        """A new database (a copy of ``template``, or empty); returns its name."""
        name = f"cl_{prefix}_{os.getpid()}_{next(self._numbers)}"
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if template is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}")
                             .format(sql.Identifier(name), sql.Identifier(template)))
        return name

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def copy_of(self, template: str) -> str:
        """A new copy of ``template``. The next copy is made in the background meanwhile,
        so a test does not wait for CREATE DATABASE (a tenth of a second or more)."""
        ready = self._next_copy.pop(template, None)
        name = ready.result() if ready is not None else self.create(template=template)
        self._next_copy[template] = self._maker.submit(self.create, template=template)
        return name

    def forget_copies(self, template: str) -> None:
        """Drop the copy made ahead, so ``template`` can be dropped too."""
        ready = self._next_copy.pop(template, None)
        if ready is not None:
            self.drop(ready.result())
