"""The anchoring client: one implementation of the ledger's chain protocol over web3.

Works the same over an in-process eth-tester chain, a managed anvil node and any EVM
JSON-RPC endpoint; what differs (how to fund a dev key, whether we may mine blocks to
reach confirmations) is told by :class:`ChainKind`. Transport failures (refused,
timed out, 5xx) surface as :class:`~ledger.anchoring.ChainUnavailable`, so callers can
tell "try again later" from "the chain said no".
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    BlockNotFound,
    ContractCustomError,
    MismatchedABI,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
)

from chain.compiler import load_artifact
from chain.fees import bump, price
from ledger.anchoring import AccountNonces, AnchorEvent, PreparedAnchor, TxReceipt
from ledger.errors import AnchorMismatch, ChainError, ChainUnavailable, FeeTooLow

ANCHOR_GAS = 200_000
TRANSPORT_ERRORS = (requests.RequestException, ProviderConnectionError, TimeExhausted, OSError)
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
        return int(self._view(lambda: self._contract.functions.latestBatchId().call(),
                              "latestBatchId"))

    def anchored_root(self, batch_id: int) -> bytes | None:
        if batch_id < 1 or batch_id > self.latest_batch_id():
            return None
        return bytes(self._view(lambda: self._contract.functions.batchRoot(batch_id).call(),
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
        r = call_chain(lambda: self.w3.eth.get_transaction_receipt(_hex(tx_hash)),  # type: ignore[arg-type]
                  f"receipt {_hex(tx_hash)}")
        anchored = self._contract.events.BatchAnchored()
        topic = bytes(HexBytes(anchored.topic))
        events = []
        for log in r["logs"]:
            # Only this contract's BatchAnchored logs: the same transaction may carry
            # another event of the contract (RoleGranted, say), which is not an anchor.
            if (Web3.to_checksum_address(log["address"]) != self._contract.address
                    or not log["topics"] or bytes(log["topics"][0]) != topic):
                continue
            try:
                ev = anchored.process_log(log)
            except (MismatchedABI, ValueError):
                continue
            events.append(AnchorEvent(int(ev["args"]["batchId"]), bytes(ev["args"]["root"]),
                                      int(ev["args"]["leafCount"]), bytes(ev["args"]["contentHash"])))
        return events

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
        return bool(self._view(lambda: self._contract.functions.verify(batch_id, leaf, proof).call(),
                               "verify"))

    # -- Anchor --------------------------------------------------------------------

    def prepare_anchor(self, *, batch_id: int, root: bytes, leaf_count: int,
                       content_hash: bytes, nonce: int | None = None,
                       replacing: bytes | None = None,
                       max_fee_ceiling: int | None = None) -> PreparedAnchor:
        signer = self._require_signer()
        call = self._contract.functions.anchor(batch_id, root, leaf_count, content_hash)
        self._simulate(call, batch_id, signer.address)
        previous = None
        if replacing is not None:
            old = TypedTransaction.from_bytes(HexBytes(replacing)).as_dict()
            previous = (int(old["maxFeePerGas"]), int(old["maxPriorityFeePerGas"]))
            nonce = int(old["nonce"])
        if nonce is None:
            nonce = self.nonces().pending
        max_fee, tip = price(*self._fee_quote(), ceiling=max_fee_ceiling, replacing=previous)
        params: Any = {"from": signer.address, "nonce": nonce, "gas": ANCHOR_GAS,
                       "chainId": self._chain_id, "maxFeePerGas": max_fee,
                       "maxPriorityFeePerGas": tip}
        tx: Any = call_chain(lambda: call.build_transaction(params), "anchor transaction")
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
        logs = call_chain(lambda: self._contract.events.BatchAnchored().get_logs(
            from_block=self._from_block, to_block="latest",
            argument_filters={"batchId": batch_id}), "BatchAnchored logs")
        for log in logs:
            receipt = self.receipt(bytes(log["transactionHash"]))
            if receipt is not None and receipt.succeeded:
                return receipt
        return None

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

    def mine(self, blocks: int) -> None:
        """Mine empty blocks; only on dev chains, to reach confirmations at once."""
        if self.kind is ChainKind.TESTER:
            self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]
        elif self.kind is ChainKind.ANVIL:
            for _ in range(blocks):
                call_chain(lambda: self.w3.provider.make_request("evm_mine", []), "evm_mine")  # type: ignore[arg-type]
        else:
            raise ChainError("cannot mine on a remote chain", field="chain")

    def _view(self, fn: Any, what: str) -> Any:
        """A contract read; one that finds no code says so instead of failing to decode."""
        try:
            return call_chain(fn, what)
        except ChainError as exc:
            if isinstance(exc.__cause__, BadFunctionCallOutput):
                self.check_contract()
            raise

    def _simulate(self, call: Any, batch_id: int, sender: str) -> None:
        """Run the anchor as a call first: a contract rejection comes back named."""
        try:
            call.call({"from": sender})
        except TRANSPORT_ERRORS as exc:
            raise ChainUnavailable(f"simulating anchor of batch {batch_id}: {exc}",
                                   field="chain") from exc
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc)
            if data is None:
                self.check_contract()
                raise ChainError(f"simulating anchor of batch {batch_id}: {exc}",
                                 field="chain") from exc
            raise ChainError(f"anchor of batch {batch_id} rejected: "
                             f"{decode_custom_error(self._contract.abi, data)}",
                             field="batchId") from exc

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
_REVERT_BYTES = re.compile(r"execution reverted: (b(['\"]).*\2)$", re.DOTALL)


def revert_data(exc: BaseException) -> str | None:
    """The 0x-hex revert data of a failed call, from web3 or from eth-tester."""
    if isinstance(exc, ContractCustomError) and isinstance(exc.data, str):
        return exc.data
    text = str(exc.args[0]) if exc.args else ""
    match = _REVERT_BYTES.search(text)  # eth-tester: "execution reverted: b'...'"
    if match:
        return "0x" + ast.literal_eval(match.group(1)).hex()
    return None


def decode_custom_error(abi: Any, data: str) -> str:
    """Name a custom error from its revert data, e.g. ``BatchIdGap(5, 3)``."""
    from eth_abi import decode
    from eth_utils import function_signature_to_4byte_selector

    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
        if raw[:4] == selector:
            args = decode(types, raw[4:])
            return f"{item['name']}({', '.join(str(a) for a in args)})"
    return data


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


def call_chain(fn: Any, what: str) -> Any:
    """Run one chain request, wrapping web3's errors in ChainError and the transport's
    (after the provider's own retries) in ChainUnavailable."""
    try:
        return fn()
    except ContractCustomError as exc:
        raise ChainError(f"{what}: reverted ({exc.data})", field=what) from exc
    except TRANSPORT_ERRORS as exc:
        raise ChainUnavailable(f"the node did not answer ({what}): {_transport_reason(exc)}",
                               field="chain") from exc
    except (Web3Exception, ValueError) as exc:
        raise ChainError(f"{what}: {exc}", field=what) from exc


def _transport_reason(exc: BaseException) -> str:
    """The short cause of a transport failure (requests nests it deeply)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for reason in ("Connection refused", "Connection reset", "Remote end closed",
                   "Name or service not known"):
        if reason in text:
            return reason.lower()
    return text[:200]
