"""Green-credit credentials: the format, shared by the operator, the citizen and a bank.

A W3C Verifiable Credential (data model 2.0) whose ``credentialSubject`` lists the
citizen's month statement leaves, each with its Merkle proof to the statement root the
contract holds; the issuer signs it with an EIP-712 proof (eth-account's structured-data
signing). A presentation wraps one credential with the bank's challenge (nonce and name)
and an expiry, signed by the holder key the citizen made (the operator only ever sees its
address). Why EIP-712 and not SD-JWT: every check a bank makes is against an Ethereum
contract (roots, issuer role, revocation), so one signature scheme and one library serve
all of them; disclosure is chosen at issuance (monthly totals by default, per area on
request), never individual entries or times. docs/green-credit.md describes it all.

Here: the EIP-712 types, signing, parsing (shape first) and the holder's presentation;
issuing and revoking are :mod:`ledger.green_credit_issue`, checking
:mod:`ledger.green_credit_verify`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from ledger.errors import InvalidInput, VerificationError
from ledger.hashing import keccak, parse_hex32
from ledger.signing import signature_bytes
from ledger.statements import (
    AreaTotal,
    StatementLeafValues,
    areas_from_json,
    parse_period,
    period_label,
)

DOMAIN_NAME = "Carbon Ledger Green Credit"
DOMAIN_VERSION = "1"
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
#: Terms of our own, under a URN vocabulary (no document to fetch, so none to go stale).
LOCAL_CONTEXT = {"@vocab": "urn:carbon-ledger:green-credit#"}
CREDENTIAL_TYPE = "GreenCreditCredential"
PROOF_TYPE = "Eip712Signature"
STATUS_TYPE = "CarbonLedgerRevocationBit"
MAX_MONTHS = 24
DEFAULT_VALID_DAYS = 90
DEFAULT_PRESENTATION_SECONDS = 600
MAX_PRESENTATION_SECONDS = 3600

TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"},
                     {"name": "verifyingContract", "type": "address"}],
    "GreenCredit": [{"name": "issuer", "type": "address"}, {"name": "holder", "type": "address"},
                    {"name": "account", "type": "bytes32"},
                    {"name": "statusIndex", "type": "uint256"},
                    {"name": "validFrom", "type": "uint64"},
                    {"name": "validUntil", "type": "uint64"},
                    {"name": "areasDisclosed", "type": "bool"},
                    {"name": "statements", "type": "MonthStatement[]"}],
    "MonthStatement": [{"name": "period", "type": "uint32"}, {"name": "leaf", "type": "bytes32"}],
    "Presentation": [{"name": "credential", "type": "bytes32"},
                     {"name": "audience", "type": "string"}, {"name": "nonce", "type": "string"},
                     {"name": "created", "type": "uint64"}, {"name": "expires", "type": "uint64"}],
}


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id,
            "verifyingContract": to_checksum_address(contract)}


def typed_data(primary: str, domain_data: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """The full EIP-712 document: only the types ``primary`` uses."""
    used = ["EIP712Domain", primary] + (["MonthStatement"] if primary == "GreenCredit" else [])
    return {"types": {k: TYPES[k] for k in used}, "primaryType": primary,
            "domain": domain_data, "message": message}


def digest(data: dict[str, Any]) -> bytes:
    """The 32 bytes an EIP-712 signature signs: keccak256(0x19 0x01 ‖ domain ‖ struct)."""
    signable = encode_typed_data(full_message=data)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def did(chain_id: int, address: str) -> str:
    """A blockchain account as a DID (did:pkh, CAIP-10)."""
    return f"did:pkh:eip155:{chain_id}:{to_checksum_address(address)}"


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(key: LocalAccount | bytes, data: dict[str, Any]) -> str:
    signer = key if isinstance(key, LocalAccount) else Account.from_key(key)
    signed = signer.sign_message(encode_typed_data(full_message=data))
    return "0x" + bytes(signed.signature).hex()



_DID = re.compile(r"did:pkh:eip155:([1-9][0-9]{0,18}):(0x[0-9a-fA-F]{40})")
_MAX_PROOF = 64


def parse_holder(value: object) -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise InvalidInput("expected the holder key's 0x address (40 hex digits)", field="holder")
    try:
        return str(to_checksum_address(value))
    except ValueError:
        raise InvalidInput("expected the holder key's 0x address (40 hex digits)",
                           field="holder") from None


def credential_typed_data(*, chain_id: int, contract: str,
                          issuer: str, holder: str, account: bytes, index: int, valid_from: int,
                          valid_until: int, areas: bool,
                          leaves: Sequence[tuple[int, bytes]]) -> dict[str, Any]:
    """The EIP-712 message a credential's issuer signs: who, for whom, until when, and each
    month's leaf hash (the leaf's values, areas included, are what the hash commits to)."""
    return typed_data("GreenCredit", domain(chain_id, contract), {
        "issuer": to_checksum_address(issuer), "holder": to_checksum_address(holder),
        "account": account, "statusIndex": index, "validFrom": valid_from,
        "validUntil": valid_until, "areasDisclosed": areas,
        "statements": [{"period": period, "leaf": leaf} for period, leaf in leaves]})


# -- parsing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Month:
    period: int
    leaf: StatementLeafValues
    areas: list[AreaTotal] | None
    proof: list[bytes]


@dataclass(frozen=True)
class ParsedCredential:
    chain_id: int
    contract: str
    issuer: str
    holder: str
    account: bytes
    index: int
    valid_from: int
    valid_until: int
    areas_disclosed: bool
    months: list[Month]
    signature: bytes

    @property
    def typed(self) -> dict[str, Any]:
        return credential_typed_data(
            chain_id=self.chain_id, contract=self.contract, issuer=self.issuer,
            holder=self.holder, account=self.account, index=self.index,
            valid_from=self.valid_from, valid_until=self.valid_until,
            areas=self.areas_disclosed,
            leaves=[(m.period, m.leaf.leaf_hash()) for m in self.months])

    @property
    def digest(self) -> bytes:
        return digest(self.typed)


@dataclass(frozen=True)
class VerifiedCredential:
    """What a bank may rely on once every check passed."""

    holder: str
    account: bytes
    index: int
    months: list[Month]
    audience: str
    expires: int

    def to_json(self) -> dict[str, Any]:
        return {"verified": True, "holder": self.holder, "statusIndex": self.index,
                "audience": self.audience, "expires": self.expires,
                "totalReductionGrams": str(sum(m.leaf.reduction_grams for m in self.months)),
                "months": [{"month": period_label(m.period),
                            "reductionGrams": str(m.leaf.reduction_grams),
                            "pointsEarned": str(m.leaf.points_earned),
                            "pointsSpent": str(m.leaf.points_spent),
                            "entryCount": str(m.leaf.entry_count),
                            **({"areaTotals": {a.area: str(a.grams) for a in m.areas}}
                               if m.areas is not None else {})} for m in self.months]}


def refuse(check: str, message: str, field: str | None = None) -> VerificationError:
    return VerificationError(message, field=field, check=check)


def required(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
        raise refuse("shape", f"expected {key} as a {kind.__name__}", f"{where}.{key}")
    return obj[key]


def parse_time(text: Any, field: str) -> int:
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    except (TypeError, ValueError):
        raise refuse("shape", "expected a UTC time as YYYY-MM-DDTHH:MM:SSZ", field) from None


def parse_did(text: Any, field: str) -> tuple[int, str]:
    match = _DID.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise refuse("shape", "expected did:pkh:eip155:<chain id>:<0x address>", field)
    return int(match.group(1)), str(to_checksum_address(match.group(2)))


def signature_of(proof: Any, where: str) -> bytes:
    if required(proof, "type", str, where) != PROOF_TYPE:
        raise refuse("shape", f"expected a {PROOF_TYPE} proof", f"{where}.type")
    try:
        return signature_bytes(required(proof, "proofValue", str, where), field=f"{where}.proofValue")
    except InvalidInput as exc:
        raise refuse("shape", exc.message, exc.field) from None


def parse_credential(doc: Any) -> ParsedCredential:
    """The credential's values, its shape checked before any hashing."""
    types = required(doc, "type", list, "credential")
    if CREDENTIAL_TYPE not in types or "VerifiableCredential" not in types:
        raise refuse("shape", f"not a {CREDENTIAL_TYPE}", "credential.type")
    subject = required(doc, "credentialSubject", dict, "credential")
    ledger = required(subject, "ledger", dict, "credentialSubject")
    chain_id = required(ledger, "chainId", int, "credentialSubject.ledger")
    contract = required(ledger, "contract", str, "credentialSubject.ledger")
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", contract):
        raise refuse("shape", "expected a 0x address", "credentialSubject.ledger.contract")
    issuer_chain, issuer = parse_did(doc.get("issuer"), "credential.issuer")
    holder_chain, holder = parse_did(subject.get("id"), "credentialSubject.id")
    if issuer_chain != chain_id or holder_chain != chain_id:
        raise refuse("shape", "issuer and holder DIDs must name the ledger's chain", "credential")
    status = required(doc, "credentialStatus", dict, "credential")
    index_text = required(status, "statusIndex", str, "credentialStatus")
    if not index_text.isdigit() or len(index_text) > 18:
        raise refuse("shape", "expected a decimal index", "credentialStatus.statusIndex")
    areas_disclosed = required(subject, "areasDisclosed", bool, "credentialSubject")
    try:
        account = parse_hex32(subject.get("account"), field="credentialSubject.account")
        months = _months(required(subject, "statements", list, "credentialSubject"), areas_disclosed)
    except InvalidInput as exc:
        raise refuse("shape", exc.message, exc.field) from None
    return ParsedCredential(
        chain_id, str(to_checksum_address(contract)), issuer, holder, account, int(index_text),
        parse_time(doc.get("validFrom"), "credential.validFrom"),
        parse_time(doc.get("validUntil"), "credential.validUntil"), areas_disclosed, months,
        signature_of(doc.get("proof"), "credential.proof"))


def _months(items: list[Any], areas_disclosed: bool) -> list[Month]:
    if not 1 <= len(items) <= MAX_MONTHS:
        raise InvalidInput(f"1 to {MAX_MONTHS} months", field="credentialSubject.statements")
    months = []
    for i, item in enumerate(items):
        where = f"credentialSubject.statements[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput("expected an object", field=where)
        expected = {"month", "leaf", "proof"} | ({"areaTotals"} if areas_disclosed else set())
        if set(item) != expected:
            raise InvalidInput(f"expected exactly {', '.join(sorted(expected))}", field=where)
        proof = item["proof"]
        if not isinstance(proof, list) or len(proof) > _MAX_PROOF:
            raise InvalidInput(f"at most {_MAX_PROOF} hashes", field=f"{where}.proof")
        months.append(Month(
            parse_period(item["month"], field=f"{where}.month"),
            StatementLeafValues.from_json(item["leaf"], field=f"{where}.leaf"),
            areas_from_json(item["areaTotals"], field=f"{where}.areaTotals")
            if areas_disclosed else None,
            [parse_hex32(h, field=f"{where}.proof[{k}]") for k, h in enumerate(proof)]))
    periods = [m.period for m in months]
    if periods != sorted(set(periods)):
        raise InvalidInput("months must be distinct and in order", field="credentialSubject.statements")
    return months


# -- presentation ---------------------------------------------------------------------------

def present(credential: dict[str, Any], holder_key: bytes | LocalAccount, *, nonce: str,
            audience: str, now: int | None = None,
            valid_seconds: int = DEFAULT_PRESENTATION_SECONDS) -> dict[str, Any]:
    """The citizen's answer to a bank's challenge: the credential, signed over with the
    holder key for this nonce and bank, good for ``valid_seconds``."""
    now = int(time.time()) if now is None else now
    if not 1 <= valid_seconds <= MAX_PRESENTATION_SECONDS:
        raise InvalidInput(f"1 to {MAX_PRESENTATION_SECONDS} seconds", field="valid_seconds")
    _check_challenge_text(nonce, "nonce")
    _check_challenge_text(audience, "audience")
    parsed = parse_credential(credential)
    signer = holder_key if isinstance(holder_key, LocalAccount) else Account.from_key(holder_key)
    if signer.address != parsed.holder:
        raise InvalidInput(f"this key is {signer.address}, the credential's holder is "
                           f"{parsed.holder}", field="key")
    data = presentation_typed_data(parsed.digest, chain_id=parsed.chain_id,
                                   contract=parsed.contract, audience=audience, nonce=nonce,
                                   created=now, expires=now + valid_seconds)
    return {"@context": [VC_CONTEXT], "type": ["VerifiablePresentation"],
            "holder": did(parsed.chain_id, parsed.holder),
            "verifiableCredential": [credential],
            "proof": {"type": PROOF_TYPE, "proofPurpose": "authentication",
                      "verificationMethod": did(parsed.chain_id, parsed.holder)
                      + "#blockchainAccountId",
                      "challenge": nonce, "domain": audience, "created": iso(now),
                      "expires": iso(now + valid_seconds), "proofValue": sign(signer, data),
                      "eip712": {k: data[k] for k in ("domain", "types", "primaryType")}}}


def presentation_typed_data(credential_digest: bytes, *, chain_id: int, contract: str,
                            audience: str, nonce: str, created: int, expires: int) -> dict[str, Any]:
    return typed_data("Presentation", domain(chain_id, contract), {
        "credential": credential_digest, "audience": audience, "nonce": nonce,
        "created": created, "expires": expires})


def _check_challenge_text(value: str, field: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or not value.isprintable():
        raise InvalidInput("1 to 200 printable characters", field=field)
