"""A running ledger for signed-submission tests: the app on a database, with a bike-share
partner (its signing key and API key) and a citizen; signs as the partner does (version 2)
and counts what the database holds. Used by tests/api/test_signed_submissions_v2.py and
tests/test_record_age.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key
from ledger.intake.signed import record_hashes
from ledger.signing import records_hash, submission_headers
from ledger.store.database import Database
from ledger.store.models import ActivityRecord, Balance, LedgerEntry, Submission


@dataclass
class Ledger:
    """One running ledger (the app on a database) with a bike-share partner and a citizen."""

    client: TestClient
    db: Database
    key: Any  # the partner's signing key
    partner_key: str
    pseudonym: str
    info: dict[str, Any]
    operator_key: bytes

    def headers(self, records: list[dict], **overrides: Any) -> dict[str, str]:
        signed = submission_headers(self.key.key, chain_id=self.info["chainId"],
                                    contract=self.info["contract"], partner="greenbike",
                                    digest=records_hash(record_hashes(records)),
                                    count=len(records), **overrides)
        return {"Authorization": f"Bearer {self.partner_key}", **signed,
                "Content-Type": "application/json"}

    def post(self, records: list[dict], headers: dict[str, str]) -> Any:
        return self.client.post("/v1/submissions", content=json.dumps(records), headers=headers)

    def written(self) -> tuple[int, int, int, int]:
        """Submissions, records, entries and the citizen's points, as the database holds them."""
        with self.db.session() as s:
            return (s.scalar(select(func.count()).select_from(Submission)) or 0,
                    s.scalar(select(func.count()).select_from(ActivityRecord)) or 0,
                    s.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
                    s.scalar(select(func.sum(Balance.points))) or 0)


@contextmanager
def open_ledger(data_dir: Path, database_url: str | None, key: Any) -> Iterator[Ledger]:
    container = Container(Settings(data_dir=data_dir, chain="tester", database_url=database_url,
                                   rate_limit="100000/minute"))
    with container.db.session(write_lock=True) as s:
        partner = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                          signing_address=bytes.fromhex(key.address[2:]))
        pseudonym = accounts.create_citizen(s).pseudonym
        partner_key = issue_api_key(s, role="partner", partner=partner)
    with TestClient(create_app(container, run_sealer=False)) as client:
        yield Ledger(client, container.db, key, partner_key, pseudonym,
                     client.get("/v1/info").json(), bytes(container.signer.key))
    container.db.engine.dispose()
