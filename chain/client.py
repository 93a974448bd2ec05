"""The anchoring client: one implementation of the ledger's chain protocol over web3.

Works the same over an in-process eth-tester chain, a managed anvil node and any EVM
JSON-RPC endpoint; what differs (how to fund a dev key, whether we may mine blocks to
reach confirmations) is told by :class:`ChainKind`. Transport failures (refused,
timed out, 5xx) surface as :class:`~ledger.anchoring.ChainUnavailable`, so callers can
tell "try again later" from "the chain said no".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, MismatchedABI, TransactionNotFound

from chain.calls import TRANSPORT_ERRORS, call_chain, decode_custom_error, revert_data
from chain.compiler import load_artifact
from chain.fees import bump, price
from ledger.anchoring import AccountNonces, AnchorEvent, PreparedAnchor, TxReceipt
from ledger.errors import AnchorMismatch, ChainError, ChainUnavailable, FeeTooLow

__all__ = ["ANCHOR_GAS", "AnchorPart", "ChainKind", "Deployment", "EvmAnchor", "call_chain",
           "decode_custom_error", "deploy_contract", "revert_data"]

ANCHOR_GAS = 200_000
# What nodes answer when a transaction is re-sent: it is in the pool, its nonce is taken
# (mined, by it or by a replacement), or a pricier one of that nonce is already waiting.
_BENIGN_SEND = ("already known", "already imported", "nonce too low",
                "replacement transaction underpriced", "replacement underpriced")
_FEE_TOO_LOW = ("less than block base fee", "fee cap less than", "transaction underpriced",
                "max fee per gas less than")


class ChainKind(Enum):
    TESTER = "tester"  # in-process py-evm, ephemeral
    ANVIL = "anvil"  # a local anvil node: dev RPC methods available
    RPC = "rpc"  # any EVM JSON-RPC endpoint: nothing beyond the standard methods

    @property
    def is_dev(self) -> bool:
        return self is not ChainKind.RPC


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: str
    tx_hash: str
    block_number: int


class EvmAnchor:
    """Anchors batch roots to ``CarbonLedgerAnchor`` at ``address`` and reads them back."""

    def __init__(self, w3: Web3, kind: ChainKind, address: str, signer: LocalAccount | None,
                 *, from_block: int = 0) -> None:
        """``from_block``: where to start looking for the contract's logs (its deployment)."""
        self.w3 = w3
        self.kind = kind
        self._signer = signer
        self._from_block = from_block
        self._contract = w3.eth.contract(address=Web3.to_checksum_address(address),
                                         abi=load_artifact()["abi"])
        self._chain_id = int(call_chain(lambda: w3.eth.chain_id, "chain id"))

    def reader(self) -> EvmAnchor:
        """The same contract seen read-only, as an outside verifier sees it: no key, and no
        dev-chain favours (it never mines to reach confirmations)."""
        return EvmAnchor(self.w3, ChainKind.RPC, self.contract_address, signer=None,
                         from_block=self._from_block)

    # -- ChainReader ---------------------------------------------------------------

    @property
    def contract(self) -> Contract:
        """The anchor contract: ``contract.functions.<name>(...)`` builds a call for
        :meth:`view` or :meth:`prepare_call`."""
        return self._contract

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def contract_address(self) -> str:
        return str(self._contract.address)

    def has_code(self) -> bool:
        code = call_chain(lambda: self.w3.eth.get_code(self._contract.address), "contract code")
        return len(code) > 0

    def check_contract(self) -> None:
        if not self.has_code():
            raise AnchorMismatch(f"the anchor contract {self.contract_address} has no code on "
                                 f"chain {self.chain_id}: the node lost its state (run "
                                 "`carbon-ledger chain check`)", field="contract")

    def latest_batch_id(self) -> int:
        return int(self.view(lambda: self._contract.functions.latestBatchId().call(),
                              "latestBatchId"))

    def anchored_root(self, batch_id: int) -> bytes | None:
        if batch_id < 1 or batch_id > self.latest_batch_id():
            return None
        return bytes(self.view(lambda: self._contract.functions.batchRoot(batch_id).call(),
                                f"batch {batch_id}"))

    def _raw_receipt(self, tx_hash: bytes, what: str) -> Any:
        """The node's receipt of ``tx_hash``, or None if it does not know the transaction."""
        try:
            return call_chain(lambda: self.w3.eth.get_transaction_receipt(_hex(tx_hash)),  # type: ignore[arg-type]
                              what)
        except ChainError as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return None
            raise

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        r = self._raw_receipt(tx_hash, "txHash")
        if r is None:
            return None
        return TxReceipt(bytes(r["transactionHash"]), int(r["blockNumber"]), r["status"] == 1,
                         int(r["gasUsed"]), r.get("to"), bytes(r["blockHash"]))

    def anchor_events(self, tx_hash: bytes) -> list[AnchorEvent]:
        return [AnchorEvent(int(a["batchId"]), bytes(a["root"]), int(a["leafCount"]),
                            bytes(a["contentHash"]))
                for a in self.events_in(tx_hash, "BatchAnchored")]

    def events_in(self, tx_hash: bytes, event: str) -> list[Any]:
        """The arguments of each ``event`` of this contract that transaction ``tx_hash``
        logged (read from its receipt)."""
        r = call_chain(lambda: self.w3.eth.get_transaction_receipt(_hex(tx_hash)),  # type: ignore[arg-type]
                       f"receipt {_hex(tx_hash)}")
        kind = self._contract.events[event]()
        topic = bytes(HexBytes(kind.topic))
        found = []
        for log in r["logs"]:
            # Only this contract's logs of this event: the same transaction may carry
            # another event of the contract (RoleGranted, say).
            if (Web3.to_checksum_address(log["address"]) != self._contract.address
                    or not log["topics"] or bytes(log["topics"][0]) != topic):
                continue
            try:
                found.append(kind.process_log(log)["args"])
            except (MismatchedABI, ValueError):
                continue
        return found

    def find_event_receipt(self, event: str, **arguments: int | bytes) -> TxReceipt | None:
        """The receipt of the first successful transaction whose ``event`` log has these
        (indexed) ``arguments``, searched from the contract's deployment; None if none."""
        logs = call_chain(lambda: self._contract.events[event]().get_logs(
            from_block=self._from_block, to_block="latest", argument_filters=arguments),
            f"{event} logs")
        for log in logs:
            receipt = self.receipt(bytes(log["transactionHash"]))
            if receipt is not None and receipt.succeeded:
                return receipt
        return None

    def created_contract(self, tx_hash: bytes) -> tuple[str, int] | None:
        """The contract a deployment transaction created, and its block (None if the
        transaction is unknown or created nothing)."""
        r = self._raw_receipt(tx_hash, "deployment txHash")
        address = r.get("contractAddress") if r is not None else None
        if r is None or r["status"] != 1 or not address:
            return None
        return Web3.to_checksum_address(address), int(r["blockNumber"])

    def confirmations(self, block_number: int) -> int:
        return max(0, self.head() - block_number + 1)

    def verify_on_chain(self, batch_id: int, leaf: bytes, proof: list[bytes]) -> bool:
        return bool(self.view(lambda: self._contract.functions.verify(batch_id, leaf, proof).call(),
                               "verify"))

    # -- Anchor --------------------------------------------------------------------

    def prepare_anchor(self, *, batch_id: int, root: bytes, leaf_count: int,
                       content_hash: bytes, nonce: int | None = None,
                       replacing: bytes | None = None,
                       max_fee_ceiling: int | None = None) -> PreparedAnchor:
        return self.prepare_call(
            self._contract.functions.anchor(batch_id, root, leaf_count, content_hash),
            f"anchor of batch {batch_id}", field="batchId", nonce=nonce, replacing=replacing,
            max_fee_ceiling=max_fee_ceiling)

    def prepare_call(self, call: Any, what: str, *, field: str, gas: int = ANCHOR_GAS,
                     nonce: int | None = None, replacing: bytes | None = None,
                     max_fee_ceiling: int | None = None) -> PreparedAnchor:
        """Sign a transaction of the contract ``call`` with the anchoring key, not sent:
        run as a call first (a rejection is a :class:`ChainError` naming the contract's
        error, on ``field``), at the key's pending nonce (or ``nonce``, or the nonce of
        ``replacing``, priced above it), EIP-1559 fees from the next block's base fee
        (at most ``max_fee_ceiling``). ``what`` names it in errors."""
        signer = self._require_signer()
        self._simulate(call, what, signer.address, field)
        previous = None
        if replacing is not None:
            old = TypedTransaction.from_bytes(HexBytes(replacing)).as_dict()
            previous = (int(old["maxFeePerGas"]), int(old["maxPriorityFeePerGas"]))
            nonce = int(old["nonce"])
        if nonce is None:
            nonce = self.nonces().pending
        max_fee, tip = price(*self._fee_quote(), ceiling=max_fee_ceiling, replacing=previous)
        params: Any = {"from": signer.address, "nonce": nonce, "gas": gas,
                       "chainId": self._chain_id, "maxFeePerGas": max_fee,
                       "maxPriorityFeePerGas": tip}
        tx: Any = call_chain(lambda: call.build_transaction(params), f"{what} transaction")
        signed = signer.sign_transaction(tx)
        return PreparedAnchor(bytes(signed.hash), bytes(signed.raw_transaction), nonce,
                              max_fee, tip)

    def broadcast(self, raw: bytes) -> None:
        try:
            call_chain(lambda: self.w3.eth.send_raw_transaction(raw), "anchor")
        except ChainUnavailable:
            raise
        except ChainError as exc:
            message = str(exc).lower()
            if any(benign in message for benign in _BENIGN_SEND):
                return  # the receipt (of it or of a replacement) decides what counts
            if any(low in message for low in _FEE_TOO_LOW):
                raise FeeTooLow(f"the node refuses the anchor as priced too low: {exc.message}",
                                field="max_fee_gwei") from exc
            if "insufficient funds" in message:
                raise ChainError(f"the anchoring account {self._require_signer().address} cannot "
                                 "pay for gas", field="anchor_key") from exc
            raise

    def find_anchor_receipt(self, batch_id: int) -> TxReceipt | None:
        # The contract keeps no block per batch: the logs say where its anchor went.
        return self.find_event_receipt("BatchAnchored", batchId=batch_id)

    def is_known(self, tx_hash: bytes) -> bool:
        try:
            call_chain(lambda: self.w3.eth.get_transaction(_hex(tx_hash)), "txHash")  # type: ignore[arg-type]
        except ChainError as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return False
            raise
        return True

    def nonces(self) -> AccountNonces:
        address = self._require_signer().address
        mined = call_chain(lambda: self.w3.eth.get_transaction_count(address, "latest"), "nonce")
        pending = call_chain(lambda: self.w3.eth.get_transaction_count(address, "pending"), "nonce")
        return AccountNonces(int(mined), max(int(mined), int(pending)))

    def head(self) -> int:
        return int(call_chain(lambda: self.w3.eth.block_number, "block number"))

    def block_time(self) -> int:
        """The latest block's timestamp (unix seconds)."""
        return int(call_chain(lambda: self.w3.eth.get_block("latest")["timestamp"],
                              "latest block"))

    def block_hash(self, block_number: int) -> bytes | None:
        try:
            block = call_chain(lambda: self.w3.eth.get_block(block_number), f"block {block_number}")
        except ChainError as exc:
            if isinstance(exc.__cause__, BlockNotFound):
                return None
            raise
        return bytes(block["hash"])

    def mine_if_dev(self, blocks: int) -> bool:
        if not self.kind.is_dev:
            return False
        self.mine(blocks)
        return True

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt:
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise ChainError(f"no receipt for {_hex(tx_hash)} after {timeout:.0f}s",
                                 field="txHash")
            time.sleep(0.2)

    # -- helpers -------------------------------------------------------------------

    def advance_clock_if_dev(self, to: int) -> bool:
        """Mine a block at ``to`` (unix seconds) on a dev chain; later blocks follow it.
        False on a chain whose clock is not ours to move."""
        if self.kind is ChainKind.TESTER:
            self.w3.provider.ethereum_tester.time_travel(to)  # type: ignore[attr-defined]
        elif self.kind is ChainKind.ANVIL:
            provider = self.w3.provider
            call_chain(lambda: provider.make_request("evm_setNextBlockTimestamp", [to]),  # type: ignore[arg-type]
                       "evm_setNextBlockTimestamp")
            call_chain(lambda: provider.make_request("evm_mine", []), "evm_mine")  # type: ignore[arg-type]
        else:
            return False
        return True

    def mine(self, blocks: int) -> None:
        """Mine empty blocks; only on dev chains, to reach confirmations at once."""
        if self.kind is ChainKind.TESTER:
            self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]
        elif self.kind is ChainKind.ANVIL:
            for _ in range(blocks):
                call_chain(lambda: self.w3.provider.make_request("evm_mine", []), "evm_mine")  # type: ignore[arg-type]
        else:
            raise ChainError("cannot mine on a remote chain", field="chain")

    def view(self, fn: Any, what: str) -> Any:
        """A contract read (``fn`` makes it); one that finds no code at the contract says
        so (:class:`AnchorMismatch`) instead of failing to decode or "reverted"."""
        try:
            return call_chain(fn, what)
        except ChainUnavailable:
            raise
        except ChainError:
            self.check_contract()
            raise

    def view_or_none(self, fn: Any, what: str, *, unknown: str) -> Any:
        """A contract read that reverts with the custom error ``unknown`` for a key never
        written (``UnknownStatement``, say): None then, in one call."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc) or (revert_data(exc.__cause__) if exc.__cause__ else None)
            if data and decode_custom_error(self._contract.abi, data).startswith(unknown):
                return None
            return self.view(fn, what)  # asked again, for the error named as any read's

    def _simulate(self, call: Any, what: str, sender: str, field: str) -> None:
        """Run the transaction as a call first: a contract rejection comes back named."""
        try:
            call.call({"from": sender})
        except TRANSPORT_ERRORS as exc:
            raise ChainUnavailable(f"simulating {what}: {exc}", field="chain") from exc
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc)
            if data is None:
                self.check_contract()
                raise ChainError(f"simulating {what}: {exc}", field="chain") from exc
            raise ChainError(f"{what} rejected: {decode_custom_error(self._contract.abi, data)}",
                             field=field) from exc

    def _require_signer(self) -> LocalAccount:
        if self._signer is None:
            raise ChainError("no anchoring key configured", field="anchor_key")
        return self._signer

    def _fee_quote(self) -> tuple[int, int]:
        """The next block's base fee and a priority fee, as the node estimates them."""
        tip = int(call_chain(lambda: self.w3.eth.max_priority_fee, "priority fee"))
        try:
            pending = call_chain(lambda: self.w3.eth.get_block("pending"), "pending block")
            base = pending.get("baseFeePerGas")
        except ChainUnavailable:
            raise
        except ChainError:  # a node without a "pending" block
            base = None
        if base is None:  # the most the next block's base fee can rise
            latest = call_chain(lambda: self.w3.eth.get_block("latest"), "latest block")
            base = bump(int(latest.get("baseFeePerGas") or 0))
        return int(base), tip


class AnchorPart:
    """A part of the anchor contract's interface beyond batches (month statements,
    campaigns), over an :class:`EvmAnchor`: the same connection, contract, key, and the
    same fee, nonce, sending and receipt rules. A part adds its reads and ``prepare_*``
    methods with :meth:`EvmAnchor.view`, :meth:`prepare_call` and
    :meth:`EvmAnchor.events_in`.

    ``max_fee_wei`` is the operator's fee ceiling (``max_fee_gwei``), the one batch anchors
    are held to: a part's transaction is never signed above it."""

    def __init__(self, anchor: EvmAnchor, *, max_fee_wei: int | None = None) -> None:
        self.anchor = anchor
        self.functions = anchor.contract.functions
        self.max_fee_wei = max_fee_wei

    def prepare_call(self, call: Any, what: str, *, field: str,
                     gas: int = ANCHOR_GAS) -> PreparedAnchor:
        """:meth:`EvmAnchor.prepare_call` under the part's fee ceiling
        (:class:`FeeAboveCeiling` rather than sign above it)."""
        return self.anchor.prepare_call(call, what, field=field, gas=gas,
                                        max_fee_ceiling=self.max_fee_wei)

    @property
    def chain_id(self) -> int:
        return self.anchor.chain_id

    @property
    def contract_address(self) -> str:
        return self.anchor.contract_address

    def broadcast(self, raw: bytes) -> None:
        self.anchor.broadcast(raw)

    def is_known(self, tx_hash: bytes) -> bool:
        return self.anchor.is_known(tx_hash)

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        return self.anchor.receipt(tx_hash)

    def wait_for_receipt(self, tx_hash: bytes, *, timeout: float) -> TxReceipt:
        return self.anchor.wait_for_receipt(tx_hash, timeout=timeout)

    def block_hash(self, block_number: int) -> bytes | None:
        return self.anchor.block_hash(block_number)

    def check_contract(self) -> None:
        self.anchor.check_contract()

    def mine_if_dev(self, blocks: int) -> bool:
        return self.anchor.mine_if_dev(blocks)


def deploy_contract(w3: Web3, signer: LocalAccount, *, admin: str | None = None) -> Deployment:
    """Deploy ``CarbonLedgerAnchor`` with ``signer`` as anchorer (and admin by default)."""
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    chain_id = call_chain(lambda: w3.eth.chain_id, "chain id")
    nonce = call_chain(lambda: w3.eth.get_transaction_count(signer.address, "pending"), "nonce")
    tx = call_chain(lambda: factory.constructor(admin or signer.address, signer.address)
               .build_transaction({"from": signer.address, "nonce": nonce, "chainId": chain_id}),
               "contract")
    signed = signer.sign_transaction(tx)
    tx_hash = call_chain(lambda: w3.eth.send_raw_transaction(signed.raw_transaction), "contract")
    receipt = call_chain(lambda: w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120), "contract")
    if receipt["status"] != 1 or not receipt.get("contractAddress"):
        raise ChainError("the anchor contract's deployment reverted", field="contract")
    return Deployment(chain_id, str(receipt["contractAddress"]), _hex(bytes(tx_hash)),
                      int(receipt["blockNumber"]))
