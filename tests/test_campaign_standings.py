"""The running leaderboard is read from standings the bonus step keeps (#21): whatever the
order credits arrive in and however the step's runs fall between them, the board equals
the one recounted from every entry of the period; a credit counts once however often
the step runs; a correction ranking other credits has them counted anew; and a closed
ranking is served from its ranks. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from chain.campaigns import EvmCampaigns
from ledger import accounts, campaign_anchoring, campaign_bonuses, campaigns, rankings
from ledger.campaign_rules import parse_campaign
from ledger.store.database import Database
from ledger.store.models import CampaignStanding
from tests.campaign_support import arrive_shuffled, day, season, text
from tests.conftest import BACKENDS, fresh_database
from tests.statement_ledger import Entry, add_entries

OPERATOR = bytes.fromhex(Account.create().address[2:])


@pytest.fixture
def chain(anchor) -> EvmCampaigns:  # type: ignore[no-untyped-def]
    return EvmCampaigns(anchor)

# behaviour, grams, day of the season (-2..12: some before it starts, some after it ends)
credits = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["CYCLING", "METRO", "BUS"]),
                             st.integers(0, 3000), st.integers(-2, 12)), min_size=1, max_size=24)


def _published(db: Database, doc: dict, people: int) -> list:  # type: ignore[type-arg]
    with db.session(write_lock=True) as s:
        for code, kind in (("appliance-shop", "appliance_retailer"), ("nev-maker", "nev_maker")):
            accounts.create_partner(s, code=code, name=code, kind=kind,
                                    signing_address=bytes.fromhex(Account.create().address[2:]))
        campaigns.register(s, parse_campaign(text(doc))).status = "published"
        citizens = [accounts.create_citizen(s) for _ in range(people)]
        for n, c in enumerate(citizens[:4]):  # the last two never opt in
            campaigns.join(s, "test-season", c, f"rider-{n}")
    return citizens


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=credits, seed=st.integers(0, 2**16), waves=st.integers(1, 4),
       tie_break=st.sampled_from(["earliest_reached", "account"]))
def test_the_kept_board_is_the_board_recounted_from_the_entries(
        request, tmp_path_factory, backend, plan, seed, waves, tie_break) -> None:
    with fresh_database(request, backend, tmp_path_factory.mktemp("ledger"), at_head=True) as url:
        db = Database(url)
        try:
            doc = season()
            doc["ranking"]["tie_break"] = tie_break
            people = _published(db, doc, 6)
            entries = [Entry(people[who], day(doc, d, hour=8 + i % 12), grams=g, points=g // 100,
                             behaviour=b) for i, (who, b, g, d) in enumerate(plan)]
            arrive_shuffled(db, entries, seed=seed, waves=waves, operator=OPERATOR)
            with db.session() as s:
                kept = rankings.leaderboard(s, "test-season")
                recounted = rankings.leaderboard_from_entries(s, "test-season")
                assert kept == recounted
                period = [(who, g) for who, b, g, d in plan
                          if b == "CYCLING" and g > 0 and 0 <= d < 10]
                for n, citizen in enumerate(people):
                    metric = s.scalar(select(CampaignStanding.metric).where(
                        CampaignStanding.citizen_id == citizen.id))
                    assert (metric or 0) == sum(g for who, g in period if who == n)
        finally:
            db.engine.dispose()


def test_the_board_lists_only_those_who_opted_in_above_the_minimum(db) -> None:
    doc = season()
    people = _published(db, doc, 6)
    add_entries(db, [Entry(people[0], day(doc, 1), grams=500, points=5),
                     Entry(people[1], day(doc, 1), grams=50, points=1),  # under the minimum
                     Entry(people[5], day(doc, 1), grams=9000, points=90)])  # never opted in
    with db.session() as s:
        assert rankings.leaderboard(s, "test-season")["entries"] == [], \
            "standings move when the step runs, not before"
    campaign_bonuses.award_bonuses(db, OPERATOR)
    with db.session() as s:
        board = rankings.leaderboard(s, "test-season")
    assert board["final"] is False
    assert [(e["rank"], e["nickname"], e["metric"], e["prize"]) for e in board["entries"]] == [
        (1, "rider-0", 500, 50)]


def test_a_correction_whose_ranking_counts_other_credits_recounts_the_standings(
        db, chain, make_partner, make_citizen) -> None:
    """v1 ranks cycling; v2, published during the season, ranks metro rides too: the metro
    credits the bonus step looked at under v1 (for their bonus) now count, and the board
    equals the one recounted from the entries under v2's rules."""
    make_partner("appliance-shop", "appliance_retailer")
    make_partner("nev-maker", "nev_maker")
    v1 = season()
    campaign_anchoring.publish(db, chain, text(v1))
    riders = [make_citizen() for _ in range(3)]
    with db.session(write_lock=True) as s:
        for n, c in enumerate(riders):
            campaigns.join(s, "test-season", c, f"rider-{n}")
    add_entries(db, [Entry(riders[0], day(v1, 1), grams=900, points=9),
                     Entry(riders[1], day(v1, 1), grams=500, points=5),
                     Entry(riders[1], day(v1, 2), grams=700, points=7, behaviour="METRO"),
                     Entry(riders[2], day(v1, 3), grams=300, points=3, behaviour="METRO")])
    campaign_bonuses.award_bonuses(db, OPERATOR)
    with db.session() as s:
        assert [(e["nickname"], e["metric"]) for e in rankings.leaderboard(s, "test-season")[
            "entries"]] == [("rider-0", 900), ("rider-1", 500)]

    v2 = season(version=2)
    v2["ranking"]["behaviours"] = ["CYCLING", "METRO"]
    campaign_anchoring.publish(db, chain, text(v2))
    with db.session() as s:
        kept = rankings.leaderboard(s, "test-season")
        assert kept == rankings.leaderboard_from_entries(s, "test-season")
        assert [(e["nickname"], e["metric"]) for e in kept["entries"]] == [
            ("rider-1", 1200), ("rider-0", 900), ("rider-2", 300)]
    add_entries(db, [Entry(riders[2], day(v1, 4), grams=1000, points=10, behaviour="METRO")])
    campaign_bonuses.award_bonuses(db, OPERATOR)  # later credits count under v2's rules
    with db.session() as s:
        assert rankings.leaderboard(s, "test-season") == rankings.leaderboard_from_entries(
            s, "test-season")
