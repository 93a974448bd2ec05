"""EIP-712 typed data: partners sign their submissions, the operator signs receipts.

Both are signed in the deployment's domain: ``CarbonLedger`` version 2, the chain id and
the anchor contract as ``verifyingContract``, so a signature made for one ledger is
worthless to another, on the same chain or not. A submission's struct carries a
``nonce`` (32 bytes the partner picks at random, used once: the ledger keeps each
partner's used nonces) and a ``deadline`` (unix seconds, at most
:data:`MAX_VALIDITY_SECONDS` ahead), after EIP-3009's authorisations. docs/signing.md is
the partners' reference; version 1 (no nonce, no deadline, no contract) is refused.

A submission's ``recordsHash`` is keccak256 of its records' hashes (each keccak256 of
the record's RFC 8785 JSON) concatenated in submission order, so a partner computes it
from the same bytes the ledger stores. The receipt commits to the accepted records and
the time by which they will be anchored: the partner's evidence if they never are.

Signatures are 65 bytes ``r ‖ s ‖ v`` with ``s`` in the lower half of the curve order
(EIP-2): the other half is a second, malleable form of the same signature.
"""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.constants import SECPK1_N
from eth_keys.datatypes import PrivateKey
from eth_utils import to_checksum_address

from ledger.errors import InvalidInput, MalleableSignature
from ledger.hashing import keccak

DOMAIN_NAME = "CarbonLedger"
DOMAIN_VERSION = "2"
#: The headers a signed submission travels with, by the struct member they carry.
HEADERS = {"signature": "X-Signature", "nonce": "X-Nonce", "deadline": "X-Deadline"}
#: How far ahead of the ledger's clock a deadline may be, and the clock skew allowed on top.
MAX_VALIDITY_SECONDS = 3600
CLOCK_SKEW_SECONDS = 300

SUBMISSION_TYPES = {
    "Submission": [
        {"name": "partner", "type": "string"},
        {"name": "recordsHash", "type": "bytes32"},
        {"name": "count", "type": "uint32"},
        {"name": "nonce", "type": "bytes32"},
        {"name": "deadline", "type": "uint64"},
    ],
}
#: Version 1 (domain without a contract): only recognised, to tell a partner it is retired.
RETIRED_SUBMISSION_TYPES = {"Submission": SUBMISSION_TYPES["Submission"][:3]}
RECEIPT_TYPES = {
    "Receipt": [
        {"name": "submissionId", "type": "bytes32"},
        {"name": "partner", "type": "string"},
        {"name": "acceptedHash", "type": "bytes32"},
        {"name": "accepted", "type": "uint32"},
        {"name": "anchorBy", "type": "uint64"},
    ],
}
_DOMAIN_FIELDS = {"name": "string", "version": "string", "chainId": "uint256",
                  "verifyingContract": "address"}
_HALF_ORDER = SECPK1_N // 2


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    """The EIP-712 domain of the ledger anchored at ``contract`` on ``chain_id``."""
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id,
            "verifyingContract": contract}


def records_hash(record_hashes: list[bytes]) -> bytes:
    return keccak(b"".join(record_hashes))


def _typed(types: dict[str, Any], primary: str, domain_data: dict[str, Any],
           message: dict[str, Any]) -> Any:
    fields = [{"name": k, "type": t} for k, t in _DOMAIN_FIELDS.items() if k in domain_data]
    return encode_typed_data(full_message={
        "types": {"EIP712Domain": fields, **types},
        "primaryType": primary, "domain": domain_data, "message": message})


def signature_bytes(signature: str, *, field: str) -> bytes:
    """A hex signature's 65 bytes, refused with ``field`` if malformed or malleable."""
    text = signature[2:] if signature[:2] in ("0x", "0X") else signature
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidInput("not a valid signature: expected 0x and 130 hex digits (r, s, v)",
                           field=field) from None
    if len(raw) != 65:
        raise InvalidInput(f"not a valid signature: {len(raw)} bytes, expected 65 (r, s, v)",
                           field=field)
    if int.from_bytes(raw[32:64], "big") > _HALF_ORDER:
        raise MalleableSignature("s is above secp256k1n/2, the malleable twin of a signature "
                                 "(EIP-2): sign with a library that normalises s (eth-account, "
                                 "ethers and viem do)", field=field)
    return raw


def _recover(signable: Any, raw: bytes, field: str) -> bytes:
    try:
        address = Account.recover_message(signable, signature=raw)
    except Exception as exc:  # noqa: BLE001 - any unrecoverable signature is the caller's fault
        raise InvalidInput(f"not a valid signature: {exc}", field=field) from exc
    return bytes.fromhex(address[2:])


def submission_message(partner: str, digest: bytes, count: int, nonce: bytes,
                       deadline: int) -> dict[str, Any]:
    return {"partner": partner, "recordsHash": digest, "count": count, "nonce": nonce,
            "deadline": deadline}


def sign_submission(private_key: bytes | str, *, chain_id: int, contract: str, partner: str,
                    digest: bytes, count: int, nonce: bytes, deadline: int) -> str:
    """What a partner does (tests and the benchmarks use it too)."""
    signable = _typed(SUBMISSION_TYPES, "Submission", domain(chain_id, contract),
                      submission_message(partner, digest, count, nonce, deadline))
    return "0x" + bytes(Account.sign_message(signable, private_key).signature).hex()


def submission_headers(private_key: bytes | str, *, chain_id: int, contract: str, partner: str,
                       digest: bytes, count: int, valid_for: int = 600,
                       now: int | None = None) -> dict[str, str]:
    """A signed submission's headers, with a fresh random nonce and a deadline
    ``valid_for`` seconds from now: what a partner sends beside the records."""
    nonce = secrets.token_bytes(32)
    deadline = (int(time.time()) if now is None else now) + valid_for
    signature = sign_submission(private_key, chain_id=chain_id, contract=contract,
                                partner=partner, digest=digest, count=count, nonce=nonce,
                                deadline=deadline)
    return {HEADERS["signature"]: signature, HEADERS["nonce"]: "0x" + nonce.hex(),
            HEADERS["deadline"]: str(deadline)}


def submission_signer(signature: str, *, chain_id: int, contract: str, partner: str,
                      digest: bytes, count: int, nonce: bytes, deadline: int) -> bytes:
    """The address that signed this submission (20 bytes)."""
    raw = signature_bytes(signature, field=HEADERS["signature"])
    signable = _typed(SUBMISSION_TYPES, "Submission", domain(chain_id, contract),
                      submission_message(partner, digest, count, nonce, deadline))
    return _recover(signable, raw, HEADERS["signature"])


def retired_submission_signer(signature: str, *, chain_id: int, partner: str, digest: bytes,
                              count: int) -> bytes:
    """Who signed these records as a version-1 submission, to tell a partner still on it
    what to change (never to accept one)."""
    raw = signature_bytes(signature, field=HEADERS["signature"])
    signable = _typed(RETIRED_SUBMISSION_TYPES, "Submission",
                      {"name": DOMAIN_NAME, "version": "1", "chainId": chain_id},
                      {"partner": partner, "recordsHash": digest, "count": count})
    return _recover(signable, raw, HEADERS["signature"])


@lru_cache(maxsize=4)
def _signing_key(private_key: bytes) -> tuple[PrivateKey, str]:
    """The key object and its address, derived once: each derivation is an elliptic-curve
    multiplication (milliseconds with eth-keys' pure-Python backend)."""
    key = PrivateKey(private_key)
    return key, key.public_key.to_checksum_address()


def sign_receipt(private_key: bytes, *, chain_id: int, contract: str, submission_id: bytes,
                 partner: str, accepted_hash: bytes, accepted: int,
                 anchor_by: int) -> dict[str, Any]:
    message = {"submissionId": submission_id, "partner": partner, "acceptedHash": accepted_hash,
               "accepted": accepted, "anchorBy": anchor_by}
    key, address = _signing_key(bytes(private_key))
    where = domain(chain_id, contract)
    signed = Account.sign_message(_typed(RECEIPT_TYPES, "Receipt", where, message), key)
    return {"domain": where, "types": RECEIPT_TYPES, "primaryType": "Receipt",
            "message": {**message, "submissionId": "0x" + submission_id.hex(),
                        "acceptedHash": "0x" + accepted_hash.hex()},
            "signer": address,
            "signature": "0x" + bytes(signed.signature).hex()}


def receipt_signer(receipt: dict[str, Any]) -> str:
    """Recover who signed a receipt (for partners and tests), in the domain it names
    (receipts before domain version 2 name no contract)."""
    m = receipt["message"]
    message = {**m, "submissionId": bytes.fromhex(m["submissionId"][2:]),
               "acceptedHash": bytes.fromhex(m["acceptedHash"][2:])}
    signable = _typed(RECEIPT_TYPES, "Receipt", receipt["domain"], message)
    raw = signature_bytes(receipt["signature"], field="signature")
    return str(to_checksum_address(_recover(signable, raw, "signature")))


def submission_typed_data(chain_id: int, contract: str) -> dict[str, Any]:
    """What a partner signs, as ``GET /v1/info`` publishes it: domain, types, primary type,
    and the headers the signature, nonce and deadline travel in."""
    return {"domain": domain(chain_id, contract), "types": SUBMISSION_TYPES,
            "primaryType": "Submission", "headers": HEADERS,
            "maxValiditySeconds": MAX_VALIDITY_SECONDS}
