"""Small ledgers for the statement and green-credit tests: entries written straight into
the ledger at chosen times (partners cannot submit records months old), then sealed and
anchored by the real sealer on an in-process chain."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from eth_account import Account

from ledger.entries import make_entry
from ledger.leaf import KIND_CREDIT, credit_entry_id, debit_entry_id
from ledger.methodology import methodology_in_force
from ledger.store.database import Database
from ledger.store.models import Citizen
from tests.conftest import CST

PARTNER = bytes.fromhex(Account.create().address[2:])


@dataclass(frozen=True)
class Entry:
    citizen: Citizen
    at: int  # unix seconds
    grams: int = 0
    points: int = 0
    kind: int = KIND_CREDIT
    behaviour: str = "CYCLING"


def at(year: int, month: int, day: int, hour: int = 12) -> int:
    """A local (UTC+8) time as unix seconds."""
    return int(datetime(year, month, day, hour, tzinfo=CST).timestamp())


def add_entries(db: Database, entries: list[Entry]) -> None:
    """Write the entries in the given order (their seq order)."""
    with db.session(write_lock=True) as s:
        for e in entries:
            if e.kind == KIND_CREDIT:
                entry_id = credit_entry_id(PARTNER, secrets.token_hex(8))
                version = methodology_in_force(e.at).version
                behaviour, quantity, record = e.behaviour, 1000, secrets.token_bytes(32)
            else:
                entry_id = debit_entry_id(secrets.token_bytes(16))
                version, behaviour, quantity, record = 2, "REDEMPTION", 1, b"\0" * 32
            s.add(make_entry(entry_id=entry_id, citizen_id=e.citizen.id,
                             account=e.citizen.account, kind=e.kind, behaviour=behaviour,
                             quantity=quantity, reduction_grams=e.grams, points=e.points,
                             methodology=version, occurred_at=e.at, record_hash=record,
                             partner_address=PARTNER))
