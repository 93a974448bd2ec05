"""The proof bundle: one strict format, parsed shape first (docs/proof-bundle.md).

A bundle is a JSON object a citizen can hand to anyone. :meth:`ProofBundle.from_json`
enforces the written format exactly and refuses anything else with a
:class:`BundleRefused` naming the member; only then does a verifier hash anything. Each
policy is one a JavaScript verifier built on ``JSON.parse`` and viem/ethers can follow
exactly: integers are JSON numbers that are safe integers (``1.0`` is ``1`` to
``JSON.parse``, so it is ``1`` here too), hex is ``0x`` and an exact number of digits with
nothing around it, addresses are lower-case or EIP-55 mixed case, unknown members and
duplicate names are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from ledger.errors import BundleRefused, InvalidInput
from ledger.hashing import parse_hex32
from ledger.json_input import parse_json
from ledger.leaf import LEAF_ENCODING, LeafValues, leaf_values_from_json

BUNDLE_FORMAT = "carbon-ledger-proof-v1"
#: A bundle is ~2 KB; a proof of a 2**64-leaf tree is 64 items.
MAX_BUNDLE_BYTES = 64 * 1024
MAX_PROOF_ITEMS = 64
MAX_SAFE_INTEGER = 2**53 - 1

REQUIRED = ("format", "entryId", "values", "leafEncoding", "proof", "root", "batchId",
            "chainId", "contract", "txHash", "blockNumber")
#: Informational members the operator adds; a verifier never relies on them.
OPTIONAL = ("status", "confirmations")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def safe_integer(value: Any, name: str, *, minimum: int = 0) -> int:
    """A JSON number that is an integer ``minimum`` … 2**53 - 1 (``2.0`` counts as 2)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int or not minimum <= value <= MAX_SAFE_INTEGER:
        raise BundleRefused(f"expected an integer from {minimum} to 2**53 - 1 (a JSON number), "
                            f"got {_show(value)}", field=name)
    return value


def bytes32(value: Any, name: str) -> bytes:
    try:
        return parse_hex32(value, field=name)
    except InvalidInput as exc:
        raise BundleRefused(exc.message, field=name) from None


def address(value: Any, name: str) -> str:
    """An address, lower-case or EIP-55 checksummed; returned checksummed."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise BundleRefused(f"expected 0x and 40 hex digits, got {_show(value)}", field=name)
    checksummed = to_checksum_address(value)
    if value != value.lower() and value != checksummed:
        raise BundleRefused(f"{value} is mixed case but not its EIP-55 checksum ({checksummed})",
                            field=name)
    return checksummed


@dataclass(frozen=True)
class ProofBundle:
    entry_id: bytes
    values: LeafValues
    proof: tuple[bytes, ...]
    root: bytes
    batch_id: int
    chain_id: int
    contract: str  # EIP-55
    tx_hash: bytes
    block_number: int
    status: str | None = None
    confirmations: int | None = None

    @classmethod
    def from_bytes(cls, raw: bytes) -> ProofBundle:
        """Parse and check a bundle file's bytes (size, depth, strict JSON first)."""
        try:
            data = parse_json(raw, field="bundle", max_bytes=MAX_BUNDLE_BYTES, unique_keys=True)
        except InvalidInput as exc:
            raise BundleRefused(exc.message, field="bundle", check="parse") from None
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> ProofBundle:
        if not isinstance(data, dict):
            raise BundleRefused("a bundle is a JSON object", field="bundle")
        unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise BundleRefused(f"unknown member {_show(unknown[0])} (the format has no other "
                                "members)", field=unknown[0][:64])
        missing = [name for name in REQUIRED if name not in data]
        if missing:
            raise BundleRefused(f"missing member {missing[0]!r}", field=missing[0])
        if data["format"] != BUNDLE_FORMAT:
            raise BundleRefused(f"unknown format {_show(data['format'])}: this verifier reads "
                                f"{BUNDLE_FORMAT!r}", field="format")
        if data["leafEncoding"] != list(LEAF_ENCODING):
            raise BundleRefused(f"leafEncoding must be {list(LEAF_ENCODING)}", field="leafEncoding")
        try:
            values = leaf_values_from_json(data["values"], strings_only=True)
        except InvalidInput as exc:
            raise BundleRefused(exc.message, field=exc.field) from None
        entry_id = bytes32(data["entryId"], "entryId")
        if entry_id != values.entry_id:
            raise BundleRefused(f"entryId {data['entryId']} is not the leaf's own id "
                                f"0x{values.entry_id.hex()} (values[0])", field="entryId")
        items = data["proof"]
        if not isinstance(items, list) or len(items) > MAX_PROOF_ITEMS:
            raise BundleRefused(f"expected an array of at most {MAX_PROOF_ITEMS} hashes",
                                field="proof")
        proof = tuple(bytes32(item, f"proof[{i}]") for i, item in enumerate(items))
        status, confirmations = data.get("status"), data.get("confirmations")
        if status is not None and status != "anchored":
            raise BundleRefused("status, when given, is 'anchored'", field="status")
        return cls(
            entry_id=entry_id, values=values, proof=proof,
            root=bytes32(data["root"], "root"),
            batch_id=safe_integer(data["batchId"], "batchId", minimum=1),
            chain_id=safe_integer(data["chainId"], "chainId", minimum=1),
            contract=address(data["contract"], "contract"),
            tx_hash=bytes32(data["txHash"], "txHash"),
            block_number=safe_integer(data["blockNumber"], "blockNumber"),
            status=status,
            confirmations=None if confirmations is None
            else safe_integer(confirmations, "confirmations"))

    def to_json(self) -> dict[str, Any]:
        """The bundle as the ledger writes it (lower-case hex, the contract EIP-55)."""
        out: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "entryId": "0x" + self.entry_id.hex(),
            "values": self.values.to_json(),
            "leafEncoding": list(LEAF_ENCODING),
            "proof": ["0x" + p.hex() for p in self.proof],
            "root": "0x" + self.root.hex(),
            "batchId": self.batch_id,
            "chainId": self.chain_id,
            "contract": self.contract,
            "txHash": "0x" + self.tx_hash.hex(),
            "blockNumber": self.block_number,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.confirmations is not None:
            out["confirmations"] = self.confirmations
        return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
