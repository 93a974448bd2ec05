"""Gas of the anchor contract on a real EVM: deploy, anchors, verify, month statements.

Deploys the compiled contract (the committed artifact, and with ``--against REV`` also the
artifact committed at git revision REV, side by side) on an in-process eth-tester chain
and on the pinned anvil, anchors batches of several sizes, and calls ``verify`` on proofs
20 and 1 deep (the roots it checks are folded from those proofs
and anchored first, so the calls return true), sent as transactions. Every figure is a
receipt's ``gasUsed``; inputs are fixed hashes, so runs repeat. A contract with month
statements (#20) also gets its statement anchors and credential revocations measured, and
one with campaigns (#21) its campaign publications and ranking anchors.

    .venv/bin/python scripts/gas_report.py                     # the current contract
    .venv/bin/python scripts/gas_report.py --against 02f907f   # and the contract before #19
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from web3 import Web3  # noqa: E402

from chain.compiler import ARTIFACT_PATH, PROJECT_ROOT, load_artifact  # noqa: E402
from chain.nodes import ManagedAnvil, anvil_binary, in_process_web3, rpc_web3  # noqa: E402
from ledger import merkle  # noqa: E402
from ledger.hashing import keccak  # noqa: E402

#: Proof depths of ``verify``: 20 as the issue asks (about a million leaves), and 1, where
#: calldata is too short for the EIP-7623 floor price to hide the cost of execution.
PROOF_DEPTHS = (20, 1)
#: Leaf counts of the later anchors: the gas must not depend on a batch's size.
LATER_SIZES = (1, 1_000, 10_000, 1_000_000, 2**40)


def artifact_at(rev: str) -> dict[str, Any]:
    """The artifact committed at git revision ``rev``."""
    path = ARTIFACT_PATH.relative_to(PROJECT_ROOT).as_posix()
    out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=PROJECT_ROOT, check=True,
                         capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def measure(w3: Web3, artifact: dict[str, Any]) -> dict[str, int]:
    """Gas used by each step on ``w3``, from the receipts."""
    sender = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deployed = w3.eth.wait_for_transaction_receipt(
        factory.constructor(sender, sender).transact({"from": sender}))
    assert deployed["status"] == 1, "deployment reverted"
    contract = w3.eth.contract(address=deployed["contractAddress"], abi=artifact["abi"])
    leaf = keccak(b"leaf")
    proofs = {depth: [keccak(b"sibling %d" % i) for i in range(depth)] for depth in PROOF_DEPTHS}
    roots = [merkle.root_from_proof(leaf, proof) for proof in proofs.values()]

    def anchor(batch_id: int, root: bytes, leaf_count: int) -> int:
        tx = contract.functions.anchor(batch_id, root, leaf_count, keccak(b"content %d" % batch_id))
        receipt = w3.eth.wait_for_transaction_receipt(tx.transact({"from": sender}))
        assert receipt["status"] == 1, f"anchor of batch {batch_id} reverted"
        return int(receipt["gasUsed"])

    figures = {"deploy": int(deployed["gasUsed"]), "first anchor": anchor(1, roots[0], 2**20)}
    for batch_id, size in enumerate(LATER_SIZES, start=2):
        root = roots[batch_id - 1] if batch_id <= len(roots) else keccak(b"root %d" % batch_id)
        figures[f"anchor #{batch_id}, {size:,} leaves"] = anchor(batch_id, root, size)
    for batch_id, (depth, proof) in enumerate(proofs.items(), start=1):
        call = contract.functions.verify(batch_id, leaf, proof)
        assert call.call() is True, "verify refused a proof of the anchored root"
        # Sent as a transaction, so that a receipt says what it cost (py-evm's
        # eth_estimateGas is off by thousands either way; anvil's equals the receipt's).
        sent = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        figures[f"verify, depth {depth}, as a transaction"] = int(sent["gasUsed"])
    if any(item.get("name") == "anchorStatement" for item in artifact["abi"]):
        figures.update(statement_figures(w3, contract, sender, latest_batch=len(LATER_SIZES) + 1))
    if any(item.get("name") == "publishCampaign" for item in artifact["abi"]):
        figures.update(campaign_figures(w3, contract, sender))
    return figures


def campaign_figures(w3: Web3, contract: Any, sender: str) -> dict[str, int]:
    """Campaigns (#21): pinning a campaign's rules hash before its start, and anchoring
    its ranking's root (a tree of any size costs one root)."""
    def sent(call: Any) -> int:
        receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt["status"] == 1, "a campaign transaction reverted"
        return int(receipt["gasUsed"])

    starts = int(w3.eth.get_block("latest")["timestamp"]) + 86_400
    figures = {}
    for n in (1, 2):
        key = keccak(b"campaign %d" % n)
        figures[f"publish campaign #{n}"] = sent(contract.functions.publishCampaign(
            key, keccak(b"rules %d" % n), starts))
    for n, size in ((1, 100), (2, 1_000_000)):
        figures[f"ranking of campaign #{n}, {size:,} participants"] = sent(
            contract.functions.anchorRanking(keccak(b"campaign %d" % n), keccak(b"ranking %d" % n),
                                             size, keccak(b"content %d" % n)))
    return figures


def statement_figures(w3: Web3, contract: Any, sender: str, *, latest_batch: int) -> dict[str, int]:
    """Month statements (#20): the first, the months after (one a year's turn), and
    revocation bits (a new word, the same word, ten at once)."""
    def sent(call: Any) -> int:
        receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt["status"] == 1, "a statement transaction reverted"
        return int(receipt["gasUsed"])

    def statement(period: int, through: int) -> Any:
        return contract.functions.anchorStatement(period, keccak(b"statement %d" % period), 300,
                                                  through, keccak(b"content %d" % period))

    figures = {"first statement (2026-11)": sent(statement(202611, latest_batch - 1)),
               "statement 2026-12": sent(statement(202612, latest_batch)),
               "statement 2027-01 (the year's turn)": sent(statement(202701, latest_batch))}
    figures["revoke 1 credential (a new word)"] = sent(contract.functions.revokeCredentials([1]))
    figures["revoke 1 credential (the same word)"] = sent(contract.functions.revokeCredentials([2]))
    figures["revoke 10 credentials (one word)"] = sent(
        contract.functions.revokeCredentials(list(range(10, 20))))
    return figures


@contextmanager
def chain(name: str) -> Iterator[Web3]:
    if name == "eth-tester":
        yield in_process_web3()
        return
    with tempfile.TemporaryDirectory() as tmp, ManagedAnvil(Path(tmp)) as node:
        yield rpc_web3(node.url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", action="append", default=[],
                        help="also measure the artifact committed at this git revision")
    parser.add_argument("--chain", choices=("eth-tester", "anvil", "both"), default="both")
    args = parser.parse_args(argv)
    artifacts = {f"at {rev}": artifact_at(rev) for rev in args.against}
    artifacts["working tree"] = load_artifact()
    chains = ["eth-tester", "anvil"] if args.chain == "both" else [args.chain]
    if "anvil" in chains:
        print(f"anvil: {anvil_binary()}")
    for name in chains:
        columns = {}
        for label, artifact in artifacts.items():
            with chain(name) as w3:
                columns[label] = measure(w3, artifact)
        print(f"\n{name}")
        labels = list(columns)
        rows = list(dict.fromkeys(r for figures in columns.values() for r in figures))
        width = max(len(r) for r in rows)
        print(f"{'gas used':<{width}}  " + "  ".join(f"{label:>14}" for label in labels))
        for row in rows:  # a row an older contract has no function for shows "-"
            print(f"{row:<{width}}  " + "  ".join(
                f"{columns[label][row]:>14,}" if row in columns[label] else f"{'-':>14}"
                for label in labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
