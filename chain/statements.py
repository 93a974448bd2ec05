"""Statements and credential status on the anchor contract: the chain side of #20.

Implements :class:`ledger.statements.StatementChain` over the same web3 connection, key
and fee rules as :class:`chain.client.EvmAnchor` (which it wraps): anchoring a month's
statement root, revoking credentials, and the reads a bank's verifier makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import MismatchedABI

from chain.client import (
    ANCHOR_GAS,
    EvmAnchor,
    call_chain,
    decode_custom_error,
    revert_data,
)
from chain.fees import price
from ledger.anchoring import PreparedAnchor, TxReceipt
from ledger.errors import ChainError, ChainUnavailable
from ledger.statements import StatementEvent

ISSUER_ROLE = Web3.keccak(text="ISSUER_ROLE")
#: A revocation pays ~25,000 gas per index in a new word; a cap keeps a long list in bounds.
MAX_REVOCATIONS_PER_TX = 100


class EvmStatements:
    """The anchor contract's statements and credential status, through ``anchor``."""

    def __init__(self, anchor: EvmAnchor) -> None:
        self._anchor = anchor
        self._contract = anchor.w3.eth.contract(address=Web3.to_checksum_address(
            anchor.contract_address), abi=anchor._contract.abi)

    @property
    def chain_id(self) -> int:
        return self._anchor.chain_id

    @property
    def contract_address(self) -> str:
        return self._anchor.contract_address

    # -- reads -----------------------------------------------------------------------

    def statement_root(self, period: int) -> bytes | None:
        try:  # one call: a month never stated reverts with UnknownStatement
            return bytes(self._contract.functions.statementRoot(period).call())
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc) or (revert_data(exc.__cause__) if exc.__cause__ else None)
            if data and decode_custom_error(self._contract.abi, data).startswith("UnknownStatement"):
                return None  # a month before the first statement
            return bytes(self._view(lambda: self._contract.functions.statementRoot(period).call(),
                                    f"statement {period}"))

    def latest_statement(self) -> tuple[int, int]:
        period, through = self._view(lambda: self._contract.functions.latestStatement().call(),
                                     "latestStatement")
        return int(period), int(through)

    def credential_revoked(self, index: int) -> bool:
        return bool(self._view(lambda: self._contract.functions.credentialRevoked(index).call(),
                               "credentialRevoked"))

    def is_issuer(self, address: str) -> bool:
        checksummed = Web3.to_checksum_address(address)
        return bool(self._view(lambda: self._contract.functions.hasRole(
            ISSUER_ROLE, checksummed).call(), "hasRole"))

    def statement_events(self, tx_hash: bytes) -> list[StatementEvent]:
        r = call_chain(lambda: self._anchor.w3.eth.get_transaction_receipt(HexBytes(tx_hash)),
                       "statement receipt")
        anchored = self._contract.events.StatementAnchored()
        topic = bytes(HexBytes(anchored.topic))
        events = []
        for log in r["logs"]:
            if (Web3.to_checksum_address(log["address"]) != self._contract.address
                    or not log["topics"] or bytes(log["topics"][0]) != topic):
                continue
            try:
                ev = anchored.process_log(log)
            except (MismatchedABI, ValueError):
                continue
            a = ev["args"]
            events.append(StatementEvent(int(a["period"]), bytes(a["root"]), int(a["leafCount"]),
                                         int(a["throughBatchId"]), bytes(a["contentHash"])))
        return events

    def find_statement_receipt(self, period: int) -> TxReceipt | None:
        logs = call_chain(lambda: self._contract.events.StatementAnchored().get_logs(
            from_block=self._anchor._from_block, to_block="latest",
            argument_filters={"period": period}), "StatementAnchored logs")
        for log in logs:
            receipt = self._anchor.receipt(bytes(log["transactionHash"]))
            if receipt is not None and receipt.succeeded:
                return receipt
        return None

    # -- writes ----------------------------------------------------------------------

    def prepare_statement(self, *, period: int, root: bytes, leaf_count: int,
                          through_batch_id: int, content_hash: bytes) -> PreparedAnchor:
        call = self._contract.functions.anchorStatement(period, root, leaf_count,
                                                        through_batch_id, content_hash)
        return self._prepare(call, f"statement {period}")

    def prepare_revocation(self, indices: Sequence[int]) -> PreparedAnchor:
        if not 1 <= len(indices) <= MAX_REVOCATIONS_PER_TX:
            raise ChainError(f"1 to {MAX_REVOCATIONS_PER_TX} indices a transaction",
                             field="indices")
        gas = ANCHOR_GAS + 30_000 * len(indices)
        return self._prepare(self._contract.functions.revokeCredentials(list(indices)),
                             "revocation", gas=gas)

    def broadcast(self, raw: bytes) -> None:
        self._anchor.broadcast(raw)

    def is_known(self, tx_hash: bytes) -> bool:
        return self._anchor.is_known(tx_hash)

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt:
        return self._anchor.wait_for_receipt(tx_hash, timeout=timeout)

    def mine_if_dev(self, blocks: int) -> bool:
        return self._anchor.mine_if_dev(blocks)

    # -- helpers ---------------------------------------------------------------------

    def _prepare(self, call: Any, what: str, *, gas: int = ANCHOR_GAS) -> PreparedAnchor:
        signer = self._anchor._require_signer()
        try:
            call.call({"from": signer.address})
        except ChainUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc)
            if data is None:
                raise ChainError(f"simulating {what}: {exc}", field="chain") from exc
            raise ChainError(f"{what} rejected: {decode_custom_error(self._contract.abi, data)}",
                             field="period") from exc
        nonce = self._anchor.nonces().pending
        max_fee, tip = price(*self._anchor._fee_quote(), ceiling=None)
        params: Any = {"from": signer.address, "nonce": nonce, "gas": gas,
                       "chainId": self.chain_id, "maxFeePerGas": max_fee,
                       "maxPriorityFeePerGas": tip}
        tx: Any = call_chain(lambda: call.build_transaction(params), what)
        signed = signer.sign_transaction(tx)
        return PreparedAnchor(bytes(signed.hash), bytes(signed.raw_transaction), nonce,
                              max_fee, tip)

    def _view(self, fn: Any, what: str) -> Any:
        try:
            return call_chain(fn, what)
        except ChainUnavailable:
            raise
        except ChainError:
            self._anchor.check_contract()  # no code: say so rather than "reverted"
            raise
