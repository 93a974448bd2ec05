"""Shared fixtures: a fresh database on each backend (SQLite, PostgreSQL), an in-process
chain with the contract deployed, and small factories for partners, citizens and records.

PostgreSQL is the server at ``CARBON_LEDGER_TEST_PG_URL`` (a URL to any database there,
as a role that may create databases), or else a throwaway cluster that this session starts
from Debian's packages and removes at its end (tests/pg_cluster.py). Each test gets its own
database, copied from one the migrations brought to head once per session.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import create_engine, pool

from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor
from chain.nodes import ManagedAnvil, anvil_binary, in_process_web3
from ledger import accounts
from ledger.errors import InvalidInput
from ledger.methodology import methodology_in_force
from ledger.sealing import Sealer, SealOptions
from ledger.store.database import Database
from ledger.store.models import Citizen, Partner
from ledger.store.schema import create_schema, upgrade_schema
from tests.pg_cluster import PgCluster, PgDatabases, find_bin_dir

CST = timezone(timedelta(hours=8))


#: The layer each test is in, as a marker (``pytest -m fault``): by its folder, else by
#: the file's name, else by whether it needs a chain or a database.
_CHAIN_FILES = {"test_contract.py", "test_anvil_end_to_end.py", "test_merkle_oz_live.py",
                "test_bundle_corpus.py"}


def _layer(item: pytest.Item) -> str:
    path = Path(str(item.fspath))
    if path.parent.name in ("unit", "api", "web"):
        return path.parent.name
    if path.name.startswith("test_fault_"):
        return "fault"
    if path.name in _CHAIN_FILES or item.get_closest_marker("anvil"):
        return "chain"
    return "database"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(_layer(item))


BACKENDS = ["sqlite", "postgresql"]
PG_URL_VARIABLE = "CARBON_LEDGER_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """Where PostgreSQL test databases are made: the given server, or a throwaway cluster."""
    given = os.environ.get(PG_URL_VARIABLE)
    if given:
        yield PgDatabases(given)
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(f"PostgreSQL is not installed (apt-get install postgresql), and "
                    f"{PG_URL_VARIABLE} is not set")
    cluster = PgCluster(bin_dir)
    try:
        cluster.start()
        yield PgDatabases(f"{cluster.base_url}/postgres")
    finally:
        cluster.stop()


def _migrated(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    _migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_at_head(pg_databases: PgDatabases) -> Iterator[str]:
    name = pg_databases.create(prefix="head")
    _migrated(pg_databases.url(name))
    yield name
    pg_databases.forget_copies(name)
    pg_databases.drop(name)


@contextmanager
def fresh_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path, *,
                   at_head: bool) -> Iterator[str]:
    """The URL of a new database for this test alone: empty, or a copy of one at head."""
    if backend == "sqlite":
        path = tmp_path / "ledger.db"
        if at_head:
            shutil.copyfile(request.getfixturevalue("sqlite_at_head"), path)
        yield f"sqlite:///{path}"
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    name = databases.copy_of(request.getfixturevalue("pg_at_head")) if at_head else databases.create()
    try:
        yield databases.url(name)
    finally:
        databases.drop(name)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh ledger database at the schema's head, once on each backend."""
    with fresh_database(request, request.param, tmp_path, at_head=True) as url:
        database = Database(url)
        create_schema(database.engine)  # at head already: only checks
        yield database
        database.engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database (no tables), once on each backend."""
    with fresh_database(request, request.param, tmp_path, at_head=False) as url:
        yield url


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, for tests that run on PostgreSQL only."""
    with fresh_database(request, "postgresql", tmp_path, at_head=False) as url:
        yield url


@pytest.fixture
def anchor(db: Database) -> EvmAnchor:
    """A fresh eth-tester chain with ``CarbonLedgerAnchor`` deployed and a funded key."""
    return connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)


@pytest.fixture
def sealer(db: Database, anchor: EvmAnchor) -> Sealer:
    return Sealer(db, anchor, SealOptions(confirmations=2, workers=1, receipt_timeout=30))


@pytest.fixture
def make_partner(db: Database) -> Callable[..., Partner]:
    def make(code: str = "greenbike", kind: str = "bike_share") -> Partner:
        with db.session(write_lock=True) as s:
            return accounts.create_partner(
                s, code=code, name=code, kind=kind,
                signing_address=bytes.fromhex(Account.create().address[2:]))
    return make


@pytest.fixture
def make_citizen(db: Database) -> Callable[..., Citizen]:
    def make(pseudonym: str | None = None) -> Citizen:
        with db.session(write_lock=True) as s:
            return accounts.create_citizen(s, pseudonym=pseudonym)
    return make


def a_record(citizen: str, *, behaviour: str = "CYCLING", quantity: int = 3200,
             record_id: str | None = None, hours_ago: float = 2.0) -> dict:
    """A well-formed partner record that happened ``hours_ago`` hours ago. A trip whose
    methodology bounds its speed gets an end time at half that speed (or until now)."""
    at = datetime.now(CST) - timedelta(hours=hours_ago)
    record = {"record_id": record_id or f"r-{secrets.token_hex(6)}", "citizen": citizen,
              "behaviour": behaviour, "quantity": quantity, "occurred_at": at.isoformat()}
    try:
        rules = methodology_in_force(int(at.timestamp())).behaviour(behaviour)
    except InvalidInput:
        return record  # an unknown behaviour: the test wants it rejected
    if rules.max_speed_kmh is not None:
        seconds = quantity * 3.6 * 2 / float(rules.max_speed_kmh)
        end = min(at + timedelta(seconds=max(seconds, 60)), datetime.now(CST))
        record["ended_at"] = end.isoformat()
    return record


def needs_anvil() -> pytest.MarkDecorator:
    """For a module's ``pytestmark``: skip the module when the anvil binary is missing
    (run `npm ci`), and mark its tests ``anvil`` otherwise."""
    try:
        anvil_binary()
    except Exception:  # noqa: BLE001 - any reason it cannot be found or run
        pytest.skip("anvil is not installed (run `npm ci`)", allow_module_level=True)
    return pytest.mark.anvil


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ManagedAnvil]:
    """A real anvil on loopback for one test, its state under ``tmp_path``; stopped after
    (a test may stop or restart it itself)."""
    anvil = ManagedAnvil(tmp_path / "anvil")
    anvil.start()
    yield anvil
    anvil.stop()


@pytest.fixture(autouse=True)
def own_trust_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test pins ledgers in a config folder of its own, never the user's."""
    monkeypatch.setenv("CARBON_LEDGER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
