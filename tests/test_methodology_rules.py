"""The methodology's integrity rules, as the ledger applies them: versions by date,
plausibility bounds, monthly caps, and one credit for one real behaviour however many
partners report it. Behaviours are picked from the published data by the rule they
carry, so the tests follow the data rather than restate it."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import func, select

from ledger import accounts
from ledger.intake.service import submit_records
from ledger.methodology import (
    Behaviour,
    available_versions,
    load_methodology,
    methodology_in_force,
)
from ledger.store.models import ActivityRecord, LedgerEntry, MonthlyTotal
from tests.conftest import CST

DATA = Path(__file__).parent / "data"
METHODOLOGIES = Path(__file__).parents[1] / "ledger" / "methodologies"
LATEST = load_methodology(max(available_versions()))


def submit(db, partner, records):
    with db.session(write_lock=True) as s:
        return submit_records(s, partner=s.merge(partner), records=records)


def partner_of(db, kind: str, code: str | None = None):
    with db.session(write_lock=True) as s:
        return accounts.create_partner(s, code=code or f"{kind.replace('_', '-')}-{id(s) % 10**6}",
                                       name=kind, kind=kind,
                                       signing_address=bytes.fromhex(Account.create().address[2:]))


def record(citizen: str, behaviour: Behaviour, *, rid: str, start: datetime,
           quantity: int | None = None, minutes: float | None = None) -> dict:
    """A record of ``behaviour`` starting at ``start``; trips last long enough to be plausible."""
    quantity = quantity or max(1, behaviour.max_quantity_per_record // 10)
    r = {"record_id": rid, "citizen": citizen, "behaviour": behaviour.code, "quantity": quantity,
         "occurred_at": start.isoformat()}
    if behaviour.max_speed_kmh is not None:
        if minutes is None:  # at half the speed bound
            minutes = quantity * 60 * 2 / (1000 * float(behaviour.max_speed_kmh))
        r["ended_at"] = (start + timedelta(minutes=max(minutes, 1))).isoformat()
    return r


def a_day(days_ago: int = 3, hour: int = 9) -> datetime:
    return (datetime.now(CST) - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0,
                                                                  microsecond=0)


def with_rule(predicate) -> list[Behaviour]:  # type: ignore[no-untyped-def]
    found = [b for b in LATEST.behaviours.values() if predicate(b)]
    assert found, "the published methodology has no behaviour with this rule"
    return found


# -- versions ---------------------------------------------------------------------------

def test_published_methodology_files_never_change() -> None:
    """A factor changes only by publishing a new version; old files stay byte for byte."""
    pinned = json.loads((DATA / "methodology_hashes.json").read_text())
    actual = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(METHODOLOGIES.glob("v*.json"))}
    assert actual == pinned


def test_versions_take_effect_in_order_and_each_has_its_own_points_rule() -> None:
    versions = [load_methodology(v) for v in available_versions()]
    assert [m.version for m in versions] == list(range(1, len(versions) + 1))
    assert all(a.effective_from < b.effective_from for a, b in zip(versions, versions[1:], strict=False))
    for m in versions:
        assert m.points_rule_version >= 1 and m.grams_per_point >= 1


@pytest.mark.parametrize("version", available_versions())
def test_a_record_is_quantified_by_the_version_in_force_when_it_happened(
        db, make_citizen, version: int) -> None:
    m = load_methodology(version)
    behaviour = next(b for b in m.behaviours.values() if "bike_share" in b.partner_kinds)
    citizen, partner = make_citizen(), partner_of(db, "bike_share")
    start = datetime.combine(m.effective_from, datetime.min.time(), CST) + timedelta(hours=10)
    assert methodology_in_force(int(start.timestamp())).version == version
    [outcome] = submit(db, partner, [record(citizen.pseudonym, behaviour, rid="r1", start=start,
                                            quantity=2000)]).outcomes
    assert outcome.status == "accepted", outcome
    with db.session() as s:
        entry = s.scalar(select(LedgerEntry))
    assert entry.methodology == version
    assert entry.reduction_grams == behaviour.reduction_grams(2000)


# -- plausibility -----------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", with_rule(lambda b: b.max_speed_kmh is not None),
                         ids=lambda b: b.code)
def test_a_trip_faster_than_possible_is_rejected_not_trimmed(db, make_citizen,
                                                             behaviour: Behaviour) -> None:
    citizen, partner = make_citizen(), partner_of(db, behaviour.partner_kinds[0])
    quantity = behaviour.max_quantity_per_record // 2
    limit_minutes = quantity * 60 / (1000 * float(behaviour.max_speed_kmh))
    too_fast = record(citizen.pseudonym, behaviour, rid="fast", start=a_day(),
                      quantity=quantity, minutes=limit_minutes * 0.9)
    fine = record(citizen.pseudonym, behaviour, rid="fine", start=a_day(hour=15),
                  quantity=quantity, minutes=limit_minutes * 1.1)
    no_end = {k: v for k, v in fine.items() if k != "ended_at"} | {"record_id": "no-end"}
    outcomes = submit(db, partner, [too_fast, fine, no_end]).outcomes
    assert (outcomes[0].status, outcomes[0].field) == ("rejected", "quantity")
    assert "km/h" in outcomes[0].reason
    assert outcomes[1].status == "accepted"
    assert (outcomes[2].status, outcomes[2].field) == ("rejected", "ended_at")


@pytest.mark.parametrize("behaviour", with_rule(lambda b: b.max_records_per_hour is not None),
                         ids=lambda b: b.code)
def test_too_many_records_in_an_hour_are_rejected(db, make_citizen, behaviour: Behaviour) -> None:
    citizen, partner = make_citizen(), partner_of(db, behaviour.partner_kinds[0])
    limit = behaviour.max_records_per_hour
    start = a_day()
    within = [record(citizen.pseudonym, behaviour, rid=f"h{i}", quantity=1,
                     start=start + timedelta(minutes=50 * i / limit)) for i in range(limit + 1)]
    later = record(citizen.pseudonym, behaviour, rid="later", quantity=1,
                   start=start + timedelta(hours=3))
    first = submit(db, partner, within[:limit]).outcomes  # the limit itself is plausible
    assert [o.status for o in first] == ["accepted"] * limit
    outcomes = submit(db, partner, [within[limit], later]).outcomes
    assert (outcomes[0].status, outcomes[0].field) == ("rejected", "occurred_at")
    assert outcomes[1].status == "accepted"


@pytest.mark.parametrize("behaviour", list(LATEST.behaviours.values()), ids=lambda b: b.code)
def test_a_quantity_above_the_bound_is_rejected(db, make_citizen, behaviour: Behaviour) -> None:
    citizen, partner = make_citizen(), partner_of(db, behaviour.partner_kinds[0])
    over = record(citizen.pseudonym, behaviour, rid="over", start=a_day(),
                  quantity=behaviour.max_quantity_per_record + 1, minutes=24 * 60)
    [outcome] = submit(db, partner, [over]).outcomes
    assert (outcome.status, outcome.field) == ("rejected", "quantity")


# -- caps -------------------------------------------------------------------------------

def test_monthly_cap_holds_across_days_and_submissions(db, make_citizen) -> None:
    behaviour = min(with_rule(lambda b: b.monthly_cap_grams is not None
                              and b.monthly_cap_grams < 28 * b.daily_cap_grams),
                    key=lambda b: b.monthly_cap_grams or 0)
    citizen, partner = make_citizen(), partner_of(db, behaviour.partner_kinds[0])
    # Enough per day to reach the daily cap, on every day of a past month.
    per_day = behaviour.max_quantity_per_record
    first = datetime(2025, 6, 1, 10, tzinfo=CST)
    days = [record(citizen.pseudonym, behaviour, rid=f"d{d}", start=first + timedelta(days=d),
                   quantity=per_day) for d in range(30)]
    credited = 0
    for chunk in (days[:10], days[10:20], days[20:]):
        credited += sum(o.reduction_grams for o in submit(db, partner, chunk).outcomes)
    expected = min(behaviour.monthly_cap_grams or 0,
                   30 * min(behaviour.reduction_grams(per_day), behaviour.daily_cap_grams))
    assert credited == expected
    with db.session() as s:
        assert s.scalar(select(func.sum(MonthlyTotal.grams))) == expected


# -- one behaviour, one credit ----------------------------------------------------------

def _dedup_pairs() -> list[tuple[Behaviour, str, str]]:
    return [(b, b.partner_kinds[0], b.partner_kinds[1])
            for b in with_rule(lambda b: b.dedup_window_seconds is not None
                               and len(b.partner_kinds) >= 2)]


@pytest.mark.parametrize("first_kind", [0, 1], ids=["first-reporter-a", "first-reporter-b"])
@pytest.mark.parametrize(("behaviour", "kind_a", "kind_b"), _dedup_pairs(),
                         ids=lambda v: v.code if isinstance(v, Behaviour) else v)
def test_two_partners_reporting_one_behaviour_credit_it_once(
        db, make_citizen, behaviour: Behaviour, kind_a: str, kind_b: str, first_kind: int) -> None:
    citizen = make_citizen()
    a, b = partner_of(db, kind_a, "reporter-a"), partner_of(db, kind_b, "reporter-b")
    first, second = (a, b) if first_kind == 0 else (b, a)
    start = a_day()
    quantity = max(1, behaviour.max_quantity_per_record // 10)
    mine = record(citizen.pseudonym, behaviour, rid="one", start=start, quantity=quantity)
    # The other partner's clock and distance differ a little: still the same behaviour.
    theirs = record(citizen.pseudonym, behaviour, rid="same-but-theirs", quantity=quantity,
                    start=start + timedelta(seconds=min(60, behaviour.dedup_window_seconds or 0)))
    [won] = submit(db, first, [mine]).outcomes
    [lost] = submit(db, second, [theirs]).outcomes
    assert won.status == "accepted" and won.reduction_grams > 0
    assert lost.status == "duplicate" and lost.duplicate_of == "0x" + won.record_hash.hex()
    assert "first report wins" in lost.reason
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        loser = s.scalar(select(ActivityRecord).where(ActivityRecord.status == "duplicate"))
        winner = s.get(ActivityRecord, loser.duplicate_of)
        assert winner.partner_id == first.id and winner.entry_id is not None
        assert accounts.balance(s, citizen.id) == won.points
    # The loser resent is still a duplicate; a different, later behaviour is credited.
    [again] = submit(db, second, [theirs]).outcomes
    assert again.status == "duplicate"
    later = record(citizen.pseudonym, behaviour, rid="later", quantity=quantity,
                   start=start + timedelta(seconds=2 * (behaviour.dedup_window_seconds or 0) + 7200))
    assert submit(db, second, [later]).outcomes[0].status == "accepted"


@pytest.mark.parametrize(("behaviour", "kind_a", "kind_b"), _dedup_pairs(),
                         ids=lambda v: v.code if isinstance(v, Behaviour) else v)
def test_each_report_absorbs_at_most_one_report_of_another_partner(
        db, make_citizen, behaviour: Behaviour, kind_a: str, kind_b: str) -> None:
    """Two real trips reported by A, the same two by B: two credits, two duplicates."""
    citizen = make_citizen()
    a, b = partner_of(db, kind_a, "reporter-a"), partner_of(db, kind_b, "reporter-b")
    start, quantity = a_day(), max(1, behaviour.max_quantity_per_record // 20)
    gap = timedelta(seconds=1)  # back to back: each of B's overlaps both of A's windows
    minutes = quantity * 60 * 2 / (1000 * float(behaviour.max_speed_kmh or 1)) or 1
    trips = [start, start + timedelta(minutes=max(minutes, 1)) + gap]
    ours = [record(citizen.pseudonym, behaviour, rid=f"a{i}", start=t, quantity=quantity)
            for i, t in enumerate(trips)]
    theirs = [record(citizen.pseudonym, behaviour, rid=f"b{i}", start=t, quantity=quantity)
              for i, t in enumerate(trips)]
    assert [o.status for o in submit(db, a, ours).outcomes] == ["accepted", "accepted"]
    assert [o.status for o in submit(db, b, theirs).outcomes] == ["duplicate", "duplicate"]
    with db.session() as s:
        pointers = s.scalars(select(ActivityRecord.duplicate_of)
                             .where(ActivityRecord.status == "duplicate")).all()
    assert len(set(pointers)) == 2
