"""Campaign publications and ranking roots after a reorg, on a real anvil (``anvil_reorg``),
held against the chain as batches' and statements' anchors are (:mod:`ledger.reanchoring`):
one a reorg took away is sent again with the same contents by the next
:func:`recheck_campaign_anchors` (the serving process's chore), one mined again in another
block gets its row corrected. Neither is ordered, so each is held against the chain on its
own."""

from __future__ import annotations

import logging

from eth_account import Account

from chain.campaigns import EvmCampaigns
from ledger import campaigns, rankings
from ledger.campaign_anchoring import anchor_ranking, publish, recheck_campaign_anchors
from ledger.campaign_rules import Campaign
from ledger.store.database import Database
from ledger.store.models import CampaignRanking, CampaignRow
from tests.campaign_support import day, season, text
from tests.conftest import needs_anvil
from tests.fault_support import anvil_call, anvil_sealer
from tests.statement_ledger import Entry, add_entries

pytestmark = needs_anvil()

OPERATOR = bytes.fromhex(Account.create().address[2:])


def published(db: Database, url: str, make_partner) -> tuple[EvmCampaigns, Campaign, object]:  # type: ignore[no-untyped-def]
    make_partner("appliance-shop", "appliance_retailer")
    make_partner("nev-maker", "nev_maker")
    sealer = anvil_sealer(db, url, Account.create(), confirmations=1)
    chain = EvmCampaigns(sealer.anchor)  # type: ignore[arg-type]
    campaign = publish(db, chain, text(season()))
    assert chain.campaign_rules(campaign.key) == campaign.rules_hash
    return chain, campaign, sealer


def row(db: Database, key: bytes) -> CampaignRow:
    with db.session() as s:
        r = s.get_one(CampaignRow, key)
        s.expunge(r)
        return r


def ranking(db: Database) -> CampaignRanking:
    with db.session() as s:
        r = s.get_one(CampaignRanking, "test-season")
        s.expunge(r)
        return r


def test_a_publication_a_reorg_took_away_is_pinned_again(db, node, make_partner, caplog) -> None:  # type: ignore[no-untyped-def]
    chain, campaign, _ = published(db, node.url, make_partner)
    before = row(db, campaign.key)
    anvil_call(node.url, "anvil_reorg", [1, []])  # the publication's block is gone
    assert chain.campaign_rules(campaign.key) is None

    with caplog.at_level(logging.ERROR, logger="carbon_ledger.sealer"):
        found = recheck_campaign_anchors(db, chain)
    assert found.reopened == ["campaign test-season v1"] and found.moved == []
    assert "campaign test-season v1 was anchored" in caplog.text
    assert chain.campaign_rules(campaign.key) == campaign.rules_hash
    after = row(db, campaign.key)
    assert after.status == "published" and after.block_number is not None
    assert after.tx_hash == chain.find_publication_receipt(campaign.key).tx_hash  # type: ignore[union-attr]
    assert after.tx_hash != before.tx_hash  # the old one was dropped with its block
    assert recheck_campaign_anchors(db, chain).reopened == []


def test_a_publication_mined_again_in_a_later_block_is_put_right(db, node, make_partner) -> None:  # type: ignore[no-untyped-def]
    chain, campaign, _ = published(db, node.url, make_partner)
    before = row(db, campaign.key)
    assert before.raw_tx is not None and before.block_number is not None
    anvil_call(node.url, "anvil_mine", [2])
    anvil_call(node.url, "anvil_reorg", [3, [["0x" + before.raw_tx.hex(), 2]]])

    found = recheck_campaign_anchors(db, chain)
    assert found.moved == ["campaign test-season v1"] and found.reopened == []
    after = row(db, campaign.key)
    assert (after.status, after.tx_hash, after.block_number) == (
        "published", before.tx_hash, before.block_number + 2)


def test_a_ranking_root_a_reorg_took_away_is_anchored_again(db, node, make_partner,  # type: ignore[no-untyped-def]
                                                             make_citizen) -> None:
    chain, campaign, sealer = published(db, node.url, make_partner)
    doc = season()
    alice, bob = make_citizen(), make_citizen()
    with db.session(write_lock=True) as s:
        campaigns.join(s, "test-season", alice, "alice-rides")
        campaigns.join(s, "test-season", bob, "bob-rides")
    add_entries(db, [Entry(alice, day(doc, 1), grams=3000, points=30),
                     Entry(bob, day(doc, 2), grams=5000, points=50)])
    sealer.seal()  # type: ignore[attr-defined]
    assert campaign.ranking is not None
    rankings.close_ranking(db, "test-season", OPERATOR, now=campaign.ranking.ends_at)
    anchor_ranking(db, chain, "test-season")
    before = ranking(db)
    assert chain.ranking_root(campaign.key) == before.root

    anvil_call(node.url, "anvil_reorg", [1, []])  # the ranking's anchor is gone
    assert chain.ranking_root(campaign.key) is None
    found = recheck_campaign_anchors(db, chain)
    assert found.reopened == ["ranking test-season"], found
    assert chain.ranking_root(campaign.key) == before.root
    after = ranking(db)
    assert (after.status, after.root) == ("anchored", before.root)
    assert after.tx_hash == chain.find_ranking_receipt(campaign.key).tx_hash  # type: ignore[union-attr]
    assert row(db, campaign.key).status == "published"  # the publication, deeper, stayed
