"""Campaigns on the anchor contract: the chain side of #21.

Implements :class:`ledger.campaigns.CampaignChain` over the same connection, key and fee
rules as :class:`chain.client.EvmAnchor`, as :mod:`chain.statements` does for month
statements: pinning a campaign version's rules hash, anchoring its ranking's root, and
the reads anyone makes to check them.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from chain.client import EvmAnchor, call_chain, decode_custom_error, revert_data
from chain.statements import EvmStatements
from ledger.anchoring import PreparedAnchor, TxReceipt


class EvmCampaigns:
    """The anchor contract's campaigns and rankings, through ``anchor``."""

    def __init__(self, anchor: EvmAnchor) -> None:
        self._anchor = anchor
        self._statements = EvmStatements(anchor)  # its signing and fee rules, shared
        self._contract = anchor.w3.eth.contract(address=Web3.to_checksum_address(
            anchor.contract_address), abi=anchor._contract.abi)

    @property
    def chain_id(self) -> int:
        return self._anchor.chain_id

    @property
    def contract_address(self) -> str:
        return self._anchor.contract_address

    # -- reads -----------------------------------------------------------------------

    def campaign_rules(self, key: bytes) -> bytes | None:
        return self._read_or_none(lambda: self._contract.functions.campaignRules(key).call(),
                                  "UnknownCampaign", "campaignRules")

    def ranking_root(self, key: bytes) -> bytes | None:
        return self._read_or_none(lambda: self._contract.functions.rankingRoot(key).call(),
                                  "UnknownRanking", "rankingRoot")

    def block_time(self) -> int:
        return int(call_chain(lambda: self._anchor.w3.eth.get_block("latest")["timestamp"],
                              "latest block"))

    # -- writes ----------------------------------------------------------------------

    def prepare_publication(self, *, key: bytes, rules_hash: bytes,
                            starts_at: int) -> PreparedAnchor:
        return self._statements._prepare(
            self._contract.functions.publishCampaign(key, rules_hash, starts_at),
            "campaign publication")

    def prepare_ranking(self, *, key: bytes, root: bytes, leaf_count: int,
                        content_hash: bytes) -> PreparedAnchor:
        return self._statements._prepare(
            self._contract.functions.anchorRanking(key, root, leaf_count, content_hash),
            "ranking anchor")

    def broadcast(self, raw: bytes) -> None:
        self._anchor.broadcast(raw)

    def is_known(self, tx_hash: bytes) -> bool:
        return self._anchor.is_known(tx_hash)

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt:
        return self._anchor.wait_for_receipt(tx_hash, timeout=timeout)

    # -- helpers ---------------------------------------------------------------------

    def _read_or_none(self, fn: Any, unknown: str, what: str) -> bytes | None:
        """One call: a key never written reverts with ``unknown``, read as None."""
        try:
            return bytes(fn())
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc) or (revert_data(exc.__cause__) if exc.__cause__ else None)
            if data and decode_custom_error(self._contract.abi, data).startswith(unknown):
                return None
            return bytes(self._statements._view(fn, what))
