"""Statements and credential status on the anchor contract: the chain side of #20.

Implements :class:`ledger.statements.StatementChain` over the same web3 connection, key
and fee rules as :class:`chain.client.EvmAnchor` (which it wraps): anchoring a month's
statement root, revoking credentials, and the reads a bank's verifier makes.
"""

from __future__ import annotations

from collections.abc import Sequence

from web3 import Web3

from chain.client import ANCHOR_GAS, AnchorPart
from ledger.anchoring import PreparedAnchor, TxReceipt
from ledger.errors import ChainError
from ledger.statements import StatementEvent

ISSUER_ROLE = Web3.keccak(text="ISSUER_ROLE")
#: A revocation pays ~25,000 gas per index in a new word; a cap keeps a long list in bounds.
MAX_REVOCATIONS_PER_TX = 100


class EvmStatements(AnchorPart):
    """The anchor contract's statements and credential status, through ``anchor``."""

    # -- reads -----------------------------------------------------------------------

    def statement_root(self, period: int) -> bytes | None:
        root = self.anchor.view_or_none(lambda: self.functions.statementRoot(period).call(),
                                        f"statement {period}", unknown="UnknownStatement")
        return None if root is None else bytes(root)

    def latest_statement(self) -> tuple[int, int]:
        period, through = self.anchor.view(lambda: self.functions.latestStatement().call(),
                                           "latestStatement")
        return int(period), int(through)

    def credential_revoked(self, index: int) -> bool:
        return bool(self.anchor.view(lambda: self.functions.credentialRevoked(index).call(),
                                     "credentialRevoked"))

    def is_issuer(self, address: str) -> bool:
        checksummed = Web3.to_checksum_address(address)
        return bool(self.anchor.view(lambda: self.functions.hasRole(
            ISSUER_ROLE, checksummed).call(), "hasRole"))

    def statement_events(self, tx_hash: bytes) -> list[StatementEvent]:
        return [StatementEvent(int(a["period"]), bytes(a["root"]), int(a["leafCount"]),
                               int(a["throughBatchId"]), bytes(a["contentHash"]))
                for a in self.anchor.events_in(tx_hash, "StatementAnchored")]

    def find_statement_receipt(self, period: int) -> TxReceipt | None:
        return self.anchor.find_event_receipt("StatementAnchored", period=period)

    # -- writes ----------------------------------------------------------------------

    def prepare_statement(self, *, period: int, root: bytes, leaf_count: int,
                          through_batch_id: int, content_hash: bytes) -> PreparedAnchor:
        call = self.functions.anchorStatement(period, root, leaf_count, through_batch_id,
                                              content_hash)
        return self.prepare_call(call, f"statement {period}", field="period")

    def prepare_revocation(self, indices: Sequence[int]) -> PreparedAnchor:
        if not 1 <= len(indices) <= MAX_REVOCATIONS_PER_TX:
            raise ChainError(f"1 to {MAX_REVOCATIONS_PER_TX} indices a transaction",
                             field="indices")
        return self.prepare_call(self.functions.revokeCredentials(list(indices)),
                                        "revocation", field="indices",
                                        gas=ANCHOR_GAS + 30_000 * len(indices))
