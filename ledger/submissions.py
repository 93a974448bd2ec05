"""A signed partner submission: check the partner's EIP-712 signature over the records,
decide every record, and answer with the operator's signed receipt.

Checking (parse, canonicalise, recover the signer, the deadline) needs no database and
runs before the write lock is taken, so several workers check submissions in parallel;
only deciding and writing take turns. A submission's nonce is used once per partner: a
replay is refused in the lock, before anything is written (one indexed lookup)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.credentials import Forbidden
from ledger.errors import Conflict, InvalidInput
from ledger.hashing import keccak
from ledger.ingest import (
    PreparedRecords,
    RecordOutcome,
    lock_partner,
    prepare_records,
    submit_records,
)
from ledger.methodology import submission_window
from ledger.models import Partner, Submission
from ledger.records import canonical_json
from ledger.signing import (
    CLOCK_SKEW_SECONDS,
    DOMAIN_VERSION,
    HEADERS,
    MAX_VALIDITY_SECONDS,
    records_hash,
    retired_submission_signer,
    sign_receipt,
    signature_bytes,
    submission_signer,
)


class WrongSigner(Forbidden):
    """The submission is signed, but not by the partner's registered address."""

    code = "wrong-signer"


class RetiredSigningVersion(InvalidInput):
    """A submission signed as version 1 of the struct (no nonce, deadline or contract)."""

    code = "retired-signing-version"


class Replayed(Conflict):
    """A submission whose nonce this partner has used before."""

    code = "replayed-submission"


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
class CheckedSubmission:
    """A submission whose signature is the partner's: its records parsed and assessed on
    their own, not yet decided against the ledger."""

    records: Sequence[object]
    prepared: PreparedRecords
    digest: bytes
    envelope: Envelope
    signer: bytes
    now: int
    chain_id: int  # the domain it was signed in, which the receipt is signed in too
    contract: str


def check_submission(*, partner: Partner, records: Sequence[object], signature: str | None,
                     nonce: str | None, deadline: str | None, chain_id: int, contract: str,
                     now: int | None = None,
                     pause: Callable[[], object] | None = None) -> CheckedSubmission:
    """Parse and canonicalise every record and check the EIP-712 signature over them, made
    for this ledger (``chain_id``, ``contract``) and not expired (no database: safe to run
    before the write lock). Records older than the submission window are rejected.
    ``pause``: see :func:`~ledger.ingest.prepare_records`."""
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
    _check_signer(partner, signer)
    return CheckedSubmission(records, prepared, digest, envelope, signer, now, chain_id, contract)


def _check_signer(partner: Partner, signer: bytes) -> None:
    if signer != partner.signing_address:
        raise WrongSigner(f"signed by 0x{signer.hex()}, not the partner's registered address "
                          "(or signed for another ledger: see GET /v1/info for its domain)",
                          field=HEADERS["signature"])


def refuse_replay(session: Session, partner_id: int, nonce: bytes) -> None:
    """Raise :class:`Replayed` if this partner has used ``nonce`` before. Call it with the
    partner locked (:func:`~ledger.ingest.lock_partner`), so two racing requests cannot both
    pass; the table's unique index on (partner, nonce) holds it too."""
    earlier = session.execute(select(Submission.id, Submission.received_at).where(
        Submission.partner_id == partner_id, Submission.nonce == nonce)).first()
    if earlier is not None:
        raise Replayed(f"this nonce was used by submission {earlier.id}, received at "
                       f"{earlier.received_at}: a signed submission is accepted once; sign new "
                       "records with a new nonce", field=HEADERS["nonce"])


@dataclass(frozen=True)
class RecordedSubmission:
    """A submission decided and written, with the operator's receipt."""

    submission_id: str
    digest: bytes
    nonce: bytes
    counts: dict[str, int]
    grams: int
    receipt: dict[str, Any]
    outcomes: list[RecordOutcome] = field(repr=False)

    def answer(self) -> dict[str, Any]:
        """The partner's answer: every record's outcome and the receipt. Built after the
        write lock is released (a large submission's list costs milliseconds)."""
        return {"submissionId": self.submission_id, "recordsHash": "0x" + self.digest.hex(),
                "nonce": "0x" + self.nonce.hex(), **self.counts, "reductionGrams": self.grams,
                "records": [outcome_json(o) for o in self.outcomes], "receipt": self.receipt}


def record_submission(session: Session, checked: CheckedSubmission, *, partner: Partner,
                      operator_key: bytes, anchor_within: int) -> RecordedSubmission:
    """Decide and write a checked submission in a write-locked session, and sign the
    operator's receipt. A replayed nonce is refused before anything is written."""
    _check_signer(partner, checked.signer)  # the partner's key may have changed meanwhile
    lock_partner(session, partner.id)
    refuse_replay(session, partner.id, checked.envelope.nonce)
    now = checked.now
    submission_id = "0x" + secrets.token_hex(32)
    result = submit_records(session, partner=partner, records=checked.records, now=now,
                            submission_id=submission_id, prepared=checked.prepared)
    accepted = result.accepted_hashes()
    receipt = sign_receipt(operator_key, chain_id=checked.chain_id, contract=checked.contract,
                           submission_id=bytes.fromhex(submission_id[2:]), partner=partner.code,
                           accepted_hash=records_hash(accepted), accepted=len(accepted),
                           anchor_by=now + anchor_within)
    counts = {status: result.count(status) for status in ("accepted", "duplicate", "rejected")}
    envelope = checked.envelope
    session.add(Submission(id=submission_id, partner_id=partner.id, records_hash=checked.digest,
                           record_count=len(checked.records), signature=envelope.signature,
                           nonce=envelope.nonce, deadline=envelope.deadline,
                           grams=result.grams, receipt=json.dumps(receipt), received_at=now,
                           **counts))
    return RecordedSubmission(submission_id, checked.digest, envelope.nonce, counts,
                              result.grams, receipt, result.outcomes)


def outcome_json(o: RecordOutcome) -> dict[str, Any]:
    """A record's outcome as the answer shows it: fields that are set, no record hash."""
    item: dict[str, Any] = {"index": o.index}
    for name, value in (("record_id", o.record_id), ("status", o.status), ("field", o.field),
                        ("reason", o.reason), ("entry_id", o.entry_id)):
        if value is not None:
            item[name] = value
    item.update(reduction_grams=o.reduction_grams, points=o.points, capped=o.capped)
    if o.duplicate_of is not None:
        item["duplicate_of"] = o.duplicate_of
    return item


def accept_submission(session: Session, *, partner: Partner, records: Sequence[object],
                      signature: str | None, nonce: str | None, deadline: str | None,
                      chain_id: int, contract: str, operator_key: bytes, anchor_within: int,
                      now: int | None = None) -> dict[str, Any]:
    """Verify, decide and record one submission; return the answer with its receipt."""
    checked = check_submission(partner=partner, records=records, signature=signature,
                               nonce=nonce, deadline=deadline, chain_id=chain_id,
                               contract=contract, now=now)
    return record_submission(session, checked, partner=partner, operator_key=operator_key,
                             anchor_within=anchor_within).answer()
