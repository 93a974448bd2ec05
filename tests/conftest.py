"""Shared fixtures: a fresh database, an in-process chain with the contract deployed,
and small factories for partners, citizens and records."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eth_account import Account

from chain.client import ChainKind, EvmAnchor
from chain.connect import connect_anchor
from chain.nodes import in_process_web3
from ledger import accounts
from ledger.db import Database, create_schema
from ledger.errors import InvalidInput
from ledger.methodology import methodology_in_force
from ledger.models import Citizen, Partner
from ledger.sealing import Sealer, SealOptions

CST = timezone(timedelta(hours=8))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(database.engine)
    yield database
    database.engine.dispose()


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
