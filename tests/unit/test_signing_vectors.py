"""docs/signing-vectors.json: test vectors for a partner's developer in any language (the
inputs of a signed submission, every intermediate value, the signature), recomputed here
so they cannot drift. ``python -m tests.test_signing_vectors`` rewrites the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from ledger.hashing import keccak
from ledger.records import canonical_json
from ledger.signing import records_hash, sign_submission, submission_signer, submission_typed_data

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "signing-vectors.json"
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

CASES: list[dict[str, Any]] = [
    {"name": "one record (the worked example of docs/signing.md)",
     "privateKey": "0x" + keccak(b"carbon-ledger signing example").hex(),
     "chainId": 31337, "contract": CONTRACT, "partner": "greenbike",
     "nonce": "0x7f3c9a0e5b1d4c2a8e6f0b9d3a7c5e1f2b4d6a8c0e9f1b3d5a7c9e0f2b4d6a8c",
     "deadline": 1795929180,
     "records": [{"record_id": "greenbike-000123", "citizen": "c_3f9a0b1c2d3e4f5a6b7c8d9e",
                  "behaviour": "CYCLING", "quantity": 3200,
                  "occurred_at": "2026-11-24T08:13:00+08:00",
                  "ended_at": "2026-11-24T08:29:00+08:00"}]},
    {"name": "two records, members in no particular order, non-ASCII text in details",
     "privateKey": "0x" + keccak(b"carbon-ledger signing example 2").hex(),
     "chainId": 8453, "contract": "0x1111111111111111111111111111111111111111",
     "partner": "citytransit",
     "nonce": "0x" + "00" * 31 + "01", "deadline": 1796000000,
     "records": [{"quantity": 12800, "behaviour": "METRO", "citizen": "c_0a1b2c3d4e5f6a7b8c9d0e1f",
                  "record_id": "citytransit-42", "occurred_at": "2026-11-24T14:13:00+08:00",
                  "ended_at": "2026-11-24T14:39:00+08:00",
                  "details": {"line": "2", "from": "人民广场", "to": "陆家嘴"}},
                 {"record_id": "citytransit-43", "citizen": "c_0a1b2c3d4e5f6a7b8c9d0e1f",
                  "behaviour": "BUS", "quantity": 6400,
                  "occurred_at": "2026-11-24T18:02:00+08:00",
                  "ended_at": "2026-11-24T18:26:00+08:00", "details": {"route": "Nº 71 — «express»"}}]},
]


def compute(case: dict[str, Any]) -> dict[str, Any]:
    """Every value a partner's code computes for ``case``, from its inputs."""
    key = bytes.fromhex(case["privateKey"][2:])
    nonce = bytes.fromhex(case["nonce"][2:])
    canonical = [canonical_json(r) for r in case["records"]]
    hashes = [keccak(c) for c in canonical]
    digest = records_hash(hashes)
    eip712 = submission_typed_data(case["chainId"], case["contract"])
    message = {"partner": case["partner"], "recordsHash": digest, "count": len(hashes),
               "nonce": nonce, "deadline": case["deadline"]}
    signable = encode_typed_data(eip712["domain"], eip712["types"], message)
    signature = sign_submission(key, chain_id=case["chainId"], contract=case["contract"],
                                partner=case["partner"], digest=digest, count=len(hashes),
                                nonce=nonce, deadline=case["deadline"])
    return {"address": Account.from_key(key).address,
            "canonicalRecords": [c.decode() for c in canonical],
            "recordHashes": ["0x" + h.hex() for h in hashes],
            "recordsHash": "0x" + digest.hex(), "count": len(hashes),
            "domainSeparator": "0x" + signable.header.hex(),
            "structHash": "0x" + signable.body.hex(),
            "digest": "0x" + keccak(b"\x19" + signable.version + signable.header
                                    + signable.body).hex(),
            "signature": signature,
            "headers": {"X-Signature": signature, "X-Nonce": case["nonce"],
                        "X-Deadline": str(case["deadline"])},
            "ndjsonBody": "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                  for r in case["records"])}


def document() -> dict[str, Any]:
    return {"description": "Signed-submission test vectors (docs/signing.md): for each case, "
                           "the inputs and every value computed from them. The private keys "
                           "are public: never use them.",
            "types": submission_typed_data(1, CONTRACT)["types"],
            "cases": [{"input": case, "expected": compute(case)} for case in CASES]}


def test_the_vectors_file_holds_what_the_code_computes() -> None:
    assert json.loads(VECTORS.read_text(encoding="utf-8")) == document(), \
        "run `python -m tests.test_signing_vectors` and review the change"


def test_each_vector_signature_recovers_to_its_address() -> None:
    for case in json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]:
        given, expected = case["input"], case["expected"]
        signer = submission_signer(expected["signature"], chain_id=given["chainId"],
                                   contract=given["contract"], partner=given["partner"],
                                   digest=bytes.fromhex(expected["recordsHash"][2:]),
                                   count=expected["count"],
                                   nonce=bytes.fromhex(given["nonce"][2:]),
                                   deadline=given["deadline"])
        assert "0x" + signer.hex() == expected["address"].lower()


def test_the_signing_page_shows_the_second_vector() -> None:
    page = (VECTORS.parent / "signing.md").read_text(encoding="utf-8")
    second = compute(CASES[1])
    for value in (second["recordsHash"], second["signature"], *second["recordHashes"]):
        assert value in page, value


if __name__ == "__main__":
    VECTORS.write_text(json.dumps(document(), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    sys.stdout.write(f"wrote {VECTORS}\n")
