"""Properties of quantification that must hold for every behaviour of every version, and
of caps under any order of arrival."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger import accounts
from ledger.intake.service import submit_records
from ledger.methodology import available_versions, load_methodology
from ledger.store.database import Database
from ledger.store.models import LedgerEntry
from ledger.store.schema import create_schema
from tests.conftest import CST

BEHAVIOURS = [(v, code) for v in available_versions() for code in load_methodology(v).behaviours]


@settings(max_examples=300, deadline=None)
@given(which=st.sampled_from(BEHAVIOURS), a=st.integers(1, 10**7), b=st.integers(1, 10**7))
def test_quantification_is_never_negative_and_monotone_in_quantity(which, a: int, b: int) -> None:
    version, code = which
    behaviour = load_methodology(version).behaviour(code)
    low, high = sorted((a, b))
    assert 0 <= behaviour.reduction_grams(low) <= behaviour.reduction_grams(high)
    # Monotone up to the cap: the capped amount never falls as quantity grows.
    assert (min(behaviour.reduction_grams(low), behaviour.daily_cap_grams)
            <= min(behaviour.reduction_grams(high), behaviour.daily_cap_grams))


def _capped_behaviours() -> list[str]:
    latest = load_methodology(max(available_versions()))
    return sorted(code for code, b in latest.behaviours.items()
                  if b.max_speed_kmh is None and b.max_records_per_hour is None
                  and b.dedup_window_seconds is None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=st.sampled_from(_capped_behaviours()),
       items=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 10**6)), min_size=1, max_size=30),
       seed=st.integers(0, 2**32 - 1), chunks=st.integers(1, 4))
def test_caps_hold_and_totals_do_not_depend_on_the_order_of_arrival(
        code: str, items: list[tuple[int, int]], seed: int, chunks: int) -> None:
    """Records spread over ~6 weeks (so two months and many days), shuffled and sent in a
    few submissions: each day and month stays within its cap, and what is credited in all
    equals the order-free figure Σ_month min(monthly cap, Σ_day min(daily cap, Σ grams))."""
    latest = load_methodology(max(available_versions()))
    behaviour = latest.behaviour(code)
    start = datetime(2025, 7, 10, 8, tzinfo=CST)
    records = []
    for i, (day, quantity) in enumerate(items):
        quantity = min(quantity, behaviour.max_quantity_per_record)
        at = start + timedelta(days=day, minutes=7 * i)
        records.append({"record_id": f"r{i}", "citizen": "c_props", "behaviour": code,
                        "quantity": quantity, "occurred_at": at.isoformat()})
    random.Random(seed).shuffle(records)

    by_day: dict[int, int] = defaultdict(int)
    for r in records:
        by_day[latest.local_day(int(datetime.fromisoformat(r["occurred_at"]).timestamp()))] += \
            behaviour.reduction_grams(r["quantity"])
    by_month: dict[int, int] = defaultdict(int)
    for day, grams in by_day.items():
        when = int((datetime(1970, 1, 1, tzinfo=CST) + timedelta(days=day, hours=12)).timestamp())
        by_month[latest.local_month(when)] += min(grams, behaviour.daily_cap_grams)
    monthly = behaviour.monthly_cap_grams or 10**18
    expected = sum(min(g, monthly) for g in by_month.values())

    with TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        create_schema(db.engine)
        try:
            with db.session(write_lock=True) as s:
                partner = accounts.create_partner(
                    s, code="p", name="p", kind=behaviour.partner_kinds[0],
                    signing_address=bytes.fromhex(Account.create().address[2:]))
                accounts.create_citizen(s, pseudonym="c_props")
            size = -(-len(records) // chunks)
            for lo in range(0, len(records), size):
                with db.session(write_lock=True) as s:
                    outcomes = submit_records(s, partner=s.merge(partner),
                                              records=records[lo:lo + size]).outcomes
                    assert all(o.status == "accepted" for o in outcomes), outcomes
            with db.session() as s:
                entries = s.execute(select(LedgerEntry.occurred_at, LedgerEntry.reduction_grams)).all()
        finally:
            db.engine.dispose()
    day_totals: dict[int, int] = defaultdict(int)
    month_totals: dict[int, int] = defaultdict(int)
    for at, grams in entries:
        day_totals[latest.local_day(at)] += grams
        month_totals[latest.local_month(at)] += grams
    assert all(g <= behaviour.daily_cap_grams for g in day_totals.values())
    assert all(g <= monthly for g in month_totals.values())
    assert sum(day_totals.values()) == expected
