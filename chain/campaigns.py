"""Campaigns on the anchor contract: the chain side of #21.

Implements :class:`ledger.campaign_anchoring.CampaignChain` over the same connection, key and fee
rules as :class:`chain.client.EvmAnchor`, as :mod:`chain.statements` does for month
statements: pinning a campaign version's rules hash, anchoring its ranking's root, and
the reads anyone makes to check them.
"""

from __future__ import annotations

from chain.client import AnchorPart
from ledger.anchoring import PreparedAnchor, TxReceipt


class EvmCampaigns(AnchorPart):
    """The anchor contract's campaigns and rankings, through ``anchor``."""

    # -- reads -----------------------------------------------------------------------

    def campaign_rules(self, key: bytes) -> bytes | None:
        rules = self.anchor.view_or_none(lambda: self.functions.campaignRules(key).call(),
                                         "campaignRules", unknown="UnknownCampaign")
        return None if rules is None else bytes(rules)

    def ranking_root(self, key: bytes) -> bytes | None:
        root = self.anchor.view_or_none(lambda: self.functions.rankingRoot(key).call(),
                                        "rankingRoot", unknown="UnknownRanking")
        return None if root is None else bytes(root)

    def block_time(self) -> int:
        return self.anchor.block_time()

    def find_publication_receipt(self, key: bytes) -> TxReceipt | None:
        return self.anchor.find_event_receipt("CampaignPublished", campaign=key)

    def find_ranking_receipt(self, key: bytes) -> TxReceipt | None:
        return self.anchor.find_event_receipt("RankingAnchored", campaign=key)

    # -- writes ----------------------------------------------------------------------

    def prepare_publication(self, *, key: bytes, rules_hash: bytes,
                            starts_at: int) -> PreparedAnchor:
        return self.prepare_call(
            self.functions.publishCampaign(key, rules_hash, starts_at),
            "campaign publication", field="campaign")

    def prepare_ranking(self, *, key: bytes, root: bytes, leaf_count: int,
                        content_hash: bytes) -> PreparedAnchor:
        return self.prepare_call(
            self.functions.anchorRanking(key, root, leaf_count, content_hash),
            "ranking anchor", field="ranking")
