"""A signed partner submission: check the partner's EIP-712 signature over the records,
decide every record, and answer with the operator's signed receipt.

Checking (parse, canonicalise, recover the signer) needs no database and runs before
the write lock is taken, so several workers check submissions in parallel; only deciding
and writing take turns."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from sqlalchemy.orm import Session

from ledger.credentials import Forbidden
from ledger.errors import InvalidInput
from ledger.hashing import keccak
from ledger.ingest import PreparedRecords, RecordOutcome, prepare_records, submit_records
from ledger.models import Partner, Submission
from ledger.records import canonical_json
from ledger.signing import records_hash, sign_receipt, submission_signer


class WrongSigner(Forbidden):
    """The submission is signed, but not by the partner's registered address."""

    code = "wrong-signer"


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
    signature: str
    signer: bytes
    now: int


def check_submission(*, partner: Partner, records: Sequence[object], signature: str | None,
                     chain_id: int, now: int | None = None,
                     pause: Callable[[], object] | None = None) -> CheckedSubmission:
    """Parse and canonicalise every record and check the EIP-712 signature over them
    (no database: safe to run before the write lock). ``pause``: see
    :func:`~ledger.ingest.prepare_records`."""
    now = int(time.time()) if now is None else now
    if not records:
        raise InvalidInput("a submission holds at least one record", field="records")
    if not signature:
        raise InvalidInput("the submission must be signed (EIP-712 over the records' hash)",
                           field="X-Signature")
    # Canonicalises every well-formed record once, and quantifies it.
    prepared = prepare_records(records, kind=partner.kind, address=partner.signing_address,
                               now=now, pause=pause)
    known = {index: record.record_hash for index, record, _ in prepared.good}
    digest = records_hash([known.get(i) or record_hash(raw, i) for i, raw in enumerate(records)])
    signer = submission_signer(signature, chain_id=chain_id, partner=partner.code, digest=digest,
                               count=len(records))
    _check_signer(partner, signer)
    return CheckedSubmission(records, prepared, digest, signature, signer, now)


def _check_signer(partner: Partner, signer: bytes) -> None:
    if signer != partner.signing_address:
        raise WrongSigner(f"signed by 0x{signer.hex()}, not the partner's registered address",
                          field="X-Signature")


@dataclass(frozen=True)
class RecordedSubmission:
    """A submission decided and written, with the operator's receipt."""

    submission_id: str
    digest: bytes
    counts: dict[str, int]
    grams: int
    receipt: dict[str, Any]
    outcomes: list[RecordOutcome] = field(repr=False)

    def answer(self) -> dict[str, Any]:
        """The partner's answer: every record's outcome and the receipt. Built after the
        write lock is released (a large submission's list costs milliseconds)."""
        return {"submissionId": self.submission_id, "recordsHash": "0x" + self.digest.hex(),
                **self.counts, "reductionGrams": self.grams,
                "records": [outcome_json(o) for o in self.outcomes], "receipt": self.receipt}


def record_submission(session: Session, checked: CheckedSubmission, *, partner: Partner,
                      chain_id: int, operator_key: bytes,
                      anchor_within: int) -> RecordedSubmission:
    """Decide and write a checked submission in a write-locked session, and sign the
    operator's receipt."""
    _check_signer(partner, checked.signer)  # the partner's key may have changed meanwhile
    now = checked.now
    submission_id = "0x" + secrets.token_hex(32)
    result = submit_records(session, partner=partner, records=checked.records, now=now,
                            submission_id=submission_id, prepared=checked.prepared)
    accepted = result.accepted_hashes()
    receipt = sign_receipt(operator_key, chain_id=chain_id,
                           submission_id=bytes.fromhex(submission_id[2:]), partner=partner.code,
                           accepted_hash=records_hash(accepted), accepted=len(accepted),
                           anchor_by=now + anchor_within)
    counts = {status: result.count(status) for status in ("accepted", "duplicate", "rejected")}
    session.add(Submission(id=submission_id, partner_id=partner.id, records_hash=checked.digest,
                           record_count=len(checked.records), signature=checked.signature,
                           grams=result.grams, receipt=json.dumps(receipt), received_at=now,
                           **counts))
    return RecordedSubmission(submission_id, checked.digest, counts, result.grams, receipt,
                              result.outcomes)


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
                      signature: str | None, chain_id: int, operator_key: bytes,
                      anchor_within: int, now: int | None = None) -> dict[str, Any]:
    """Verify, decide and record one submission; return the answer with its receipt."""
    checked = check_submission(partner=partner, records=records, signature=signature,
                               chain_id=chain_id, now=now)
    return record_submission(session, checked, partner=partner, chain_id=chain_id,
                             operator_key=operator_key, anchor_within=anchor_within).answer()
