"""What an attacker does: deploy the same contract and anchor a tree holding a forged entry.

The forged bundle is perfectly self-consistent (its values fold to its root, its contract
anchored that root in its transaction), so only a verifier that pins the real ledger
refuses it. Used by the end-to-end trust test and by scripts/make_bundle_corpus.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import Web3

from chain.client import ChainKind, EvmAnchor, deploy_contract
from chain.connect import fund_dev_account
from ledger import merkle
from ledger.bundle import ProofBundle
from ledger.hashing import keccak
from ledger.leaf import LeafValues


@dataclass(frozen=True)
class Forgery:
    contract: str
    bundle: dict[str, Any]
    anchor_tx: bytes
    anchor_block: int


def forge_ledger(w3: Web3, template: LeafValues, *, points: int = 1_000_000,
                 batches: int = 1) -> Forgery:
    """A second deployment on ``w3``'s (anvil) chain whose batch ``batches`` holds an entry
    like ``template`` but crediting ``points`` (earlier batches hold filler)."""
    forger = Account.create()
    fund_dev_account(w3, ChainKind.ANVIL, forger.address)
    deployment = deploy_contract(w3, forger)
    anchor = EvmAnchor(w3, ChainKind.ANVIL, deployment.address, signer=forger)
    forged = dataclasses.replace(template, points=points, reduction_grams=points)
    for batch_id in range(1, batches + 1):
        fillers = [dataclasses.replace(template, entry_id=keccak(b"filler%d-%d" % (batch_id, i)))
                   for i in range(3)]
        values = fillers + ([forged] if batch_id == batches else [])
        leaves = sorted(v.leaf_hash() for v in values)
        tree = merkle.build_tree(leaves)
        root = merkle.root(tree)
        prepared = anchor.prepare_anchor(batch_id=batch_id, root=root, leaf_count=len(leaves),
                                         content_hash=keccak(b"".join(leaves)))
        anchor.broadcast(prepared.raw)
        receipt = anchor.wait_for_receipt(prepared.tx_hash, timeout=60)
    index = merkle.find_leaf(tree, forged.leaf_hash())
    assert index is not None
    bundle = ProofBundle(entry_id=forged.entry_id, values=forged,
                         proof=tuple(merkle.inclusion_proof(tree, index)), root=root,
                         batch_id=batches, chain_id=anchor.chain_id,
                         contract=anchor.contract_address, tx_hash=prepared.tx_hash,
                         block_number=receipt.block_number, status="anchored")
    return Forgery(anchor.contract_address, bundle.to_json(), prepared.tx_hash,
                   receipt.block_number)
