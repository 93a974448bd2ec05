"""The bank's check of a green-credit presentation, against the chain alone.

A straight path, one check after another, each failure a :class:`VerificationError` whose
``check`` names it (docs/green-credit.md lists them): ``shape``, ``ledger``, ``subject``,
``statement``, ``areas``, ``issuer``, ``validity``, ``holder``, ``challenge``,
``audience``, ``expiry``, ``revocation``. Nothing is taken from the operator's API: the
statement roots, the issuer's role and the revocation bits are read from the contract the
bank pinned, through a :class:`~ledger.statements.StatementReader`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from ledger.errors import InvalidProof
from ledger.green_credit import (
    MAX_PRESENTATION_SECONDS,
    ParsedCredential,
    VerifiedCredential,
    parse_credential,
    parse_did,
    parse_time,
    presentation_typed_data,
    refuse,
    required,
    signature_of,
)
from ledger.merkle import verify_inclusion
from ledger.statements import (
    StatementReader,
    areas_commitment,
    period_label,
)

#: How far a presentation's creation may lie in the verifier's future (clock skew).
CLOCK_SKEW = 300


def verify_presentation(doc: Any, *, reader: StatementReader, challenge: str, audience: str,
                        now: int, nonce_seen: Callable[[str], bool] | None = None
                        ) -> VerifiedCredential:
    """Check a presentation for the bank that sent ``challenge`` as ``audience``, at ``now``.

    ``nonce_seen``: the bank's memory of challenges already answered (called once the rest
    holds); a presentation answering one again is refused as a replay."""
    proof = required(doc, "proof", dict, "presentation")
    creds = required(doc, "verifiableCredential", list, "presentation")
    if len(creds) != 1:
        raise refuse("shape", "expected exactly one credential", "presentation.verifiableCredential")
    credential = parse_credential(creds[0])
    presented_by = parse_did(doc.get("holder"), "presentation.holder")[1]
    holder_signature = signature_of(proof, "presentation.proof")
    created = parse_time(proof.get("created"), "presentation.proof.created")
    expires = parse_time(proof.get("expires"), "presentation.proof.expires")
    nonce = required(proof, "challenge", str, "presentation.proof")
    told_audience = required(proof, "domain", str, "presentation.proof")

    _check_ledger(credential, reader)
    _check_statements(credential, reader)
    _check_issuer(credential, reader)
    if not credential.valid_from <= now < credential.valid_until:
        raise refuse("validity", f"the credential is valid from {credential.valid_from} until "
                      f"{credential.valid_until}, not at {now}", "credential.validUntil")
    typed = presentation_typed_data(credential.digest, chain_id=credential.chain_id,
                                    contract=credential.contract, audience=told_audience,
                                    nonce=nonce, created=created, expires=expires)
    signer = Account.recover_message(encode_typed_data(full_message=typed),
                                     signature=holder_signature)
    if signer != credential.holder or presented_by != credential.holder:
        raise refuse("holder", f"the presentation is signed by {signer}, the credential's "
                      f"holder is {credential.holder}", "presentation.proof.proofValue")
    if nonce != challenge:
        raise refuse("challenge", f"the presentation answers challenge {nonce!r}, not "
                      f"{challenge!r}", "presentation.proof.challenge")
    if told_audience != audience:
        raise refuse("audience", f"the presentation is for {told_audience!r}, not {audience!r}",
                      "presentation.proof.domain")
    if not (created <= now + CLOCK_SKEW and now < expires
            and expires - created <= MAX_PRESENTATION_SECONDS):
        raise refuse("expiry", f"the presentation was good from {created} to {expires} "
                      f"(at most {MAX_PRESENTATION_SECONDS} s), not at {now}",
                      "presentation.proof.expires")
    if reader.credential_revoked(credential.index):
        raise refuse("revocation", f"credential {credential.index} is revoked on chain",
                      "credentialStatus.statusIndex")
    if nonce_seen is not None and nonce_seen(nonce):
        raise refuse("challenge", f"challenge {nonce!r} was answered before: a replay",
                      "presentation.proof.challenge")
    return VerifiedCredential(credential.holder, credential.account, credential.index,
                              credential.months, audience, expires)


def _check_ledger(credential: ParsedCredential, reader: StatementReader) -> None:
    if (credential.chain_id != reader.chain_id
            or credential.contract.lower() != reader.contract_address.lower()):
        raise refuse("ledger", f"the credential names chain {credential.chain_id} contract "
                      f"{credential.contract}; the pinned ledger is chain {reader.chain_id} "
                      f"contract {reader.contract_address}", "credentialSubject.ledger")


def _check_statements(credential: ParsedCredential, reader: StatementReader) -> None:
    for m in credential.months:
        label = period_label(m.period)
        if m.leaf.account != credential.account:
            raise refuse("subject", f"{label}'s leaf is account 0x{m.leaf.account.hex()}, the "
                          f"credential's is 0x{credential.account.hex()}", "leaf.account")
        if m.leaf.period != m.period:
            raise refuse("statement", f"the leaf listed under {label} is "
                          f"{period_label(m.leaf.period)}'s", "leaf.period")
        root = reader.statement_root(m.period)
        if root is None:
            raise refuse("statement", f"no statement of {label} is anchored on chain", "month")
        try:
            verify_inclusion(m.leaf.leaf_hash(), m.proof, root)
        except InvalidProof as exc:
            raise refuse("statement", f"{label}: {exc.message}", "proof") from None
        if m.areas is not None and areas_commitment(m.areas) != m.leaf.areas:
            raise refuse("areas", f"{label}'s area totals are not the ones its leaf commits to",
                          "areaTotals")


def _check_issuer(credential: ParsedCredential, reader: StatementReader) -> None:
    signable = encode_typed_data(full_message=credential.typed)
    signer = Account.recover_message(signable, signature=credential.signature)
    if signer != credential.issuer:
        raise refuse("issuer", f"the credential is signed by {signer}, not by its issuer "
                      f"{credential.issuer}", "credential.proof.proofValue")
    if not reader.is_issuer(signer):
        raise refuse("issuer", f"{signer} does not hold ISSUER_ROLE on the pinned contract",
                      "credential.issuer")
