"""Checking a proof bundle against the chain and a trust root obtained elsewhere.

The trust root (:class:`TrustRoot`: chain id and anchor contract) never comes from the
bundle: anyone can deploy the same contract and anchor a tree holding a forged entry, so
the chain and contract a bundle names are claims checked against the pin, never the
anchor of trust. :func:`verify_bundle` reads top to bottom, one check after another, and
raises one :class:`VerificationError` whose ``check`` names the step that failed:

``trust``   the bundle names another chain or contract than the pinned ledger
``node``    the endpoint serves another chain, or is not reading the pinned contract
``fold``    the leaf values and proof do not fold to the bundle's root
``batch``   the pinned contract has no such batch, or anchored another root for it
``transaction``  the anchoring transaction is missing, reverted, sent elsewhere, in
            another block, or did not anchor this batch
``contract-verify``  the contract's own ``verify`` refuses the proof
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import merkle
from ledger.anchoring import ChainReader
from ledger.bundle import ProofBundle
from ledger.errors import VerificationError


@dataclass(frozen=True)
class TrustRoot:
    """The ledger a verifier trusts: pinned once, from outside any bundle."""

    chain_id: int
    contract: str  # EIP-55
    source: str  # how it was pinned, for the verdict line ("descriptor https://…")

    def same_contract(self, address: str) -> bool:
        return address.lower() == self.contract.lower()


@dataclass(frozen=True)
class Verdict:
    entry_id: str
    batch_id: int
    root: str
    tx_hash: str
    block_number: int
    chain_id: int
    contract: str
    pinned_by: str
    confirmations: int

    def line(self) -> str:
        return (f"OK: entry {self.entry_id} is in batch {self.batch_id} (root {self.root}) of "
                f"the ledger at {self.contract} on chain {self.chain_id} (pinned by "
                f"{self.pinned_by}), anchored by tx {self.tx_hash} in block "
                f"{self.block_number}, {self.confirmations} confirmation(s)")


def _fail(message: str, field: str, check: str) -> VerificationError:
    return VerificationError(message, field=field, check=check)


def check_claims_against_pin(bundle: ProofBundle, trusted: TrustRoot) -> None:
    """The bundle must name the pinned ledger (checked before anything is read)."""
    if bundle.chain_id != trusted.chain_id:
        raise _fail(f"the bundle names chain {bundle.chain_id}, the pinned ledger is on chain "
                    f"{trusted.chain_id}", "chainId", "trust")
    if not trusted.same_contract(bundle.contract):
        raise _fail(f"the bundle names contract {bundle.contract}, the pinned ledger's contract "
                    f"is {trusted.contract}", "contract", "trust")


def verify_bundle(bundle: ProofBundle, reader: ChainReader, *, trusted: TrustRoot) -> Verdict:
    """Check ``bundle`` against the pinned ledger, reading the chain through ``reader``
    (which must read the pinned contract); raise at the first claim that fails."""
    check_claims_against_pin(bundle, trusted)
    if reader.chain_id != trusted.chain_id:
        raise _fail(f"the endpoint serves chain {reader.chain_id}, the pinned ledger is on "
                    f"chain {trusted.chain_id}", "chainId", "node")
    if not trusted.same_contract(reader.contract_address):
        raise _fail(f"the reader reads {reader.contract_address}, not the pinned contract "
                    f"{trusted.contract}", "contract", "node")

    leaf = bundle.values.leaf_hash()
    computed = merkle.root_from_proof(leaf, list(bundle.proof))
    if computed != bundle.root:
        raise _fail(f"the values and proof fold to 0x{computed.hex()}, but the bundle claims "
                    f"root 0x{bundle.root.hex()}", "values", "fold")

    batch_id = bundle.batch_id
    anchored = reader.anchored_root(batch_id)
    if anchored is None:
        raise _fail(f"the pinned contract has no batch {batch_id}", "batchId", "batch")
    if anchored != computed:
        raise _fail(f"batch {batch_id} is anchored with root 0x{anchored.hex()}, not "
                    f"0x{computed.hex()}", "root", "batch")

    tx = "0x" + bundle.tx_hash.hex()
    receipt = reader.receipt(bundle.tx_hash)
    if receipt is None:
        raise _fail(f"no transaction {tx} on chain {trusted.chain_id}", "txHash", "transaction")
    if not receipt.succeeded:
        raise _fail(f"transaction {tx} reverted", "txHash", "transaction")
    if not trusted.same_contract(receipt.to or ""):
        raise _fail(f"transaction {tx} was sent to {receipt.to}, not the pinned contract "
                    f"{trusted.contract}", "txHash", "transaction")
    if receipt.block_number != bundle.block_number:
        raise _fail(f"transaction {tx} is in block {receipt.block_number}, not "
                    f"{bundle.block_number}", "blockNumber", "transaction")
    if not any(e.batch_id == batch_id and e.root == computed
               for e in reader.anchor_events(bundle.tx_hash)):
        raise _fail(f"transaction {tx} did not anchor batch {batch_id}", "txHash", "transaction")
    if not reader.verify_on_chain(batch_id, leaf, list(bundle.proof)):
        raise _fail("the contract's verify() rejects the proof", "proof", "contract-verify")
    return Verdict("0x" + bundle.entry_id.hex(), batch_id, "0x" + computed.hex(), tx,
                   bundle.block_number, trusted.chain_id, trusted.contract, trusted.source,
                   reader.confirmations(bundle.block_number))
