"""The anchoring contract on a real EVM (eth-tester): strict ids, custom errors, verify."""

from __future__ import annotations

import json
import os

import pytest
from eth_account import Account

from chain.client import EvmAnchor, decode_custom_error, deploy_contract, revert_data
from chain.compiler import ARTIFACT_PATH, collect_sources, compile_contract, source_hash
from chain.nodes import in_process_web3 as new_tester_chain
from ledger import merkle
from ledger.anchor_audit import anchored_batch
from ledger.anchoring import AnchoredBatch
from ledger.errors import ChainError
from ledger.hashing import keccak


def anchor_call(anchor: EvmAnchor, batch_id: int, root: bytes = b"\x11" * 32, count: int = 3):
    return anchor._contract.functions.anchor(batch_id, root, count, b"\x22" * 32)


def send(anchor: EvmAnchor, batch_id: int, root: bytes = b"\x11" * 32, count: int = 3) -> None:
    prepared = anchor.prepare_anchor(batch_id=batch_id, root=root, leaf_count=count,
                                     content_hash=b"\x22" * 32)
    anchor.broadcast(prepared.raw)
    assert anchor.wait_for_receipt(prepared.tx_hash, timeout=10).succeeded


def rejection(anchor: EvmAnchor, batch_id: int, root: bytes = b"\x11" * 32, count: int = 3,
              sender: str | None = None) -> str:
    with pytest.raises(Exception) as info:  # noqa: B017 - the revert's type varies by provider
        anchor_call(anchor, batch_id, root, count).call({"from": sender or anchor._signer.address})
    data = revert_data(info.value)
    assert data is not None, f"not a revert: {info.value!r}"
    return decode_custom_error(anchor._contract.abi, data)


def test_batches_are_anchored_in_strict_id_order(anchor: EvmAnchor) -> None:
    assert anchor.latest_batch_id() == 0
    send(anchor, 1)
    send(anchor, 2, root=b"\x33" * 32)
    assert anchor.latest_batch_id() == 2
    assert anchor.anchored_root(2) == b"\x33" * 32
    assert anchor.anchored_root(3) is None


def test_gap_replay_zero_root_and_empty_batch_are_rejected_with_custom_errors(
        anchor: EvmAnchor) -> None:
    assert rejection(anchor, 2) == "BatchIdGap(2, 1)"
    assert rejection(anchor, 1, root=b"\0" * 32) == "ZeroRoot(1)"
    assert rejection(anchor, 1, count=0) == "EmptyBatch(1)"
    send(anchor, 1)
    assert rejection(anchor, 1) == "BatchAlreadyAnchored(1)"


def test_prepare_anchor_reports_the_contracts_reason(anchor: EvmAnchor) -> None:
    with pytest.raises(ChainError, match=r"BatchIdGap\(5, 1\)"):
        anchor.prepare_anchor(batch_id=5, root=b"\x11" * 32, leaf_count=1, content_hash=b"\0" * 32)


def test_only_the_anchorer_role_may_anchor(anchor: EvmAnchor) -> None:
    stranger = anchor.w3.eth.accounts[1]
    assert rejection(anchor, 1, sender=stranger).startswith("AccessControlUnauthorizedAccount")


@pytest.mark.parametrize("view", ["batchRoot", "verify"])
def test_reading_an_unknown_batch_reverts_with_unknown_batch(anchor: EvmAnchor, view: str) -> None:
    send(anchor, 1)
    args = {"batchRoot": (7,), "verify": (7, b"\x11" * 32, [])}[view]
    for batch_id in (0, 7):
        with pytest.raises(Exception) as info:  # noqa: B017
            getattr(anchor._contract.functions, view)(batch_id, *args[1:]).call()
        assert decode_custom_error(anchor._contract.abi,
                                   revert_data(info.value)) == f"UnknownBatch({batch_id})"


def test_on_chain_verify_accepts_our_proofs_and_rejects_others(anchor: EvmAnchor) -> None:
    leaves = sorted(os.urandom(32) for _ in range(9))
    tree = merkle.build_tree(leaves)
    send(anchor, 1, root=merkle.root(tree), count=9)
    for leaf in leaves:
        proof = merkle.inclusion_proof(tree, merkle.find_leaf(tree, leaf))
        assert anchor.verify_on_chain(1, leaf, proof)
    proof = merkle.inclusion_proof(tree, merkle.find_leaf(tree, leaves[0]))
    assert not anchor.verify_on_chain(1, os.urandom(32), proof)
    assert not anchor.verify_on_chain(1, leaves[0], proof[:-1])


def test_every_anchor_emits_one_event_with_its_values(anchor: EvmAnchor) -> None:
    prepared = anchor.prepare_anchor(batch_id=1, root=b"\x44" * 32, leaf_count=5,
                                     content_hash=b"\x55" * 32)
    anchor.broadcast(prepared.raw)
    anchor.wait_for_receipt(prepared.tx_hash, timeout=10)
    [event] = anchor.anchor_events(prepared.tx_hash)
    assert (event.batch_id, event.root, event.leaf_count, event.content_hash) == (
        1, b"\x44" * 32, 5, b"\x55" * 32)
    assert anchor.find_anchor_receipt(1).tx_hash == prepared.tx_hash


def test_the_batch_is_read_from_state_and_from_its_anchoring_event(anchor: EvmAnchor) -> None:
    send(anchor, 1, root=b"\x44" * 32, count=5)
    prepared = anchor.prepare_anchor(batch_id=2, root=b"\x66" * 32, leaf_count=2**40,
                                     content_hash=b"\x77" * 32)
    anchor.broadcast(prepared.raw)
    receipt = anchor.wait_for_receipt(prepared.tx_hash, timeout=10)
    anchor.mine(3)
    for look_first in (None, prepared.tx_hash, b"\x99" * 32):  # a wrong claim is looked past
        on_chain = anchored_batch(anchor.reader(), 2, look_first=look_first)
        assert on_chain == AnchoredBatch(2, b"\x66" * 32, 2**40, b"\x77" * 32, receipt)
    assert anchored_batch(anchor.reader(), 3) is None


def test_anchor_gas_is_one_root_whatever_the_batch_size(anchor: EvmAnchor) -> None:
    """The first anchor included, and whatever the leaf count (issue #19: at most 60,000)."""
    used = []
    for batch_id, count in enumerate((1, 10_000, 2**40), start=1):
        prepared = anchor.prepare_anchor(batch_id=batch_id, root=keccak(b"%d" % batch_id),
                                         leaf_count=count, content_hash=keccak(b"c"))
        anchor.broadcast(prepared.raw)
        used.append(anchor.wait_for_receipt(prepared.tx_hash, timeout=10).gas_used)
    assert max(used) <= 60_000, used
    assert max(used) - min(used) <= 100, used  # calldata bytes only: no storage by size


def test_committed_artifact_is_built_from_the_current_sources() -> None:
    artifact = json.loads(ARTIFACT_PATH.read_text())
    assert artifact["sourceHash"] == source_hash(collect_sources()), (
        "contracts changed: run `carbon-ledger compile` and commit the artifact")


def test_recompiling_gives_the_committed_bytecode() -> None:
    committed = json.loads(ARTIFACT_PATH.read_text())
    fresh = compile_contract()
    for key in ("abi", "bytecode", "deployedBytecode", "sourceHash", "settings"):
        assert fresh[key] == committed[key], f"artifact {key} is stale"


def test_deploy_grants_roles_to_the_given_accounts() -> None:
    w3 = new_tester_chain()
    signer = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": signer.address, "value": 10**18})
    deployment = deploy_contract(w3, signer)
    contract = w3.eth.contract(address=deployment.address,
                               abi=json.loads(ARTIFACT_PATH.read_text())["abi"])
    role = contract.functions.ANCHORER_ROLE().call()
    assert contract.functions.hasRole(role, signer.address).call()
    assert not contract.functions.hasRole(role, w3.eth.accounts[0]).call()
