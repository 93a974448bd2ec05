"""Campaigns (#21): rules pinned on chain before the start, bonus points as their own
entries under caps that hold over any order of arrival, partner offers only in their
dates, and rankings sealed, anchored, proved and audited; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from chain.campaigns import EvmCampaigns
from ledger import accounts, campaign_anchoring, campaign_bonuses, campaigns, ranking_audit, rankings
from ledger.campaign_rules import parse_campaign
from ledger.errors import AnchorMismatch, ChainError, Conflict, InvalidInput, InvalidProof
from ledger.leaf import KIND_BONUS, KIND_CREDIT, decode_leaf
from ledger.merkle import root_from_proof
from ledger.redemption import redeem
from ledger.store.database import Database
from ledger.store.models import (
    CampaignBonus,
    CampaignRank,
    CampaignRow,
    LedgerEntry,
)
from tests.campaign_support import arrive_shuffled, day, season, text
from tests.conftest import BACKENDS, fresh_database
from tests.statement_ledger import Entry, add_entries

OPERATOR = bytes.fromhex(Account.create().address[2:])


@pytest.fixture
def chain(anchor) -> EvmCampaigns:  # type: ignore[no-untyped-def]
    return EvmCampaigns(anchor)


@pytest.fixture
def partners(make_partner) -> None:  # type: ignore[no-untyped-def]
    make_partner("appliance-shop", "appliance_retailer")
    make_partner("nev-maker", "nev_maker")


# -- rules as published data --------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"id": "Bad Id"}, "id"),
    ({"starts": "2026-13-01"}, "starts"),
    ({"behaviours": ["CYCLING", "TELEPORTING"]}, "behaviours[1]"),
    ({"bonuses": [{"behaviour": "CYCLING", "multiplier": "1.5", "points": 3}]},
     "bonuses[0].multiplier"),
    ({"bonuses": [{"behaviour": "CYCLING", "multiplier": "0.5"}]}, "bonuses[0].multiplier"),
    ({"bonus_cap_points": -1}, "bonus_cap_points"),
    ({"extra": 1}, "extra"),
])
def test_a_malformed_campaign_file_is_refused_naming_the_field(change, field) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_campaign(text(season(**change)))
    assert exc.value.field == field


def test_an_offer_outside_the_campaign_dates_is_refused() -> None:
    doc = season()
    doc["offers"][1]["valid_until"] = "2099-01-01"
    with pytest.raises(InvalidInput) as exc:
        parse_campaign(text(doc))
    assert exc.value.field == "offers[1].valid_until"


def test_rules_are_pinned_on_chain_before_the_start_and_never_change(db, chain, partners) -> None:
    doc = season()
    published = campaign_anchoring.publish(db, chain, text(doc))
    assert chain.campaign_rules(published.key) == published.rules_hash
    # the same rules in another layout are the same file
    assert campaign_anchoring.check_file(chain, text(doc).replace("\n", " ")) == published
    changed = season(bonus_cap_points=6000)
    with pytest.raises(InvalidInput, match="not the published rules"):
        campaign_anchoring.check_file(chain, text(changed))
    with pytest.raises(AnchorMismatch, match="new version"):
        campaign_anchoring.publish(db, chain, text(changed))
    # the contract itself refuses a second pin of the version
    with pytest.raises(ChainError, match="CampaignAlreadyPublished"):
        chain.prepare_publication(key=published.key, rules_hash=b"\x01" * 32,
                                  starts_at=published.starts_at)
    # a correction is a new version, published before it applies
    v2 = campaign_anchoring.publish(db, chain, text(season(version=2, bonus_cap_points=6000)))
    assert chain.campaign_rules(v2.key) == v2.rules_hash != published.rules_hash
    with db.session() as s:
        assert [c.version for c in campaigns.published_versions(s, "test-season")] == [1, 2]


def test_a_campaign_that_has_started_cannot_be_published(db, chain, partners) -> None:
    with pytest.raises(InvalidInput) as exc:
        campaign_anchoring.publish(db, chain, text(season(starts_in_days=-1)))
    assert exc.value.field == "starts"
    late = parse_campaign(text(season(starts_in_days=-1)))
    with pytest.raises(ChainError, match="CampaignAlreadyStarted"):
        chain.prepare_publication(key=late.key, rules_hash=late.rules_hash,
                                  starts_at=late.starts_at)
    with db.session() as s:
        assert s.scalar(select(CampaignRow.key)) is None  # nothing half-written


# -- bonuses: their own entries, caps over any order of arrival ----------------------------

def _register_published(db: Database, doc: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Stored as published without a chain: the bonus arithmetic does not read it."""
    with db.session(write_lock=True) as s:
        for code, kind in (("appliance-shop", "appliance_retailer"), ("nev-maker", "nev_maker")):
            if accounts.find_partner(s, code) is None:
                accounts.create_partner(s, code=code, name=code, kind=kind,
                                        signing_address=bytes.fromhex(Account.create().address[2:]))
        row = campaigns.register(s, parse_campaign(text(doc)))
        row.status = "published"


arrivals = st.lists(st.tuples(st.sampled_from(["CYCLING", "METRO", "BUS"]),
                              st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=14)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=arrivals, seed=st.integers(0, 2**16), waves=st.integers(1, 4))
def test_bonus_caps_hold_whatever_the_order_of_arrival(request, tmp_path_factory, backend,
                                                       plan, seed, waves) -> None:
    """The same credits, shuffled and awarded in waves: a citizen's bonus is always the
    lesser of the campaign's cap and the sum of each rule's capped bonuses, each rule
    stays under its cap, and no reduction's grams change."""
    with fresh_database(request, backend, tmp_path_factory.mktemp("ledger"), at_head=True) as url:
        db = Database(url)
        try:
            doc = season()
            _register_published(db, doc)
            with db.session(write_lock=True) as s:
                citizen = accounts.create_citizen(s)
            credits = [Entry(citizen, day(doc, d % 10), grams=1000, points=p, behaviour=b)
                       for b, p, d in plan]
            arrive_shuffled(db, credits, seed=seed, waves=waves, operator=OPERATOR)
            cycling = sum(int(p * 0.5) for b, p, _ in plan if b == "CYCLING")
            metro = 5 * sum(1 for b, _, _ in plan if b == "METRO")
            expected = min(60, min(40, cycling) + metro)
            with db.session() as s:
                bonus = list(s.scalars(select(LedgerEntry).where(LedgerEntry.kind == KIND_BONUS)))
                assert sum(e.points for e in bonus) == expected
                assert sum(e.points for e in bonus
                           if _earned_by(s, e) in _ids(s, "CYCLING")) <= 40
                assert all(e.reduction_grams == 0 and e.behaviour == "BONUS/test-season"
                           for e in bonus)
                assert accounts.balance(s, citizen.id) == expected
                grams = [e.reduction_grams for e in s.scalars(
                    select(LedgerEntry).where(LedgerEntry.kind == KIND_CREDIT))]
                assert grams == [1000] * len(plan)
                looked_at = s.scalar(select(CampaignBonus.earned_by).where(
                    CampaignBonus.campaign_id != "test-season"))
                assert looked_at is None
                assert len(list(s.scalars(select(CampaignBonus.earned_by)))) == sum(
                    1 for b, _, _ in plan if b != "BUS")
        finally:
            db.engine.dispose()


def _ids(s, behaviour: str) -> set[bytes]:  # type: ignore[no-untyped-def]
    return set(s.scalars(select(LedgerEntry.entry_id).where(LedgerEntry.behaviour == behaviour)))


def _earned_by(s, bonus: LedgerEntry) -> bytes:  # type: ignore[no-untyped-def]
    return s.scalar(select(CampaignBonus.earned_by).where(CampaignBonus.entry_id == bonus.entry_id))


def test_a_bonus_entry_names_its_campaign_and_earning_entry_and_is_sealed_like_a_credit(
        db, anchor, sealer, make_citizen) -> None:
    doc = season()
    _register_published(db, doc)
    alice = make_citizen()
    add_entries(db, [Entry(alice, day(doc, 1), grams=2000, points=20)])
    campaign_bonuses.award_bonuses(db, OPERATOR)
    sealer.seal()
    with db.session() as s:
        credit = s.scalar(select(LedgerEntry).where(LedgerEntry.kind == KIND_CREDIT))
        bonus = s.scalar(select(LedgerEntry).where(LedgerEntry.kind == KIND_BONUS))
        assert bonus is not None and credit is not None
        campaign = campaigns.current(s, "test-season")
        leaf = decode_leaf(bytes(bonus.leaf))
        assert (leaf.kind, leaf.points, leaf.reduction_grams) == (KIND_BONUS, 10, 0)
        assert leaf.entry_id == campaign_bonuses.bonus_entry_id("test-season", credit.entry_id)
        from ledger.hashing import keccak
        assert leaf.record_hash == keccak(campaign_bonuses.bonus_record(campaign, credit.entry_id, 10))
        assert credit.reduction_grams == 2000
    from ledger.proof_service import ProofService
    bundle = ProofService(db, None).bundle(bonus.entry_id)  # provable like any entry
    path = [bytes.fromhex(p[2:]) for p in bundle["proof"]]
    assert root_from_proof(leaf.leaf_hash(), path) == anchor.anchored_root(bundle["batchId"])


# -- partner offers ------------------------------------------------------------------------

def test_a_partner_offer_is_redeemed_only_within_its_dates(db, make_citizen) -> None:
    doc = season()
    _register_published(db, doc)
    alice = make_citizen()
    add_entries(db, [Entry(alice, day(doc, 0), grams=2000, points=30)])
    with db.session(write_lock=True) as s:
        accounts.credit_points(s, alice.id, 30)
        code = "test-season.v1.trade-in"
        with pytest.raises(Conflict) as exc:
            redeem(s, citizen=alice, reward_code=code, idempotency_key="k1",
                   operator_address=OPERATOR, now=day(doc, -1))
        assert exc.value.field == "reward"
    with db.session(write_lock=True) as s:
        redemption, replay = redeem(s, citizen=alice, reward_code=code, idempotency_key="k2",
                                    operator_address=OPERATOR, now=day(doc, 3))
        assert not replay and redemption.points == 10
    with db.session(write_lock=True) as s, pytest.raises(Conflict):
        redeem(s, citizen=alice, reward_code=code, idempotency_key="k3",
               operator_address=OPERATOR, now=day(doc, 10))


# -- rankings --------------------------------------------------------------------------------

def _season_with_ranking(db, chain, sealer, make_citizen):  # type: ignore[no-untyped-def]
    """alice and bob tie on grams (bob reached it first), dave ranks third, carol rides
    most but never opted in, erin is under the minimum."""
    doc = season()
    campaign = campaign_anchoring.publish(db, chain, text(doc))
    people = {n: make_citizen() for n in ("alice", "bob", "carol", "dave", "erin")}
    with db.session(write_lock=True) as s:
        for name in ("alice", "bob", "dave", "erin"):
            campaigns.join(s, "test-season", people[name], f"{name}-rides")
    add_entries(db, [
        Entry(people["alice"], day(doc, 1), grams=3000, points=30),
        Entry(people["bob"], day(doc, 2), grams=5000, points=50),
        Entry(people["alice"], day(doc, 3), grams=2000, points=20),
        Entry(people["carol"], day(doc, 3), grams=9000, points=90),
        Entry(people["dave"], day(doc, 4), grams=1000, points=10),
        Entry(people["dave"], day(doc, 4), grams=800, points=8, behaviour="METRO"),
        Entry(people["erin"], day(doc, 4), grams=50, points=1),
        Entry(people["dave"], day(doc, 20), grams=9000, points=90),  # after the period
    ])
    sealer.seal()
    rankings.close_ranking(db, "test-season", OPERATOR, now=campaign.ranking.ends_at)
    campaign_anchoring.anchor_ranking(db, chain, "test-season")
    return campaign, people


def test_a_ranking_is_sealed_anchored_and_each_participant_proves_their_rank(
        db, chain, sealer, make_citizen, partners) -> None:
    campaign, people = _season_with_ranking(db, chain, sealer, make_citizen)
    anchored_root = chain.ranking_root(campaign.key)
    with db.session() as s:
        board = rankings.leaderboard(s, "test-season")
        assert board["final"] and board["root"] == "0x" + anchored_root.hex()
        assert [(e["rank"], e["nickname"], e["metric"], e["prize"]) for e in board["entries"]] == [
            (1, "bob-rides", 5000, 50), (2, "alice-rides", 5000, 20), (3, "dave-rides", 1000, 20)]
        assert "carol" not in str(board)  # never opted in: not ranked, not shown
        for name, rank in (("bob", 1), ("alice", 2), ("dave", 3)):
            proof = rankings.rank_proof(s, "test-season", people[name])
            leaf = rankings.verify_rank_proof(proof, anchored_root)
            assert (leaf.rank, leaf.account) == (rank, people[name].account)
        prizes = {e.citizen_id: e.points for e in s.scalars(
            select(LedgerEntry).where(LedgerEntry.behaviour == "PRIZE/test-season"))}
        assert prizes == {people["bob"].id: 50, people["alice"].id: 20, people["dave"].id: 20}
        assert accounts.balance(s, people["bob"].id) == 50
    report = ranking_audit.audit_ranking(db, "test-season", chain)
    assert report.ok, report.problems
    with pytest.raises(Conflict):  # closed once
        rankings.close_ranking(db, "test-season", OPERATOR, now=campaign.ranking.ends_at)


def test_the_ranking_is_refused_before_its_period_ends(db, chain, make_citizen, partners) -> None:
    campaign = campaign_anchoring.publish(db, chain, text(season()))
    with pytest.raises(Conflict) as exc:
        rankings.close_ranking(db, "test-season", OPERATOR, now=campaign.ranking.ends_at - 1)
    assert exc.value.field == "campaign"


def test_the_tie_break_by_account_is_deterministic() -> None:
    rules = parse_campaign(text(season())).ranking
    assert rules is not None
    scores = [rankings.Score(bytes([b]) * 32, 500, 100 + b) for b in (7, 3, 9)]
    by_time = rankings.order(rules, scores)
    assert [s.account[0] for s in by_time] == [3, 7, 9]
    flipped = [rankings.Score(s.account, s.metric, 1000 - s.reached_at) for s in scores]
    assert [s.account[0] for s in rankings.order(rules, flipped)] == [9, 7, 3]
    by_account = parse_campaign(text(season(ranking={**season()["ranking"],
                                                     "tie_break": "account"}))).ranking
    assert by_account is not None
    for _ in range(3):
        random.shuffle(flipped)
        assert [s.account[0] for s in rankings.order(by_account, flipped)] == [3, 7, 9]


@pytest.mark.parametrize("tamper, finding", [
    ("metric", "anchored entries add up to"),
    ("order", "not the rules' order"),
    ("prize", "earned no prize"),
])
def test_the_audit_catches_a_tampered_ranking(db, chain, sealer, make_citizen, partners,
                                              tamper, finding) -> None:
    campaign, people = _season_with_ranking(db, chain, sealer, make_citizen)
    with db.session(write_lock=True) as s:
        ranks = {r.rank: r for r in s.scalars(select(CampaignRank))}
        if tamper == "metric":  # dave's 1,000 g claimed as 6,000 g, leaf and all
            r = ranks[3]
            leaf = rankings.RankLeaf(campaign.key, r.account, 6000, 3, 20)
            r.metric, r.leaf = 6000, leaf.encode()
        elif tamper == "order":  # alice and bob swapped, leaves and all
            for rank, other in ((1, ranks[2]), (2, ranks[1])):
                s.execute(update(CampaignRank).where(CampaignRank.account == other.account)
                          .values(rank=-rank))
            s.flush()
            for rank, other in ((1, ranks[2]), (2, ranks[1])):
                leaf = rankings.RankLeaf(campaign.key, other.account, other.metric, rank,
                                         campaign.ranking.prize_for(rank))
                s.execute(update(CampaignRank).where(CampaignRank.rank == -rank)
                          .values(rank=rank, leaf=leaf.encode(),
                                  prize=campaign.ranking.prize_for(rank)))
        else:  # a prize for carol, who never ranked
            from ledger.entries import make_entry
            from ledger.hashing import keccak
            carol = people["carol"]
            s.add(make_entry(entry_id=rankings.prize_entry_id(campaign.key, carol.account),
                             citizen_id=carol.id, account=carol.account, kind=KIND_BONUS,
                             behaviour="PRIZE/test-season", quantity=1, reduction_grams=0,
                             points=50, methodology=2, occurred_at=day(season(), 11),
                             record_hash=keccak(b"x"), partner_address=OPERATOR))
    report = ranking_audit.audit_ranking(db, "test-season", chain)
    assert not report.ok
    assert any(finding in p for p in report.problems), report.problems


def test_an_erased_citizen_leaves_the_board_and_every_proof_still_verifies(
        db, chain, sealer, make_citizen, partners) -> None:
    campaign, people = _season_with_ranking(db, chain, sealer, make_citizen)
    with db.session() as s:
        proofs = {n: rankings.rank_proof(s, "test-season", people[n])
                  for n in ("alice", "bob", "dave")}
    with db.session(write_lock=True) as s:
        accounts.erase_citizen(s, s.get_one(type(people["alice"]), people["alice"].id))
    anchored_root = chain.ranking_root(campaign.key)
    with db.session() as s:
        board = rankings.leaderboard(s, "test-season")
        assert [e["nickname"] for e in board["entries"]] == ["bob-rides", "dave-rides"]
        assert "alice" not in str(board)
        for name, proof in proofs.items():
            assert rankings.rank_proof(s, "test-season", people[name]) == proof
            rankings.verify_rank_proof(proof, anchored_root)
    assert ranking_audit.audit_ranking(db, "test-season", chain).ok
    forged = dict(proofs["dave"], leaf=dict(proofs["dave"]["leaf"], rank=1))
    with pytest.raises(InvalidProof):
        rankings.verify_rank_proof(forged, anchored_root)


def test_a_nickname_is_no_personal_data_and_unique_in_a_campaign(db, make_citizen) -> None:
    _register_published(db, season())
    alice, bob = make_citizen(), make_citizen()
    with db.session(write_lock=True) as s:
        for bad in ("13812345678", "a@b.cn", "x", "a b"):
            with pytest.raises(InvalidInput) as exc:
                campaigns.join(s, "test-season", alice, bad)
            assert exc.value.field == "nickname"
        campaigns.join(s, "test-season", alice, "绿色骑手")
        with pytest.raises(Conflict):
            campaigns.join(s, "test-season", bob, "绿色骑手")
        assert campaigns.leave(s, "test-season", alice)
        campaigns.join(s, "test-season", bob, "绿色骑手")


def test_the_sample_campaign_in_the_docs_is_a_valid_file() -> None:
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "docs" / "samples" / "campaign-green-season.json"
    campaign = parse_campaign(sample.read_bytes())
    assert [o.partner for o in campaign.offers] == ["homeshop", "voltauto"]
    assert campaign.ranking is not None and campaign.ranking.behaviours == ("CYCLING",)
    docs = (sample.parents[1] / "campaigns.md").read_text(encoding="utf-8")
    assert f"rules hash 0x{campaign.rules_hash.hex()[:8]}…" in docs
    assert f"key 0x{campaign.key.hex()[:8]}…" in docs


def test_two_bonus_runs_at_once_pay_each_credit_once(db, make_citizen) -> None:
    """A serving process's chore and `campaign bonuses` by hand may run together: each
    credit is paid once and the caps still hold."""
    from concurrent.futures import ThreadPoolExecutor

    doc = season()
    _register_published(db, doc)
    riders = [make_citizen() for _ in range(3)]
    add_entries(db, [Entry(r, day(doc, n % 10), grams=1000, points=30)
                     for n in range(6) for r in riders])
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(campaign_bonuses.award_bonuses, db, OPERATOR) for _ in range(2)]:
            done.result()
    with db.session() as s:
        for r in riders:  # six credits of 15 each, under the cycling cap of 40
            assert accounts.balance(s, r.id) == 40
        assert len(list(s.scalars(select(CampaignBonus.earned_by)))) == 18
