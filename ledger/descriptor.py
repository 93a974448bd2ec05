"""The ledger descriptor: the small document that says which ledger a verifier trusts.

It names the chain, the anchor contract and the transaction that deployed it, the formats
the ledger serves and the operator's public keys (docs/ledger-descriptor.md). The
operator publishes it (``GET /v1/ledger``, ``carbon-ledger ledger descriptor``) and a
city publishes it out of band as well (its site, a gazette, a QR code), so a citizen can
compare. A verifier pins it once, after :func:`check_on_chain`: the chain must hold code
at the address and the named transaction must have created it, in the named block.
Endpoints in it are hints for finding the chain and the API, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.anchoring import ChainReader
from ledger.bundle import BUNDLE_FORMAT, address, bytes32, safe_integer
from ledger.errors import BundleRefused, DescriptorRefused, InvalidInput, NotFound
from ledger.json_input import parse_json
from ledger.store.models import ChainDeployment
from ledger.verification import TrustRoot

DESCRIPTOR_FORMAT = "carbon-ledger-descriptor-v1"
MAX_DESCRIPTOR_BYTES = 16 * 1024
LEAF_FORMAT = "oz-standard-v1"
_MEMBERS = {"format", "chainId", "contract", "deployment", "formats", "operatorKeys", "endpoints"}
_KEY_USES = ("receipts",)


@dataclass(frozen=True)
class LedgerDescriptor:
    chain_id: int
    contract: str
    deployment_tx: bytes
    deployment_block: int
    receipt_signers: tuple[str, ...]
    api_url: str | None = None
    rpc_urls: tuple[str, ...] = ()

    def trust_root(self, source: str) -> TrustRoot:
        return TrustRoot(self.chain_id, self.contract, source)

    def to_json(self) -> dict[str, Any]:
        endpoints: dict[str, Any] = {}
        if self.api_url:
            endpoints["api"] = self.api_url
        if self.rpc_urls:
            endpoints["rpc"] = list(self.rpc_urls)
        return {
            "format": DESCRIPTOR_FORMAT,
            "chainId": self.chain_id,
            "contract": self.contract,
            "deployment": {"txHash": "0x" + self.deployment_tx.hex(),
                           "blockNumber": self.deployment_block},
            "formats": {"proofBundle": [BUNDLE_FORMAT], "leaf": LEAF_FORMAT},
            "operatorKeys": [{"use": "receipts", "address": a} for a in self.receipt_signers],
            "endpoints": endpoints,
        }

    @classmethod
    def from_bytes(cls, raw: bytes) -> LedgerDescriptor:
        try:
            data = parse_json(raw, field="descriptor", max_bytes=MAX_DESCRIPTOR_BYTES,
                              max_depth=8, unique_keys=True)
        except InvalidInput as exc:
            raise DescriptorRefused(exc.message, field="descriptor") from None
        try:
            return cls.from_json(data)
        except BundleRefused as exc:  # the shared value checks name the member
            raise DescriptorRefused(exc.message, field=exc.field) from None

    @classmethod
    def from_json(cls, data: Any) -> LedgerDescriptor:
        if not isinstance(data, dict):
            raise DescriptorRefused("a descriptor is a JSON object", field="descriptor")
        unknown = sorted(set(data) - _MEMBERS)
        if unknown:
            raise DescriptorRefused(f"unknown member {unknown[0][:64]!r}", field=unknown[0][:64])
        if data.get("format") != DESCRIPTOR_FORMAT:
            raise DescriptorRefused(f"this verifier reads {DESCRIPTOR_FORMAT!r}", field="format")
        deployment = _object(data, "deployment")
        formats = _object(data, "formats")
        bundles = formats.get("proofBundle")
        if not isinstance(bundles, list) or BUNDLE_FORMAT not in bundles:
            raise DescriptorRefused(f"the ledger does not serve {BUNDLE_FORMAT!r}",
                                    field="formats.proofBundle")
        keys = data.get("operatorKeys")
        if not isinstance(keys, list) or not 1 <= len(keys) <= 16:
            raise DescriptorRefused("expected 1-16 operator keys", field="operatorKeys")
        signers = []
        for i, key in enumerate(keys):
            if not isinstance(key, dict) or set(key) != {"use", "address"} \
                    or key["use"] not in _KEY_USES:
                raise DescriptorRefused(f"expected {{'use': one of {_KEY_USES}, 'address'}}",
                                        field=f"operatorKeys[{i}]")
            signers.append(address(key["address"], f"operatorKeys[{i}].address"))
        endpoints = data.get("endpoints", {})
        if not isinstance(endpoints, dict) or set(endpoints) - {"api", "rpc"}:
            raise DescriptorRefused("endpoints has 'api' and 'rpc' only", field="endpoints")
        api_url = endpoints.get("api")
        rpc = endpoints.get("rpc", [])
        if api_url is not None and not _is_url(api_url):
            raise DescriptorRefused("expected an http(s) URL", field="endpoints.api")
        if not isinstance(rpc, list) or len(rpc) > 8 or not all(_is_url(u) for u in rpc):
            raise DescriptorRefused("expected at most 8 http(s) URLs", field="endpoints.rpc")
        return cls(
            chain_id=safe_integer(data.get("chainId"), "chainId", minimum=1),
            contract=address(data.get("contract"), "contract"),
            deployment_tx=bytes32(deployment.get("txHash"), "deployment.txHash"),
            deployment_block=safe_integer(deployment.get("blockNumber"), "deployment.blockNumber"),
            receipt_signers=tuple(signers), api_url=api_url, rpc_urls=tuple(rpc))


def check_on_chain(descriptor: LedgerDescriptor, reader: ChainReader) -> None:
    """Refuse a descriptor the chain contradicts (``reader`` reads its contract)."""
    if reader.chain_id != descriptor.chain_id:
        raise DescriptorRefused(f"the endpoint serves chain {reader.chain_id}, the descriptor "
                                f"names chain {descriptor.chain_id}", field="chainId", check="node")
    if not reader.has_code():
        raise DescriptorRefused(f"no contract code at {descriptor.contract} on chain "
                                f"{descriptor.chain_id}", field="contract")
    created = reader.created_contract(descriptor.deployment_tx)
    tx = "0x" + descriptor.deployment_tx.hex()
    if created is None:
        raise DescriptorRefused(f"transaction {tx} created no contract on chain "
                                f"{descriptor.chain_id}", field="deployment.txHash")
    made, block = created
    if made.lower() != descriptor.contract.lower():
        raise DescriptorRefused(f"transaction {tx} created {made}, not {descriptor.contract}",
                                field="deployment.txHash")
    if block != descriptor.deployment_block:
        raise DescriptorRefused(f"transaction {tx} is in block {block}, not "
                                f"{descriptor.deployment_block}", field="deployment.blockNumber")


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise DescriptorRefused(f"expected an object {name!r}", field=name)
    return value


def _is_url(value: Any) -> bool:
    return (isinstance(value, str) and len(value) <= 512
            and value.startswith(("http://", "https://")) and value.isprintable())


def descriptor_for(session: Session, *, receipt_signer: str, chain_id: int | None = None,
                   api_url: str | None = None, rpc_urls: list[str] | None = None
                   ) -> LedgerDescriptor:
    """This ledger's descriptor, from the deployment it recorded (on ``chain_id``, or the
    only chain it has deployed to)."""
    query = select(ChainDeployment)
    if chain_id is not None:
        query = query.where(ChainDeployment.chain_id == chain_id)
    deployments = list(session.scalars(query))
    if len(deployments) != 1:
        raise NotFound("no anchor contract deployed yet (run `carbon-ledger seal` or `serve` "
                       "once)" if not deployments else "deployed on several chains: name one",
                       field="chain_id")
    d = deployments[0]
    return LedgerDescriptor(chain_id=d.chain_id, contract=to_checksum_address(d.address),
                            deployment_tx=bytes.fromhex(d.tx_hash.removeprefix("0x")),
                            deployment_block=d.block_number, receipt_signers=(receipt_signer,),
                            api_url=api_url, rpc_urls=tuple(rpc_urls or ()))
