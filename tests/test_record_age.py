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

from ledger import accounts
from ledger.errors import MethodologyError
from ledger.intake.service import submit_records
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
from ledger.store.database import Database
from tests.conftest import CST
from tests.signed_ledger import Ledger, open_ledger

DAY = 86400


@pytest.fixture
def partner(db: Database, tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "state", db.url, Account.create()) as opened:
        yield opened


def send(partner: Ledger, records: list[dict]) -> dict[str, Any]:
    answer = partner.post(records, partner.headers(records))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def points(partner: Ledger) -> int:
    return partner.written()[3]


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
        partner: Ledger) -> None:
    """One signed request of 1,000 rides over 430 days for one citizen (the issue's was
    10,000 and credited +289,240 points): rides older than the window are rejected naming
    ``occurred_at``; the rest credit what the caps allow for the window's days, no more."""
    now = int(time.time())
    step = 430 * DAY // 1000
    rides = [ride(partner.pseudonym, f"a-{i}", now - 3600 - i * step) for i in range(1000)]
    window = submission_window(now)
    oldest = now - window.days * DAY
    inside = [r for r in rides if r["occurred_at"] >= oldest]
    answer = send(partner, rides)

    stale = [o for o in answer["records"] if o["status"] == "rejected"]
    assert len(stale) == 1000 - len(inside) > 850
    assert {o["field"] for o in stale} == {"occurred_at"}
    assert "submission window" in stale[0]["reason"]
    assert answer["accepted"] == len(inside)
    credited = points(partner)
    assert credited == capped_total(inside)
    cycling = load_methodology(window.version).behaviour("CYCLING")
    assert credited <= (window.days + 1) * cycling.daily_cap_grams  # the window's days at most
    assert capped_total(rides) > 5 * credited  # what the same request credited before


def test_a_ride_from_2022_is_refused(partner: Ledger) -> None:
    long_ago = int(datetime(2022, 6, 1, 8, tzinfo=CST).timestamp())
    answer = send(partner, [ride(partner.pseudonym, "old-1", long_ago)])
    [outcome] = answer["records"]
    assert (outcome["status"], outcome["field"]) == ("rejected", "occurred_at")
    assert f"more than {DEFAULT_SUBMISSION_WINDOW_DAYS} days" in outcome["reason"]
    assert points(partner) == 0


def test_the_window_edge_a_day_inside_is_credited_a_day_outside_is_not(partner: Ledger) -> None:
    now = int(time.time())
    days = submission_window(now).days
    answer = send(partner, [ride(partner.pseudonym, "in", now - (days - 1) * DAY),
                           ride(partner.pseudonym, "out", now - (days + 1) * DAY)])
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


def test_the_operator_path_applies_the_window_when_asked(db: Database) -> None:
    """``submit_records`` (the CLI's path) takes the same window as the signed route."""
    with db.session(write_lock=True) as s:
        bikes = accounts.create_partner(s, code="greenbike", name="g", kind="bike_share",
                                        signing_address=b"\x11" * 20)
        citizen = accounts.create_citizen(s).pseudonym
    now = int(time.time())
    long_ago = ride(citizen, "old-1", int(datetime(2022, 6, 1, 8, tzinfo=CST).timestamp()))
    with db.session(write_lock=True) as s:
        [outcome] = submit_records(s, partner=s.merge(bikes), records=[long_ago], now=now,
                                   window=submission_window(now)).outcomes
    assert (outcome.status, outcome.field) == ("rejected", "occurred_at")
