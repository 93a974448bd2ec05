"""The proof-bundle conformance corpus (tests/data/bundle_corpus/, made by
scripts/make_bundle_corpus.py), run against the anvil state it was made on.

Every case names its expected verdict and, for a refusal, the check and the member that
must fail (docs/proof-bundle.md). The browser verifier runs the same files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.cli.main import main
from chain.client import ChainKind, EvmAnchor
from chain.nodes import ManagedAnvil, rpc_web3
from ledger.anchor_audit import anchored_batch
from ledger.bundle import ProofBundle
from ledger.descriptor import LedgerDescriptor, check_on_chain
from ledger.errors import VerificationError
from ledger.verification import verify_bundle
from tests.conftest import needs_anvil
from tests.forgery import forge_ledger

pytestmark = needs_anvil()

CORPUS = Path(__file__).parent / "data" / "bundle_corpus"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text())
CASES = MANIFEST["cases"]
CHECKS = ("parse", "shape", "trust", "fold", "batch", "transaction")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedAnvil]:
    state = tmp_path_factory.mktemp("corpus-chain")
    shutil.copy(CORPUS / MANIFEST["chainState"], state / "state.json")
    with ManagedAnvil(state) as running:
        yield running


@pytest.fixture(scope="module")
def descriptor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "ledger.json"
    path.write_text(json.dumps(MANIFEST["trust"]))
    return path


def outcome(raw: bytes, url: str) -> tuple[Any, ...]:
    descriptor = LedgerDescriptor.from_json(MANIFEST["trust"])
    trusted = descriptor.trust_root("the corpus manifest")
    reader = EvmAnchor(rpc_web3(url), ChainKind.RPC, trusted.contract, signer=None)
    try:
        verify_bundle(ProofBundle.from_bytes(raw), reader, trusted=trusted)
    except VerificationError as exc:
        return ("refused", exc.check, exc.field)
    return ("valid",)


def expected(case: dict[str, Any]) -> tuple[Any, ...]:
    return ("valid",) if case["expect"] == "valid" else ("refused", case["check"], case["field"])


def test_the_corpus_covers_every_check_with_good_and_bad_cases() -> None:
    kinds = {case["kind"] for case in CASES}
    assert len(kinds) == len(CASES) >= 40
    assert sum(case["expect"] == "valid" for case in CASES) >= 10
    assert {case.get("check") for case in CASES if case["expect"] == "refused"} == set(CHECKS)


def test_the_trust_root_holds_on_the_corpus_chain(node: ManagedAnvil) -> None:
    descriptor = LedgerDescriptor.from_json(MANIFEST["trust"])
    check_on_chain(descriptor, EvmAnchor(rpc_web3(node.url), ChainKind.RPC, descriptor.contract,
                                         signer=None))


def test_each_batch_is_read_from_the_state_and_its_anchoring_event(node: ManagedAnvil) -> None:
    """Found from its id alone, or past a claimed transaction that anchored another batch;
    the browser verifier's reader is held to the same figures (web/test/corpus.test.mjs)."""
    trusted = LedgerDescriptor.from_json(MANIFEST["trust"])
    reader = EvmAnchor(rpc_web3(node.url), ChainKind.RPC, trusted.contract, signer=None,
                       from_block=trusted.deployment_block)
    batches = MANIFEST["batches"]
    assert [b["batchId"] for b in batches] == list(range(1, len(batches) + 1))
    for b, other in zip(batches, batches[1:] + batches[:1], strict=True):
        for look_first in (None, b["txHash"], other["txHash"]):
            on_chain = anchored_batch(reader, b["batchId"], look_first=look_first and bytes.fromhex(
                look_first[2:]))
            assert on_chain is not None
            assert {"batchId": on_chain.batch_id, "root": "0x" + on_chain.root.hex(),
                    "leafCount": on_chain.leaf_count, "contentHash": "0x" + on_chain.content_hash.hex(),
                    "txHash": "0x" + on_chain.tx_hash.hex(), "blockNumber": on_chain.block_number} == b
    assert anchored_batch(reader, len(batches) + 1) is None


@pytest.mark.parametrize("case", CASES, ids=[c["kind"] for c in CASES])
def test_each_case_gets_its_expected_verdict(node: ManagedAnvil, case: dict[str, Any]) -> None:
    assert outcome((CORPUS / case["file"]).read_bytes(), node.url) == expected(case)


def one_case_per_check() -> list[dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for case in CASES:
        first.setdefault(case.get("check") or "valid", case)
    return list(first.values())


@pytest.mark.parametrize("case", one_case_per_check(), ids=lambda c: c["kind"])
def test_the_cli_answers_with_the_documented_exit_code_and_check(
        node: ManagedAnvil, descriptor_file: Path, case: dict[str, Any], capsys) -> None:
    code = main(["verify", str(CORPUS / case["file"]), "--rpc", node.url,
                 "--ledger", str(descriptor_file)])
    said = capsys.readouterr()
    assert "Traceback" not in said.err
    if case["expect"] == "valid":
        assert code == 0 and said.out.startswith("OK: entry "), said
        assert MANIFEST["trust"]["contract"] in said.out and "pinned by" in said.out
    else:
        assert code == 1 and f"({case['check']}): {case['field']}:" in said.err, said


def test_a_forged_deployment_is_refused_once_the_real_ledger_is_pinned(
        node: ManagedAnvil, descriptor_file: Path, tmp_path: Path, capsys) -> None:
    """An attacker deploys the same contract and anchors a tree with a forged entry, live."""
    credit = json.loads((CORPUS / CASES[0]["file"]).read_text())
    forgery = forge_ledger(rpc_web3(node.url), ProofBundle.from_json(credit).values)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(forgery.bundle))

    # Nothing pinned: refused, with how to pin; never the bundle's own contract.
    assert main(["verify", str(forged), "--rpc", node.url]) == 2
    said = capsys.readouterr().err
    assert "no ledger is pinned for chain" in said and "--ledger" in said

    # The real ledger pinned from its descriptor: the forged bundle is refused, naming both.
    assert main(["verify", str(forged), "--rpc", node.url, "--ledger", str(descriptor_file)]) == 1
    said = capsys.readouterr().err
    assert "(trust): contract:" in said
    assert forgery.contract in said and MANIFEST["trust"]["contract"] in said

    # Later runs use the pin; pinning the attacker's contract over it is refused.
    assert main(["verify", str(forged), "--rpc", node.url]) == 1
    assert main(["verify", str(forged), "--rpc", node.url, "--contract", forgery.contract]) == 4
    capsys.readouterr()

    # The forgery is self-consistent: only the pin told it apart.
    assert main(["ledger", "unpin", "31337"]) == 0
    capsys.readouterr()
    assert main(["verify", str(forged), "--rpc", node.url, "--contract", forgery.contract]) == 0
    assert capsys.readouterr().out.startswith("OK: entry ")


def test_a_descriptor_the_chain_contradicts_is_never_pinned(node: ManagedAnvil, tmp_path: Path,
                                                            capsys) -> None:
    bad = dict(MANIFEST["trust"], contract=MANIFEST["forgedContract"])
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(bad))
    assert main(["ledger", "pin", "--rpc", node.url, "--ledger", str(path)]) == 1
    assert "(descriptor): deployment.txHash:" in capsys.readouterr().err
    assert main(["ledger", "pins"]) == 0
    assert "nothing pinned" in capsys.readouterr().out
