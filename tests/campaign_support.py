"""A small campaign for the #21 tests: a ten-day season starting three weeks from today
(the contract pins rules only before a campaign starts, by the chain's clock), with a
cycling bonus, a metro bonus, two partners' offers and a cycling ranking."""

from __future__ import annotations

import copy
import json
import random
from datetime import date, datetime, timedelta
from typing import Any

from ledger import campaign_bonuses
from ledger.store.database import Database
from tests.conftest import CST
from tests.statement_ledger import Entry, add_entries


def season(*, starts_in_days: int = 21, days: int = 10, version: int = 1,
           **changes: Any) -> dict[str, Any]:
    today = datetime.now(CST).date()
    starts = today + timedelta(days=starts_in_days)
    ends = starts + timedelta(days=days - 1)
    doc: dict[str, Any] = {
        "id": "test-season", "version": version,
        "title": {"zh-CN": "测试绿色生活季", "en": "Test green-life season"},
        "sections": [
            {"code": "mobility", "title": {"zh-CN": "绿畅出行", "en": "Green mobility"},
             "behaviours": ["CYCLING", "METRO"]}],
        "starts": starts.isoformat(), "ends": ends.isoformat(),
        "behaviours": ["CYCLING", "METRO"],
        "bonuses": [{"behaviour": "CYCLING", "multiplier": "1.5", "cap_points": 40},
                    {"behaviour": "METRO", "points": 5}],
        "bonus_cap_points": 60,
        "offers": [
            {"code": "trade-in", "partner": "appliance-shop",
             "title": {"zh-CN": "家电以旧换新优惠", "en": "Appliance trade-in discount"},
             "points_cost": 10, "stock": 2, "valid_from": starts.isoformat(),
             "valid_until": ends.isoformat()},
            {"code": "nev-test-drive", "partner": "nev-maker",
             "title": {"zh-CN": "新能源车试驾", "en": "NEV test drive"},
             "points_cost": 5, "stock": 10, "valid_from": starts.isoformat(),
             "valid_until": ends.isoformat()}],
        "ranking": {"metric": "reduction_grams", "behaviours": ["CYCLING"],
                    "starts": starts.isoformat(), "ends": ends.isoformat(), "minimum": 100,
                    "tie_break": "earliest_reached",
                    "prizes": [{"ranks": [1, 1], "points": 50}, {"ranks": [2, 3], "points": 20}]},
    }
    doc.update(changes)
    return copy.deepcopy(doc)


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2)


def day(doc: dict[str, Any], n: int, hour: int = 12) -> int:
    """Unix seconds of the campaign's ``n``-th day (0 = its first), at ``hour`` local."""
    d = date.fromisoformat(doc["starts"]) + timedelta(days=n)
    return int(datetime(d.year, d.month, d.day, hour, tzinfo=CST).timestamp())


def arrive_shuffled(db: Database, entries: list[Entry], *, seed: int, waves: int,
                    operator: bytes) -> None:
    """The entries written in a shuffled order, in ``waves`` writes with the bonus step run
    after each, and once more at the end (which must change nothing)."""
    entries = list(entries)
    random.Random(seed).shuffle(entries)
    chunk = -(-len(entries) // waves)
    for start in range(0, len(entries), chunk):
        add_entries(db, entries[start:start + chunk])
        campaign_bonuses.award_bonuses(db, operator)
    campaign_bonuses.award_bonuses(db, operator)
