"""How old a record a partner may submit, and what one report can credit (issue #15,
item 8): a submission window set by the methodology in force at receipt, applied to signed
submissions, so one report credits at most the caps of the window's days. Through the real
app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.composition import Container
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts
from ledger.credentials import issue_api_key
from ledger.db import Database
from ledger.errors import MethodologyError
from ledger.methodology import (
    DEFAULT_SUBMISSION_WINDOW_DAYS,
    available_versions,
    load_methodology,
    methodology_in_force,
    methodology_text,
    month_of_day,
    parse_methodology,
    submission_window,
)
from ledger.signing import records_hash, submission_headers
from ledger.submissions import record_hashes
from tests.conftest import CST

DAY = 86400


class Partner:
    """A bike-share partner sending signed submissions to a running app, for one citizen."""

    def __init__(self, client: TestClient, db: Database, key: Any, credential: str,
                 citizen: str) -> None:
        self.client, self.db, self.key = client, db, key
        self.credential, self.citizen = credential, citizen
        self.info = client.get("/v1/info").json()

    def send(self, records: list[dict]) -> dict[str, Any]:
        signed = submission_headers(self.key.key, chain_id=self.info["chainId"],
                                    contract=self.info["contract"], partner="greenbike",
                                    digest=records_hash(record_hashes(records)),
                                    count=len(records))
        answer = self.client.post("/v1/submissions", content=json.dumps(records), headers={
            "Authorization": f"Bearer {self.credential}", **signed,
            "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def points(self) -> int:
        with self.db.session() as s:
            return accounts.balance(s, accounts.get_citizen(s, self.citizen).id)


@pytest.fixture
def partner(db: Database, tmp_path: Path) -> Iterator[Partner]:
    key = Account.create()
    container = Container(Settings(data_dir=tmp_path / "state", chain="tester",
                                   database_url=db.url, rate_limit="100000/minute"))
    with container.db.session(write_lock=True) as s:
        bikes = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                        signing_address=bytes.fromhex(key.address[2:]))
        citizen = accounts.create_citizen(s).pseudonym
        credential = issue_api_key(s, role="partner", partner=bikes)
    with TestClient(create_app(container, run_sealer=False)) as client:
        yield Partner(client, container.db, key, credential, citizen)
    container.db.engine.dispose()


def ride(citizen: str, rid: str, start: int, metres: int = 5000) -> dict[str, Any]:
    """A plausible bike ride: ``metres`` at 15 km/h."""
    return {"record_id": rid, "citizen": citizen, "behaviour": "CYCLING", "quantity": metres,
            "occurred_at": start, "ended_at": start + metres * 3600 // 15000}


def capped_total(records: list[dict]) -> int:
    """What the caps let through for these records, whatever their order: per local month,
    min(monthly cap, Σ per local day min(daily cap, Σ grams))."""
    days: dict[tuple[int, int], int] = defaultdict(int)
    rules = {}
    for r in records:
        m = methodology_in_force(r["occurred_at"])
        b = m.behaviour(r["behaviour"])
        rules[m.version] = (m, b)
        days[(m.version, m.local_day(r["occurred_at"]))] += b.reduction_grams(r["quantity"])
    months: dict[tuple[int, int], int] = defaultdict(int)
    for (version, day), grams in days.items():
        months[(version, month_of_day(day))] += min(grams, rules[version][1].daily_cap_grams)
    return sum(min(g, rules[v][1].monthly_cap_grams or g) for (v, _), g in months.items())


def test_the_issue_attack_is_refused_beyond_the_window_and_bounded_by_the_caps(
        partner: Partner) -> None:
    """One signed request of 1,000 rides over 430 days for one citizen (the issue's was
    10,000 and credited +289,240 points): rides older than the window are rejected naming
    ``occurred_at``; the rest credit what the caps allow for the window's days, no more."""
    now = int(time.time())
    step = 430 * DAY // 1000
    rides = [ride(partner.citizen, f"a-{i}", now - 3600 - i * step) for i in range(1000)]
    window = submission_window(now)
    oldest = now - window.days * DAY
    inside = [r for r in rides if r["occurred_at"] >= oldest]
    answer = partner.send(rides)

    stale = [o for o in answer["records"] if o["status"] == "rejected"]
    assert len(stale) == 1000 - len(inside) > 850
    assert {o["field"] for o in stale} == {"occurred_at"}
    assert "submission window" in stale[0]["reason"]
    assert answer["accepted"] == len(inside)
    credited = partner.points()
    assert credited == capped_total(inside)
    cycling = load_methodology(window.version).behaviour("CYCLING")
    assert credited <= (window.days + 1) * cycling.daily_cap_grams  # the window's days at most
    assert capped_total(rides) > 5 * credited  # what the same request credited before


def test_a_ride_from_2022_is_refused(partner: Partner) -> None:
    long_ago = int(datetime(2022, 6, 1, 8, tzinfo=CST).timestamp())
    answer = partner.send([ride(partner.citizen, "old-1", long_ago)])
    [outcome] = answer["records"]
    assert (outcome["status"], outcome["field"]) == ("rejected", "occurred_at")
    assert f"more than {DEFAULT_SUBMISSION_WINDOW_DAYS} days" in outcome["reason"]
    assert partner.points() == 0


def test_the_window_edge_a_day_inside_is_credited_a_day_outside_is_not(partner: Partner) -> None:
    now = int(time.time())
    days = submission_window(now).days
    answer = partner.send([ride(partner.citizen, "in", now - (days - 1) * DAY),
                           ride(partner.citizen, "out", now - (days + 1) * DAY)])
    assert [o["status"] for o in answer["records"]] == ["accepted", "rejected"]


def test_published_versions_state_no_window_so_the_default_applies() -> None:
    for version in available_versions():
        m = load_methodology(version)
        assert not m.states_submission_window
        assert m.submission_window_days == DEFAULT_SUBMISSION_WINDOW_DAYS
    window = submission_window(int(time.time()))
    assert "the default for versions that state none" in window.too_old()


def test_a_version_that_states_a_window_is_read_and_a_bad_one_refused() -> None:
    doc = json.loads(methodology_text(max(available_versions())))
    stated = parse_methodology({**doc, "submission_window_days": 20})
    assert (stated.submission_window_days, stated.states_submission_window) == (20, True)
    for bad in (0, -3, "20", 2.5, True):
        with pytest.raises(MethodologyError) as refused:
            parse_methodology({**doc, "submission_window_days": bad})
        assert refused.value.field == "methodology.submission_window_days"
