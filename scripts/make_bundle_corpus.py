"""Generate the proof-bundle conformance corpus under tests/data/bundle_corpus/.

    python scripts/make_bundle_corpus.py [--out DIR]

Runs the real demo twice on a managed anvil node, takes real bundles from it (a credit,
a debit, entries of several batches), grants a role on the real contract (a transaction
that carries another event), and has an attacker deploy the same contract and anchor a
tree holding a forged entry. Then it writes:

- ``chain-state.json``: the anvil state holding all of it (``anvil --load-state``);
- ``manifest.json``: the trust root (the real ledger's descriptor), every case with
  its expected verdict (for a refusal, the check and member that must fail), and the
  real ledger's batches as the chain holds them (root from the contract's state, leaf
  count and content hash from each anchoring transaction's event), so that both
  verifiers' readers of a batch are held to the same figures;
- ``cases/NNN-kind.json``: each case's exact bytes (some are not JSON at all).

Expectations are written here by hand, per mutation, from docs/proof-bundle.md; the
script then runs the Python verifier over the corpus and refuses to write it if any case
disagrees. The Python tests and the browser verifier run the same files.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eth_utils import to_checksum_address  # noqa: E402
from sqlalchemy import select  # noqa: E402

from api.cli.main import main as cli  # noqa: E402
from api.composition import Container  # noqa: E402
from api.settings import Settings  # noqa: E402
from chain.compiler import load_artifact  # noqa: E402
from chain.connect import open_reader  # noqa: E402
from chain.nodes import ManagedAnvil, rpc_web3  # noqa: E402
from ledger.anchor_audit import anchored_batch  # noqa: E402
from ledger.bundle import ProofBundle  # noqa: E402
from ledger.descriptor import LedgerDescriptor, descriptor_for  # noqa: E402
from ledger.errors import VerificationError  # noqa: E402
from ledger.hashing import keccak  # noqa: E402
from ledger.leaf import LEAF_FIELDS  # noqa: E402
from ledger.proofs import proof_bundle  # noqa: E402
from ledger.store.models import Batch, LedgerEntry  # noqa: E402
from ledger.verification import verify_bundle  # noqa: E402
from tests.forgery import forge_ledger  # noqa: E402

CORPUS_FORMAT = "carbon-ledger-bundle-corpus-v1"
Case = dict[str, Any]


def compact(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def flip(hex32: str, nibble: int = -1) -> str:
    """The same 0x-hex with one hex digit changed."""
    digits = list(hex32)
    digits[nibble] = "0" if digits[nibble] != "0" else "1"
    return "".join(digits)


class Corpus:
    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.blobs: list[bytes] = []

    def raw(self, kind: str, data: bytes, expect: str, check: str | None = None,
            field: str | None = None, note: str = "") -> None:
        case: Case = {"kind": kind, "expect": expect, "note": note}
        if expect == "refused":
            case.update(check=check, field=field)
        self.cases.append(case)
        self.blobs.append(data)

    def good(self, kind: str, doc: Any, note: str = "") -> None:
        self.raw(kind, compact(doc), "valid", note=note)

    def bad(self, kind: str, base: dict[str, Any], change: Callable[[dict[str, Any]], Any],
            check: str, field: str, note: str = "") -> None:
        doc = copy.deepcopy(base)
        change(doc)
        self.raw(kind, compact(doc), "refused", check, field, note)


def build_cases(c: Corpus, credit: dict[str, Any], debit: dict[str, Any], later: dict[str, Any],
                other_batch: dict[str, Any], forged: dict[str, Any], grant: tuple[str, int],
                deployment_tx: str, forged_anchor: tuple[str, int]) -> None:
    V = {name: i for i, name in enumerate(LEAF_FIELDS)}  # noqa: N806 - a table

    # -- good: the real bundles, and forms the format allows --------------------------
    c.good("good-credit", credit, "a credit entry as the ledger wrote it")
    c.good("good-debit", debit, "a redemption (debit) entry, alone in its batch: an empty proof")
    c.good("good-later-batch", later, "an entry of a later batch (second demo run)")
    c.good("good-key-order", dict(reversed(list(credit.items()))), "members in another order")
    c.raw("good-whitespace", json.dumps(credit, indent="\t").encode().replace(b",", b" ,\r\n "),
          "valid", note="tabs, CR LF and spaces between tokens")
    upper = copy.deepcopy(credit)
    upper["root"] = "0x" + upper["root"][2:].upper()
    upper["proof"] = ["0x" + p[2:].upper() for p in upper["proof"]]
    upper["values"][V["recordHash"]] = "0x" + upper["values"][V["recordHash"]][2:].upper()
    c.good("good-uppercase-hex-digits", upper, "hex digits of bytes32 in upper case")
    lower = copy.deepcopy(credit)
    lower["contract"] = lower["contract"].lower()
    lower["values"][V["partner"]] = lower["values"][V["partner"]].lower()
    c.good("good-lowercase-addresses", lower, "addresses all lower case (no checksum)")
    c.raw("good-integer-as-float", compact(credit).replace(
        b'"batchId":%d' % credit["batchId"], b'"batchId":%d.0' % credit["batchId"]),
        "valid", note="1.0 is the number 1, as JSON.parse reads it")
    c.raw("good-integer-with-exponent", compact(credit).replace(
        b'"blockNumber":%d' % credit["blockNumber"], b'"blockNumber":%de0' % credit["blockNumber"]),
        "valid", note="an exponent that leaves an integer")
    plain = {k: v for k, v in credit.items() if k not in ("status", "confirmations")}
    c.good("good-without-informational-members", plain, "no status, no confirmations")
    c.good("good-with-confirmations", {**credit, "confirmations": 999},
           "confirmations is informational: never trusted, never checked")
    c.raw("good-escaped-string", compact(credit).replace(
        b'"carbon-ledger-proof-v1"', b'"carbon\\u002dledger-proof-v1"'), "valid",
        note="a JSON escape that decodes to the same string")

    # -- parse: not JSON, or JSON outside the format's bounds ---------------------------
    text = compact(credit)
    c.raw("parse-truncated", text[: len(text) // 2], "refused", "parse", "bundle")
    c.raw("parse-empty", b"", "refused", "parse", "bundle")
    c.raw("parse-utf8-bom", b"\xef\xbb\xbf" + text, "refused", "parse", "bundle")
    c.raw("parse-duplicate-member", text[:-1] + b',"root":"%s"}' % credit["root"].encode(),
          "refused", "parse", "bundle", "a member named twice (even with the same value)")
    c.raw("parse-invalid-utf8", text.replace(b'"anchored"', b'"anch\xffored"'),
          "refused", "parse", "bundle")
    c.raw("parse-lone-surrogate", text.replace(credit["contract"].encode(), b"\\ud800" * 21),
          "refused", "parse", "bundle", "a contract string holding a lone UTF-16 surrogate")
    c.raw("parse-deep-nesting", text[:-1] + b',"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
          "refused", "parse", "bundle", "a member nested 100,000 arrays deep")
    c.raw("parse-huge-integer", text.replace(b'"batchId":%d' % credit["batchId"],
                                            b'"batchId":' + b"9" * 5000),
          "refused", "parse", "bundle", "a 5,000-digit integer literal (beyond a double)")
    c.raw("parse-nan", text.replace(b'"blockNumber":%d' % credit["blockNumber"],
                                    b'"blockNumber":NaN'), "refused", "parse", "bundle")
    c.raw("parse-trailing-garbage", text + b"}", "refused", "parse", "bundle")
    c.raw("parse-oversized", text[:-1] + b"," + b" " * 70_000 + b'"status":"anchored"}',
          "refused", "parse", "bundle", "over 64 KiB")

    # -- shape: JSON, but not the format ----------------------------------------------
    c.raw("shape-top-level-array", compact([credit]), "refused", "shape", "bundle")
    c.bad("shape-unknown-format", credit, lambda b: b.update(format="carbon-ledger-proof-v2"),
          "shape", "format")
    c.bad("shape-missing-member", credit, lambda b: b.pop("txHash"), "shape", "txHash")
    c.bad("shape-inner-node-as-leaf", credit,
          lambda b: (b.update(leaf=b["proof"][0]), b.update(proof=b["proof"][1:])),
          "shape", "leaf", "a second-preimage shape: an inner node offered as the leaf")
    c.bad("shape-entry-id-not-the-leafs", credit, lambda b: b.update(entryId=flip(b["entryId"])),
          "shape", "entryId")
    c.bad("shape-leaf-encoding", credit, lambda b: b["leafEncoding"].__setitem__(6, "uint256"),
          "shape", "leafEncoding")
    c.bad("shape-whitespace-in-hex", credit,
          lambda b: b.update(root=b["root"][:34] + " " + b["root"][34:]), "shape", "root",
          "bytes.fromhex would skip it; the format does not")
    c.bad("shape-newline-in-proof-item", credit,
          lambda b: b["proof"].__setitem__(0, b["proof"][0][:10] + "\n" + b["proof"][0][10:]),
          "shape", "proof[0]")
    c.bad("shape-hex-without-prefix", credit, lambda b: b.update(txHash=b["txHash"][2:]),
          "shape", "txHash")
    c.bad("shape-hex-capital-prefix", credit, lambda b: b.update(txHash="0X" + b["txHash"][2:]),
          "shape", "txHash")
    c.bad("shape-hex-too-short", credit, lambda b: b.update(root=b["root"][:-1]), "shape", "root")
    c.bad("shape-contract-not-hex", credit, lambda b: b.update(contract="0x" + "zz" * 20),
          "shape", "contract", "42 characters, not hex")
    bad_sum = credit["contract"][:2] + credit["contract"][2:].swapcase()
    c.bad("shape-contract-bad-checksum", credit, lambda b: b.update(contract=bad_sum),
          "shape", "contract", "mixed case that is not its EIP-55 checksum")
    partner = credit["values"][V["partner"]]
    c.bad("shape-partner-bad-checksum", credit,
          lambda b: b["values"].__setitem__(V["partner"], partner[:2] + partner[2:].swapcase()),
          "shape", "values.partner")
    c.bad("shape-value-as-number", credit,
          lambda b: b["values"].__setitem__(V["points"], int(b["values"][V["points"]])),
          "shape", "values.points", "uint values are decimal strings")
    c.bad("shape-value-leading-zero", credit,
          lambda b: b["values"].__setitem__(V["quantity"], "0" + b["values"][V["quantity"]]),
          "shape", "values.quantity")
    c.bad("shape-value-over-uint64", credit,
          lambda b: b["values"].__setitem__(V["points"], str(2**64)), "shape", "values.points")
    c.bad("shape-value-negative", credit,
          lambda b: b["values"].__setitem__(V["points"], "-1"), "shape", "values.points")
    c.bad("shape-value-too-many-digits", credit,
          lambda b: b["values"].__setitem__(V["points"], "1" * 5000), "shape", "values.points")
    c.bad("shape-values-count", credit, lambda b: b["values"].pop(), "shape", "values")
    c.bad("shape-batch-id-string", credit, lambda b: b.update(batchId=str(b["batchId"])),
          "shape", "batchId")
    c.bad("shape-batch-id-zero", credit, lambda b: b.update(batchId=0), "shape", "batchId")
    c.bad("shape-batch-id-unsafe", credit, lambda b: b.update(batchId=2**53), "shape", "batchId",
          "beyond 2**53 - 1, where JSON.parse loses integers")
    c.bad("shape-batch-id-fraction", credit, lambda b: b.update(batchId=1.5), "shape", "batchId")
    c.bad("shape-chain-id-negative", credit, lambda b: b.update(chainId=-1), "shape", "chainId")
    c.bad("shape-block-number-boolean", credit, lambda b: b.update(blockNumber=True), "shape",
          "blockNumber")
    c.bad("shape-proof-not-array", credit, lambda b: b.update(proof=b["proof"][0]), "shape", "proof")
    c.bad("shape-proof-too-long", credit, lambda b: b.update(proof=[b["root"]] * 65), "shape",
          "proof")
    c.bad("shape-status-pending", credit, lambda b: b.update(status="pending"), "shape", "status")

    # -- trust: the bundle names another ledger than the pinned one --------------------
    c.raw("trust-forged-deployment", compact(forged), "refused", "trust", "contract",
          "a self-consistent bundle of a second deployment holding a forged entry")
    c.bad("trust-other-chain", credit, lambda b: b.update(chainId=1), "trust", "chainId")
    c.bad("trust-other-contract", credit, lambda b: b.update(contract=forged["contract"]),
          "trust", "contract")

    # -- fold: values and proof do not give the bundle's root ---------------------------
    for name in LEAF_FIELDS:
        def change(b: dict[str, Any], name: str = name) -> None:
            value = b["values"][V[name]]
            if name == "partner":
                new = to_checksum_address(forged["contract"])
            elif name == "kind":
                new = "2" if value == "1" else "1"
            elif value.startswith("0x"):
                new = flip(value)
            else:
                new = str(int(value) + 1)
            b["values"][V[name]] = new
            if name == "entryId":
                b["entryId"] = new  # keep the two equal: the fold must catch it
        c.bad(f"fold-changed-{name}", credit, change, "fold", "values")
    c.bad("fold-flipped-first-proof-item", credit,
          lambda b: b["proof"].__setitem__(0, flip(b["proof"][0])), "fold", "values")
    c.bad("fold-flipped-last-proof-item", credit,
          lambda b: b["proof"].__setitem__(-1, flip(b["proof"][-1])), "fold", "values")
    c.bad("fold-missing-first-proof-item", credit, lambda b: b["proof"].pop(0), "fold", "values",
          "the fold starts one level up: an inner node treated as the leaf")
    c.bad("fold-missing-last-proof-item", credit, lambda b: b["proof"].pop(), "fold", "values")
    c.bad("fold-extra-proof-item", credit, lambda b: b["proof"].append(b["root"]), "fold", "values")
    c.bad("fold-reordered-proof", credit, lambda b: b["proof"].reverse(), "fold", "values")
    c.bad("fold-empty-proof", credit, lambda b: b.update(proof=[]), "fold", "values")
    c.bad("fold-claimed-root-changed", credit, lambda b: b.update(root=flip(b["root"])), "fold",
          "values")
    c.bad("fold-another-batchs-root", credit, lambda b: b.update(root=other_batch["root"]),
          "fold", "values")

    # -- batch: the pinned contract does not hold this root for this batch ---------------
    c.bad("batch-another-batch-id", credit, lambda b: b.update(batchId=other_batch["batchId"]),
          "batch", "root")
    c.bad("batch-unknown-batch-id", credit, lambda b: b.update(batchId=99), "batch", "batchId")
    c.bad("batch-forged-bundle-naming-the-real-contract", forged,
          lambda b: b.update(contract=credit["contract"]), "batch", "root",
          "the forged root is not what the real contract anchored for this batch")

    # -- transaction: the anchoring transaction does not say what the bundle claims ------
    c.bad("transaction-another-batchs-anchor", credit,
          lambda b: b.update(txHash=other_batch["txHash"], blockNumber=other_batch["blockNumber"]),
          "transaction", "txHash")
    c.bad("transaction-unknown", credit, lambda b: b.update(txHash="0x" + "12" * 32),
          "transaction", "txHash")
    c.bad("transaction-the-deployment", credit,
          lambda b: b.update(txHash=deployment_tx), "transaction", "txHash",
          "a transaction that created the contract, sent to no address")
    c.bad("transaction-carrying-another-event", credit,
          lambda b: b.update(txHash=grant[0], blockNumber=grant[1]), "transaction", "txHash",
          "a transaction of the contract that emitted RoleGranted, not BatchAnchored")
    c.bad("transaction-block-off-by-one", credit,
          lambda b: b.update(blockNumber=b["blockNumber"] + 1), "transaction", "blockNumber")
    c.bad("transaction-sent-to-the-forged-contract", credit,
          lambda b: b.update(txHash=forged_anchor[0], blockNumber=forged_anchor[1]),
          "transaction", "txHash")


def check_corpus(out: Path, manifest: dict[str, Any], rpc: str) -> list[str]:
    """Run the Python verifier over the written corpus; the disagreements."""
    from chain.client import ChainKind, EvmAnchor

    trusted = LedgerDescriptor.from_json(manifest["trust"]).trust_root("the corpus manifest")
    reader = EvmAnchor(rpc_web3(rpc), ChainKind.RPC, trusted.contract, signer=None)
    wrong = []
    for case in manifest["cases"]:
        raw = (out / case["file"]).read_bytes()
        try:
            verify_bundle(ProofBundle.from_bytes(raw), reader, trusted=trusted)
            got: tuple[Any, ...] = ("valid",)
        except VerificationError as exc:
            got = ("refused", exc.check, exc.field)
        want = (case["expect"],) if case["expect"] == "valid" else (
            case["expect"], case["check"], case["field"])
        if got != want:
            wrong.append(f"{case['file']}: expected {want}, got {got}")
    return wrong


def generate(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "ledger"
        for seed in ("7", "8"):  # two runs: four batches, credits and debits
            assert cli(["demo", "--citizens", "12", "--seed", seed, "--data-dir", str(data_dir)]) == 0
        with ManagedAnvil(data_dir / "anvil") as node:
            c = Container(Settings(data_dir=data_dir, rpc_url=node.url))
            w3 = rpc_web3(node.url)
            reader = open_reader(w3, c.db)
            assert reader is not None
            with c.db.session() as s:
                descriptor = descriptor_for(s, receipt_signer=c.signer.address)
                batches = s.scalars(select(Batch).order_by(Batch.id)).all()
                first, last = batches[0], batches[-1]

                def entry(batch: Batch, kind: int, min_proof: int = 2) -> dict[str, Any]:
                    for e in s.scalars(select(LedgerEntry).where(
                            LedgerEntry.seq.between(batch.first_seq, batch.last_seq))):
                        bundle = proof_bundle(s, e.entry_id)
                        if e.kind == kind and len(bundle["proof"]) >= min_proof:
                            return bundle
                    raise SystemExit(f"batch {batch.id} has no entry of kind {kind} with a proof")

                credit = entry(first, 1)
                debit = entry(next(b for b in batches if any(
                    k == 2 for k in s.scalars(select(LedgerEntry.kind).where(
                        LedgerEntry.seq.between(b.first_seq, b.last_seq))))), 2, min_proof=0)
                later = entry(batches[2], 1)
                other = proof_bundle(s, s.scalar(select(LedgerEntry.entry_id).where(
                    LedgerEntry.seq == last.first_seq)))
            grant = grant_role(w3, c, reader.contract_address)
            forgery = forge_ledger(w3, decode_leaf_json(credit), batches=credit["batchId"])
            manifest = {
                "format": CORPUS_FORMAT,
                "generatedBy": "scripts/make_bundle_corpus.py",
                "chainState": "chain-state.json",
                "trust": descriptor.to_json(),
                "forgedContract": forgery.contract,
                "batches": [batch_on_chain(reader, b) for b in batches],
                "cases": [],
            }
            corpus = Corpus()
            build_cases(corpus, credit, debit, later, other, forgery.bundle, grant,
                        "0x" + descriptor.deployment_tx.hex(),
                        ("0x" + forgery.anchor_tx.hex(), forgery.anchor_block))
            if out.exists():
                shutil.rmtree(out)
            (out / "cases").mkdir(parents=True)
            for n, (case, blob) in enumerate(zip(corpus.cases, corpus.blobs, strict=True), 1):
                case["file"] = f"cases/{n:03d}-{case['kind']}.json"
                (out / case["file"]).write_bytes(blob)
                manifest["cases"].append(case)
            (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False)
                                               + "\n")
            wrong = check_corpus(out, manifest, node.url)
        shutil.copy(data_dir / "anvil" / "state.json", out / "chain-state.json")
    if wrong:
        shutil.rmtree(out)
        raise SystemExit("the verifier disagrees with the written expectations:\n  "
                         + "\n  ".join(wrong))
    kinds = len(manifest["cases"])
    good = sum(1 for case in manifest["cases"] if case["expect"] == "valid")
    print(f"wrote {kinds} cases to {out}: {good} valid, {kinds - good} refused")


def batch_on_chain(reader: Any, batch: Batch) -> dict[str, Any]:
    """``batch`` as the chain holds it, found from its id alone; it must be what the
    ledger recorded."""
    on_chain = anchored_batch(reader, batch.id)
    recorded = (batch.root, batch.leaf_count, batch.content_hash, batch.tx_hash,
                batch.block_number)
    if on_chain is None or (on_chain.root, on_chain.leaf_count, on_chain.content_hash,
                            on_chain.tx_hash, on_chain.block_number) != recorded:
        raise SystemExit(f"batch {batch.id}: the chain holds {on_chain}, the ledger {recorded}")
    return {"batchId": batch.id, "root": "0x" + batch.root.hex(), "leafCount": batch.leaf_count,
            "contentHash": "0x" + batch.content_hash.hex(),
            "txHash": "0x" + on_chain.tx_hash.hex(), "blockNumber": on_chain.block_number}


def decode_leaf_json(bundle: dict[str, Any]):  # type: ignore[no-untyped-def]
    return ProofBundle.from_json(bundle).values


def grant_role(w3: Any, c: Container, contract: str) -> tuple[str, int]:
    """A transaction to the real contract that emits RoleGranted (not an anchor)."""
    anchor = w3.eth.contract(address=contract, abi=load_artifact()["abi"])
    role = keccak(b"ANCHORER_ROLE")
    signer = c.signer
    grantee = to_checksum_address("0x" + "5e" * 20)
    tx = anchor.functions.grantRole(role, grantee).build_transaction({
        "from": signer.address, "nonce": w3.eth.get_transaction_count(signer.address, "pending"),
        "chainId": w3.eth.chain_id})
    sent = w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=60)
    assert receipt["status"] == 1 and receipt["logs"], "grantRole emitted nothing"
    return "0x" + bytes(sent).hex(), int(receipt["blockNumber"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "bundle_corpus")
    generate(parser.parse_args().out)
