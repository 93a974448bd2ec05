"""The anchoring client: one implementation of the ledger's chain protocol over web3.

Works the same over an in-process eth-tester chain, a managed anvil node and any EVM
JSON-RPC endpoint; what differs (how to fund a dev key, whether we may mine blocks to
reach confirmations) is told by :class:`ChainKind`.
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, TransactionNotFound, Web3Exception

from chain.compiler import load_artifact
from ledger.anchoring import AnchoredBatch, AnchorEvent, PreparedAnchor, TxReceipt
from ledger.errors import ChainError

ANCHOR_GAS = 200_000


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
                 *, max_fee_per_gas: int | None = None) -> None:
        self.w3 = w3
        self.kind = kind
        self._signer = signer
        self.max_fee_per_gas = max_fee_per_gas  # the ceiling this operator pays, wei per gas
        self._contract = w3.eth.contract(address=Web3.to_checksum_address(address),
                                         abi=load_artifact()["abi"])
        self._chain_id = _call(lambda: w3.eth.chain_id, "chain id")

    def reader(self) -> EvmAnchor:
        """The same contract seen read-only, as an outside verifier sees it: no key, and no
        dev-chain favours (it never mines to reach confirmations)."""
        return EvmAnchor(self.w3, ChainKind.RPC, self.contract_address, signer=None)

    def with_fee_ceiling(self, max_fee_per_gas: int | None) -> EvmAnchor:
        self.max_fee_per_gas = max_fee_per_gas
        return self

    # -- ChainReader ---------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def contract_address(self) -> str:
        return str(self._contract.address)

    def has_code(self) -> bool:
        code = _call(lambda: self.w3.eth.get_code(self._contract.address), "contract code")
        return len(code) > 0

    def latest_batch_id(self) -> int:
        return int(_call(lambda: self._contract.functions.latestBatchId().call(), "latestBatchId"))

    def anchored_batch(self, batch_id: int) -> AnchoredBatch | None:
        if batch_id < 1 or batch_id > self.latest_batch_id():
            return None
        root, content_hash, leaf_count, _at, block = _call(
            lambda: self._contract.functions.batch(batch_id).call(), f"batch {batch_id}")
        return AnchoredBatch(batch_id, bytes(root), int(leaf_count), bytes(content_hash), int(block))

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        def read() -> Any:
            try:
                return self.w3.eth.get_transaction_receipt(_hex(tx_hash))  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
        r = _call(read, f"receipt {_hex(tx_hash)}")
        if r is None:
            return None
        return TxReceipt(bytes(r["transactionHash"]), int(r["blockNumber"]), r["status"] == 1,
                         int(r["gasUsed"]), r.get("to"), bytes(r["blockHash"]))

    def is_canonical(self, receipt: TxReceipt) -> bool:
        """The receipt's transaction is still where the receipt says (a reorg drops it or
        moves it: then the block at that height has another hash, or no receipt is left)."""
        current = self.receipt(receipt.tx_hash)
        if current is None or current.block_hash != receipt.block_hash:
            return False
        block = _call(lambda: self.w3.eth.get_block(receipt.block_number), "block")
        return block is not None and bytes(block["hash"]) == receipt.block_hash

    def anchor_events(self, tx_hash: bytes) -> list[AnchorEvent]:
        r = _call(lambda: self.w3.eth.get_transaction_receipt(_hex(tx_hash)),  # type: ignore[arg-type]
                  f"receipt {_hex(tx_hash)}")
        events = []
        for log in r["logs"]:
            if Web3.to_checksum_address(log["address"]) != self._contract.address:
                continue
            ev = self._contract.events.BatchAnchored().process_log(log)
            events.append(AnchorEvent(int(ev["args"]["batchId"]), bytes(ev["args"]["root"]),
                                      int(ev["args"]["leafCount"]), bytes(ev["args"]["contentHash"])))
        return events

    def head_block(self) -> int:
        return int(_call(lambda: self.w3.eth.block_number, "block number"))

    def confirmations(self, block_number: int) -> int:
        return max(0, self.head_block() - block_number + 1)

    def verify_on_chain(self, batch_id: int, leaf: bytes, proof: list[bytes]) -> bool:
        return bool(_call(lambda: self._contract.functions.verify(batch_id, leaf, proof).call(),
                          "verify"))

    # -- Anchor --------------------------------------------------------------------

    def prepare_anchor(self, *, batch_id: int, root: bytes, leaf_count: int,
                       content_hash: bytes, replacing: PreparedAnchor | None = None
                       ) -> PreparedAnchor:
        signer = self._require_signer()
        call = self._contract.functions.anchor(batch_id, root, leaf_count, content_hash)
        try:  # simulate first: a contract rejection comes back as its named custom error
            call.call({"from": signer.address})
        except Exception as exc:  # noqa: BLE001 - providers raise different revert types
            data = revert_data(exc)
            if data is None:
                raise ChainError(f"simulating anchor of batch {batch_id}: {exc}",
                                 field="chain") from exc
            raise ChainError(f"anchor of batch {batch_id} rejected: "
                             f"{decode_custom_error(self._contract.abi, data)}",
                             field="batchId") from exc
        if replacing is not None:  # same nonce, so at most one of the two can be mined
            nonce = replacing.nonce
            max_fee, tip = self._fees(floor=(replacing.max_fee * 9 // 8 + 1,
                                             replacing.tip * 9 // 8 + 1))
        else:
            # The nonce the chain expects next, counting our own pending transactions: a
            # restarted sealer continues after what it sent; the lease keeps it the only one.
            nonce = _call(lambda: self.w3.eth.get_transaction_count(signer.address, "pending"),
                          "nonce")
            max_fee, tip = self._fees()
        params: Any = {"from": signer.address, "nonce": nonce, "gas": ANCHOR_GAS,
                       "chainId": self._chain_id, "maxFeePerGas": max_fee,
                       "maxPriorityFeePerGas": tip}
        tx: Any = call.build_transaction(params)
        signed = signer.sign_transaction(tx)
        return PreparedAnchor(bytes(signed.hash), bytes(signed.raw_transaction), nonce,
                              max_fee, tip)

    def broadcast(self, raw: bytes) -> None:
        """Send a signed transaction; sending the same bytes again is harmless, so
        transport failures are retried."""
        try:
            _call(lambda: self.w3.eth.send_raw_transaction(raw), "broadcast")
        except ChainError as exc:
            message = str(exc).lower()
            if any(s in message for s in ("already known", "nonce too low", "already imported")):
                return  # in the pool, or its nonce already mined: the receipt search decides
            raise ChainError(f"broadcasting anchor: {exc}", field="anchor") from exc

    def find_anchor_receipt(self, batch_id: int) -> TxReceipt | None:
        anchored = self.anchored_batch(batch_id)
        if anchored is None:
            return None
        logs = _call(lambda: self._contract.events.BatchAnchored().get_logs(
            from_block=anchored.block_number, to_block=anchored.block_number,
            argument_filters={"batchId": batch_id}), "BatchAnchored logs")
        for log in logs:
            receipt = self.receipt(bytes(log["transactionHash"]))
            if receipt is not None and receipt.succeeded:
                return receipt
        return None

    def is_pending(self, tx_hash: bytes) -> bool:
        def read() -> Any:
            try:
                return self.w3.eth.get_transaction(_hex(tx_hash))  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
        tx = _call(read, "transaction")
        return tx is not None and tx.get("blockNumber") is None

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

    def wait_for_confirmations(self, block_number: int, *, confirmations: int,
                               timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (seen := self.confirmations(block_number)) < confirmations:
            if self.kind.is_dev:
                self.mine(confirmations - seen)
                continue
            if time.monotonic() > deadline:
                raise ChainError(f"block {block_number} has {seen} of {confirmations} "
                                 "confirmations", field="confirmations")
            time.sleep(1.0)
        return seen

    # -- helpers -------------------------------------------------------------------

    def mine(self, blocks: int) -> None:
        """Mine empty blocks; only on dev chains, to reach confirmations at once."""
        if self.kind is ChainKind.TESTER:
            self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]
        elif self.kind is ChainKind.ANVIL:
            for _ in range(blocks):
                self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        else:
            raise ChainError("cannot mine on a remote chain", field="chain")

    def _require_signer(self) -> LocalAccount:
        if self._signer is None:
            raise ChainError("no anchoring key configured", field="anchor_key")
        return self._signer

    def _fees(self, floor: tuple[int, int] = (0, 0)) -> tuple[int, int]:
        """EIP-1559 (maxFeePerGas, maxPriorityFeePerGas): room for the base fee to double,
        plus the node's suggested tip; never below ``floor``, never above the ceiling."""
        block = _call(lambda: self.w3.eth.get_block("latest"), "latest block")
        base = int(block.get("baseFeePerGas") or 0)
        tip = max(int(_call(lambda: self.w3.eth.max_priority_fee, "priority fee")), floor[1])
        max_fee = max(2 * base + tip, floor[0])
        ceiling = self.max_fee_per_gas
        if ceiling is not None and max_fee > ceiling:
            if base + tip > ceiling:
                raise ChainError(f"the base fee is {base / 1e9:.3f} gwei: this anchor would need "
                                 f"{(base + tip) / 1e9:.3f} gwei per gas, above the ceiling of "
                                 f"{ceiling / 1e9:.3f} (CARBON_LEDGER_MAX_FEE_GWEI); "
                                 "it waits for fees to fall", field="max_fee_per_gas")
            max_fee, tip = ceiling, min(tip, ceiling - base)
        return max_fee, tip


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
    chain_id = _call(lambda: w3.eth.chain_id, "chain id")
    nonce = _call(lambda: w3.eth.get_transaction_count(signer.address, "pending"), "nonce")
    tx = factory.constructor(admin or signer.address, signer.address).build_transaction(
        {"from": signer.address, "nonce": nonce, "chainId": chain_id})
    signed = signer.sign_transaction(tx)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    except (Web3Exception, OSError, ValueError) as exc:
        raise ChainError(f"deploying the anchor contract: {exc}", field="contract") from exc
    if receipt["status"] != 1 or not receipt.get("contractAddress"):
        raise ChainError("the anchor contract's deployment reverted", field="contract")
    return Deployment(chain_id, str(receipt["contractAddress"]), _hex(bytes(tx_hash)),
                      int(receipt["blockNumber"]))


def new_signer(private_key: str | bytes | None = None) -> LocalAccount:
    return Account.from_key(private_key) if private_key else Account.create()


RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds between attempts: ~7.7 s in all


def _call(fn: Any, what: str, delays: tuple[float, ...] | None = None) -> Any:
    """Run one chain call, wrapping web3's and the transport's errors in ChainError.

    Transport failures (connection refused or reset, a timeout, a 5xx from the node: all
    ``OSError``s from requests) are retried with backoff; a node's answer that is an error
    (a revert, a rejected transaction) is not, since asking again gives the same answer.
    Every call here is a read or an idempotent send of signed bytes, so a retry never
    does anything twice."""
    for delay in (*(RETRY_DELAYS if delays is None else delays), None):
        try:
            return fn()
        except ContractCustomError as exc:
            raise ChainError(f"{what}: reverted ({exc.data})", field=what) from exc
        except OSError as exc:
            if delay is None:
                raise ChainError(f"{what}: the node is unreachable ({exc})", field=what) from exc
            time.sleep(delay)
        except (Web3Exception, ValueError) as exc:
            raise ChainError(f"{what}: {exc}", field=what) from exc
    raise AssertionError("unreachable")
