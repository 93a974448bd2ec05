"""EIP-712 typed data: partners sign their submissions, the operator signs receipts.

A submission's ``recordsHash`` is keccak256 of its records' hashes (each keccak256 of
the record's RFC 8785 JSON) concatenated in submission order, so a partner computes it
from the same bytes the ledger stores. The receipt commits to the accepted records and
the time by which they will be anchored: the partner's evidence if they never are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.datatypes import PrivateKey

from ledger.errors import InvalidInput
from ledger.hashing import keccak

DOMAIN_NAME = "CarbonLedger"
DOMAIN_VERSION = "1"

SUBMISSION_TYPES = {
    "Submission": [
        {"name": "partner", "type": "string"},
        {"name": "recordsHash", "type": "bytes32"},
        {"name": "count", "type": "uint32"},
    ],
}
RECEIPT_TYPES = {
    "Receipt": [
        {"name": "submissionId", "type": "bytes32"},
        {"name": "partner", "type": "string"},
        {"name": "acceptedHash", "type": "bytes32"},
        {"name": "accepted", "type": "uint32"},
        {"name": "anchorBy", "type": "uint64"},
    ],
}


def domain(chain_id: int) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id}


def records_hash(record_hashes: list[bytes]) -> bytes:
    return keccak(b"".join(record_hashes))


def _typed(types: dict[str, Any], primary: str, chain_id: int, message: dict[str, Any]) -> Any:
    return encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"}], **types},
        "primaryType": primary, "domain": domain(chain_id), "message": message})


def submission_message(partner: str, digest: bytes, count: int) -> dict[str, Any]:
    return {"partner": partner, "recordsHash": digest, "count": count}


def sign_submission(private_key: bytes | str, *, chain_id: int, partner: str, digest: bytes,
                    count: int) -> str:
    """What a partner does (tests and the benchmark use it too)."""
    signable = _typed(SUBMISSION_TYPES, "Submission", chain_id,
                      submission_message(partner, digest, count))
    return "0x" + bytes(Account.sign_message(signable, private_key).signature).hex()


def submission_signer(signature: str, *, chain_id: int, partner: str, digest: bytes,
                      count: int) -> bytes:
    """The address that signed this submission (20 bytes)."""
    try:
        sig = bytes.fromhex(signature[2:] if signature.startswith("0x") else signature)
        signable = _typed(SUBMISSION_TYPES, "Submission", chain_id,
                          submission_message(partner, digest, count))
        address = Account.recover_message(signable, signature=sig)
    except Exception as exc:  # noqa: BLE001 - any malformed signature is the caller's fault
        raise InvalidInput(f"not a valid signature: {exc}", field="signature") from exc
    return bytes.fromhex(address[2:])


@lru_cache(maxsize=4)
def _signing_key(private_key: bytes) -> tuple[PrivateKey, str]:
    """The key object and its address, derived once: each derivation is an elliptic-curve
    multiplication (milliseconds with eth-keys' pure-Python backend)."""
    key = PrivateKey(private_key)
    return key, key.public_key.to_checksum_address()


def sign_receipt(private_key: bytes, *, chain_id: int, submission_id: bytes, partner: str,
                 accepted_hash: bytes, accepted: int, anchor_by: int) -> dict[str, Any]:
    message = {"submissionId": submission_id, "partner": partner, "acceptedHash": accepted_hash,
               "accepted": accepted, "anchorBy": anchor_by}
    key, address = _signing_key(bytes(private_key))
    signed = Account.sign_message(_typed(RECEIPT_TYPES, "Receipt", chain_id, message), key)
    return {"domain": domain(chain_id), "types": RECEIPT_TYPES, "primaryType": "Receipt",
            "message": {**message, "submissionId": "0x" + submission_id.hex(),
                        "acceptedHash": "0x" + accepted_hash.hex()},
            "signer": address,
            "signature": "0x" + bytes(signed.signature).hex()}


def receipt_signer(receipt: dict[str, Any]) -> str:
    """Recover who signed a receipt (for partners and tests)."""
    m = receipt["message"]
    message = {**m, "submissionId": bytes.fromhex(m["submissionId"][2:]),
               "acceptedHash": bytes.fromhex(m["acceptedHash"][2:])}
    signable = _typed(RECEIPT_TYPES, "Receipt", receipt["domain"]["chainId"], message)
    return str(Account.recover_message(signable, signature=bytes.fromhex(receipt["signature"][2:])))


def submission_typed_data(chain_id: int) -> dict[str, Any]:
    """What a partner signs, as ``GET /v1/info`` publishes it: domain, types, primary type."""
    return {"domain": domain(chain_id), "types": SUBMISSION_TYPES, "primaryType": "Submission"}
