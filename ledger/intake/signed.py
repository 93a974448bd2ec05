"""A partner's signed submission, checked before the write lock: the EIP-712 signature
over the records' hashes, its nonce's shape and its deadline.

Checking (parse, canonicalise, quantify, recover the signer) needs no database, so
several workers check submissions in parallel; only deciding and writing take turns
(:func:`ledger.intake.service.record_submission`, which also refuses a replayed nonce).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import rfc8785

from ledger.errors import InvalidInput, RetiredSigningVersion, WrongSigner
from ledger.hashing import keccak
from ledger.intake.rules import PreparedRecords, prepare_records
from ledger.methodology import submission_window
from ledger.records import canonical_json
from ledger.signing import (
    CLOCK_SKEW_SECONDS,
    DOMAIN_VERSION,
    HEADERS,
    MAX_VALIDITY_SECONDS,
    records_hash,
    retired_submission_signer,
    signature_bytes,
    submission_signer,
)
from ledger.store.models import Partner

_RETIRED = (f"Submission v1 is retired: sign Submission(partner, recordsHash, count, nonce, "
            f"deadline) in domain version {DOMAIN_VERSION} with the ledger's contract as "
            f"verifyingContract, and send the nonce and deadline as {HEADERS['nonce']} and "
            f"{HEADERS['deadline']} (GET /v1/info, docs/signing.md)")
_NONCE = re.compile(r"0x[0-9a-fA-F]{64}")
_DEADLINE = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True)
class Envelope:
    """What travels beside the records: the signature, its nonce and deadline, checked
    for shape and time (not yet who signed)."""

    signature: str
    nonce: bytes
    deadline: int

    @classmethod
    def from_headers(cls, *, signature: str | None, nonce: str | None, deadline: str | None,
                     now: int) -> Envelope:
        if not signature:
            raise InvalidInput("the submission must be signed (EIP-712 over the records' "
                               "hash, nonce and deadline)", field=HEADERS["signature"])
        signature_bytes(signature, field=HEADERS["signature"])  # shape and EIP-2, cheaply first
        if nonce is None:
            raise RetiredSigningVersion(_RETIRED, field=HEADERS["nonce"])
        if not _NONCE.fullmatch(nonce):
            raise InvalidInput("expected 0x and 64 hex digits: 32 random bytes, new for each "
                               "submission", field=HEADERS["nonce"])
        if deadline is None:
            raise RetiredSigningVersion(_RETIRED, field=HEADERS["deadline"])
        if not _DEADLINE.fullmatch(deadline) or int(deadline) >= 2**64:
            raise InvalidInput("expected unix seconds (a uint64)", field=HEADERS["deadline"])
        at = int(deadline)
        if at < now:
            raise InvalidInput(f"expired {now - at} s ago (at {at}; the ledger's clock says "
                               f"{now}): sign the submission again", field=HEADERS["deadline"])
        if at > now + MAX_VALIDITY_SECONDS + CLOCK_SKEW_SECONDS:
            raise InvalidInput(f"more than {MAX_VALIDITY_SECONDS} s ahead of the ledger's "
                               f"clock ({now})", field=HEADERS["deadline"])
        return cls(signature, bytes.fromhex(nonce[2:]), at)


def record_hash(raw: object, index: int) -> bytes:
    """keccak256 of one record's RFC 8785 JSON, as the partner computes it to sign."""
    try:
        return keccak(canonical_json(raw))
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise InvalidInput(f"record {index} cannot be canonicalised: {exc}",
                           field=f"records[{index}]") from exc


def record_hashes(records: Sequence[object]) -> list[bytes]:
    return [record_hash(raw, i) for i, raw in enumerate(records)]


@dataclass(frozen=True)
class SignedSubmission:
    """A submission whose signature is the partner's: its records parsed and assessed on
    their own, not yet decided against the ledger."""

    prepared: PreparedRecords
    count: int  # records in the submission, well-formed or not
    digest: bytes  # the records' hash the partner signed
    envelope: Envelope
    signer: bytes
    now: int
    chain_id: int  # the domain it was signed in, which the receipt is signed in too
    contract: str


def check_submission(*, partner: Partner, records: Sequence[object], signature: str | None,
                     nonce: str | None, deadline: str | None, chain_id: int, contract: str,
                     now: int | None = None,
                     pause: Callable[[], object] | None = None) -> SignedSubmission:
    """Parse and canonicalise every record and check the EIP-712 signature over them, made
    for this ledger (``chain_id``, ``contract``) and not expired (no database: safe to run
    before the write lock). Records older than the submission window are rejected.
    ``pause``: see :func:`~ledger.intake.rules.prepare_records`."""
    now = int(time.time()) if now is None else now
    if not records:
        raise InvalidInput("a submission holds at least one record", field="records")
    envelope = Envelope.from_headers(signature=signature, nonce=nonce, deadline=deadline,
                                     now=now)
    # Canonicalises every well-formed record once, and quantifies it.
    prepared = prepare_records(records, kind=partner.kind, address=partner.signing_address,
                               now=now, window=submission_window(now), pause=pause)
    known = {index: record.record_hash for index, record, _ in prepared.good}
    digest = records_hash([known.get(i) or record_hash(raw, i) for i, raw in enumerate(records)])
    signer = submission_signer(envelope.signature, chain_id=chain_id, contract=contract,
                               partner=partner.code, digest=digest, count=len(records),
                               nonce=envelope.nonce, deadline=envelope.deadline)
    if signer != partner.signing_address and retired_submission_signer(
            envelope.signature, chain_id=chain_id, partner=partner.code, digest=digest,
            count=len(records)) == partner.signing_address:
        raise RetiredSigningVersion(_RETIRED, field=HEADERS["signature"])
    check_signer(partner, signer, digest=digest, count=len(records))
    return SignedSubmission(prepared, len(records), digest, envelope, signer, now, chain_id,
                            contract)


def check_signer(partner: Partner, signer: bytes, *, digest: bytes | None = None,
                 count: int | None = None) -> None:
    """Raise :class:`WrongSigner` unless ``signer`` is the partner's registered address.
    With the records' ``digest`` and ``count``, the message gives the ledger's own
    recordsHash, so a partner can tell which part of what it signed differs: the records'
    hash (then the records were hashed differently), else the key, the partner code or the
    domain."""
    if signer != partner.signing_address:
        computed = (f"; the ledger computed recordsHash 0x{digest.hex()} over {count} records "
                    "(if yours differs, the records were hashed differently: docs/signing.md)"
                    if digest is not None else "")
        raise WrongSigner(f"recovers to 0x{signer.hex()}, not the partner's registered address "
                          f"0x{partner.signing_address.hex()}{computed}; with the same "
                          f"recordsHash, check the key, the partner code {partner.code!r} and "
                          "the domain (GET /v1/info)", field=HEADERS["signature"])
