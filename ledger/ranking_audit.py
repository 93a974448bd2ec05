"""A closed ranking's audit (#21): recomputed from the published rules and the anchored
entries' leaves, it fails on a wrong metric, a wrong order, a wrong prize, a prize entry
for anyone who did not earn it, or a root that is not the anchored one. It cannot see an
opted-in citizen left out altogether: that citizen sees it, having no proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ledger import campaigns
from ledger.campaign_anchoring import CampaignReader
from ledger.campaign_rules import Campaign
from ledger.errors import NotFound
from ledger.hashing import keccak
from ledger.leaf import KIND_BONUS, LeafValues, decode_leaf
from ledger.merkle import build_tree, root
from ledger.rankings import (
    RankLeaf,
    anchored_leaves,
    content_hash,
    order,
    prize_behaviour,
    prize_entry_id,
    prize_record,
    ranks,
    scores,
)
from ledger.store.database import Database
from ledger.store.models import CampaignRanking, LedgerEntry


@dataclass
class RankingAudit:
    campaign: str
    root: str
    ranked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "root": self.root, "ranked": self.ranked,
                "ok": self.ok, "problems": self.problems}


def audit_ranking(db: Database, campaign_id: str,
                  reader: CampaignReader | None = None) -> RankingAudit:
    """Recompute a closed ranking from the rules and the anchored entries' leaves.

    With ``reader``, the rules hash and the ranking root are also read from the contract
    and must be the ledger's."""
    with db.session(snapshot=True) as s:
        row = s.get(CampaignRanking, campaign_id)
        if row is None:
            raise NotFound(f"the ranking of {campaign_id!r} is not closed", field="campaign")
        stored = s.get(campaigns.CampaignRow, row.campaign_key)
        assert stored is not None
        campaign = campaigns.load(stored)
        ranked = ranks(s, campaign_id)
        rules = campaign.ranking
        assert rules is not None
        leaves = anchored_leaves(s, rules, row.through_batch_id)
        prize_rows = s.execute(select(LedgerEntry.leaf).where(
            LedgerEntry.kind == KIND_BONUS,
            LedgerEntry.behaviour == prize_behaviour(campaign_id))).scalars().all()
        problems = _check(campaign, row.through_batch_id, row.root, row.content_hash,
                          [RankLeaf.decode(bytes(r.leaf)) for r in ranked],
                          [(r.rank, r.account, r.metric, r.prize) for r in ranked], leaves,
                          [decode_leaf(bytes(x)) for x in prize_rows])
        ranking_root, count = bytes(row.root), len(ranked)
    if reader is not None:
        pinned = reader.campaign_rules(campaign.key)
        if pinned != campaign.rules_hash:
            problems.append(f"the contract pins rules hash {_h(pinned)}, the rules read hash "
                            f"{_h(campaign.rules_hash)}")
        anchored = reader.ranking_root(campaign.key)
        if anchored != ranking_root:
            problems.append(f"the contract holds ranking root {_h(anchored)}, the ledger's "
                            f"ranking has {_h(ranking_root)}")
    return RankingAudit(campaign_id, "0x" + ranking_root.hex(), count, problems)


def _h(b: bytes | None) -> str:
    return "none" if b is None else "0x" + b.hex()


def _check(campaign: Campaign, through: int, stored_root: bytes, stored_content: bytes,
           leaves: list[RankLeaf], columns: list[tuple[int, bytes, int, int]],
           entries: list[LeafValues], prize_entries: list[LeafValues]) -> list[str]:
    rules = campaign.ranking
    assert rules is not None
    problems: list[str] = []
    for leaf, (rank, account, metric, prize) in zip(leaves, columns, strict=True):
        if (leaf.rank, leaf.account, leaf.metric, leaf.prize) != (rank, account, metric, prize):
            problems.append(f"rank {rank}: its leaf says rank {leaf.rank}, metric {leaf.metric}, "
                            f"prize {leaf.prize}; its row rank {rank}, metric {metric}, "
                            f"prize {prize}")
        if leaf.campaign != campaign.key:
            problems.append(f"rank {rank}: its leaf names another campaign")
    if [leaf.rank for leaf in leaves] != list(range(1, len(leaves) + 1)):
        problems.append("ranks do not run 1, 2, 3, ... without a gap")
    accounts = {leaf.account for leaf in leaves}
    found = scores(rules, entries, accounts)
    for leaf in leaves:
        got = found.get(leaf.account)
        actual = got.metric if got else 0
        if actual != leaf.metric:
            problems.append(f"rank {leaf.rank} (account 0x{leaf.account.hex()[:12]}…): metric "
                            f"{leaf.metric}, but its anchored entries add up to {actual}")
    expected = order(rules, found.values())
    if [s.account for s in expected] != [leaf.account for leaf in leaves]:
        problems.append("the order is not the rules' order (metric, then "
                        f"{rules.tie_break}, then account) over the anchored entries")
    for leaf in leaves:
        if leaf.prize != rules.prize_for(leaf.rank):
            problems.append(f"rank {leaf.rank}: prize {leaf.prize}, the rules give "
                            f"{rules.prize_for(leaf.rank)}")
    if leaves:
        tree_root = root(build_tree(sorted(leaf.leaf_hash() for leaf in leaves)))
        if tree_root != stored_root:
            problems.append(f"the ranks' tree has root 0x{tree_root.hex()}, the ranking "
                            f"records 0x{stored_root.hex()}")
        if content_hash(through, leaves) != stored_content:
            problems.append("the content hash is not that of the ranks in rank order")
    earned = {leaf.account: leaf for leaf in leaves if leaf.prize > 0}
    paid: set[bytes] = set()
    for e in prize_entries:
        won = earned.get(e.account)
        if won is None:
            problems.append(f"prize entry 0x{e.entry_id.hex()} pays {e.points} points to an "
                            "account that earned no prize")
            continue
        want = keccak(prize_record(campaign.key, stored_root, won.rank, won.prize))
        if (e.entry_id != prize_entry_id(campaign.key, e.account) or e.points != won.prize
                or e.record_hash != want or e.account in paid):
            problems.append(f"prize entry 0x{e.entry_id.hex()} is not rank {won.rank}'s prize "
                            f"of {won.prize} naming root 0x{stored_root.hex()}")
        paid.add(e.account)
    for account, leaf in earned.items():
        if account not in paid:
            problems.append(f"rank {leaf.rank} earned {leaf.prize} points but no prize entry "
                            "pays them")
    return problems
