"""Intake's one entry, which both faces call: a submission checked before the write lock
is decided and written in it (:func:`record_submission`).

Its type names the mode:

- :class:`~ledger.intake.signed.SignedSubmission` (partners, over HTTP): checked by
  :func:`~ledger.intake.signed.check_submission` outside the lock; in it, the signer is
  checked again (the partner's key may have changed), a replayed nonce is refused before
  anything is written, and the answer carries the operator's signed receipt.
- :class:`OperatorSubmission` (the CLI's ``submit``, the demo): records the operator
  enters on a partner's behalf, unsigned, so with no nonce, receipt or submissions row.
  :func:`submit_records` prepares and records one in a single call.

Either way one submission is one transaction: every record's outcome is decided in
memory (:func:`~ledger.intake.rules.decide`) and written together, or nothing is.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from ledger.errors import Replayed
from ledger.intake.rules import PreparedRecords, RecordOutcome, decide, prepare_records
from ledger.intake.signed import SignedSubmission, check_signer
from ledger.methodology import SubmissionWindow
from ledger.signing import HEADERS, records_hash, sign_receipt
from ledger.store.intake import IntakeStore
from ledger.store.models import Partner, Submission

STATUSES = ("accepted", "duplicate", "rejected")


@dataclass(frozen=True)
class OperatorSubmission:
    """Records the operator enters on a partner's behalf, unsigned, checked on their own."""

    prepared: PreparedRecords
    now: int

    @classmethod
    def prepare(cls, records: Sequence[object], *, partner: Partner, now: int | None = None,
                window: SubmissionWindow | None = None) -> OperatorSubmission:
        """``window``: records that happened before it are rejected (the CLI passes the
        methodology's, as partners' signed submissions have it)."""
        now = int(time.time()) if now is None else now
        return cls(prepare_records(records, kind=partner.kind, address=partner.signing_address,
                                   now=now, window=window), now)


@dataclass(frozen=True)
class Receipt:
    """A signed submission's identity and the operator's receipt for it."""

    submission_id: str
    digest: bytes
    nonce: bytes
    signed: dict[str, Any]


@dataclass(frozen=True)
class RecordedSubmission:
    """A submission decided and written: every record's outcome, and for a signed one
    the operator's receipt."""

    outcomes: list[RecordOutcome] = field(repr=False)
    receipt: Receipt | None = None

    def count(self, status: str) -> int:
        return self.counts[status]

    @cached_property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for o in self.outcomes:
            counts[o.status] += 1
        return counts

    @cached_property
    def grams(self) -> int:
        return sum(o.reduction_grams for o in self.outcomes if o.status == "accepted")

    def answer(self) -> dict[str, Any]:
        """The partner's answer to a signed submission: every record's outcome and the
        receipt. Built after the write lock is released (a large submission's list costs
        milliseconds)."""
        if self.receipt is None:
            raise ValueError("an operator's submission has no receipt to answer with")
        r = self.receipt
        return {"submissionId": r.submission_id, "recordsHash": "0x" + r.digest.hex(),
                "nonce": "0x" + r.nonce.hex(), **self.counts, "reductionGrams": self.grams,
                "records": [outcome_json(o) for o in self.outcomes], "receipt": r.signed}


def record_submission(session: Session, submission: SignedSubmission | OperatorSubmission, *,
                      partner: Partner, operator_key: bytes | None = None,
                      anchor_within: int = 0) -> RecordedSubmission:
    """Decide and write a checked submission in a write-locked session, for the partner
    as it is now. A signed one is refused if its signer is no longer the partner's or its
    nonce was used before, and gets a receipt signed with ``operator_key`` promising an
    anchor within ``anchor_within`` seconds."""
    store = IntakeStore(session)
    if isinstance(submission, OperatorSubmission):
        return RecordedSubmission(store.race_free(lambda: _decide_and_write(
            store, submission.prepared, partner=partner, now=submission.now,
            submission_id=None)))
    if operator_key is None:
        raise TypeError("a signed submission needs the operator's key for its receipt")
    check_signer(partner, submission.signer)

    def attempt() -> RecordedSubmission:
        _refuse_replay(store, partner.id, submission.envelope.nonce)
        submission_id = secrets.token_bytes(32)  # its records keep these bytes; shown in hex
        outcomes = _decide_and_write(store, submission.prepared, partner=partner,
                                     now=submission.now, submission_id=submission_id)
        receipt = _receipt(submission, submission_id, partner=partner,
                           operator_key=operator_key, anchor_within=anchor_within,
                           accepted=_accepted_hashes(outcomes))
        recorded = RecordedSubmission(outcomes, receipt)
        store.add_submission(_submission_row(submission, recorded, partner_id=partner.id))
        return recorded

    return store.race_free(attempt)


def submit_records(session: Session, *, partner: Partner, records: Sequence[object],
                   now: int | None = None, window: SubmissionWindow | None = None
                   ) -> RecordedSubmission:
    """The operator's mode in one call: prepare the records (see
    :meth:`OperatorSubmission.prepare`) and record them, in a write-locked session."""
    submission = OperatorSubmission.prepare(records, partner=partner, now=now, window=window)
    return record_submission(session, submission, partner=partner)


def _decide_and_write(store: IntakeStore, prepared: PreparedRecords, *, partner: Partner,
                      now: int, submission_id: bytes | None) -> list[RecordOutcome]:
    """Every record's outcome, decided over what the ledger knows and written."""
    prepared = prepared.for_partner(partner.kind, partner.signing_address)
    snapshot = store.load_snapshot(partner.id, prepared)
    decision = decide(snapshot, prepared, partner_id=partner.id, now=now,
                      submission_id=submission_id)
    store.write(snapshot, decision)
    return decision.outcomes


def _accepted_hashes(outcomes: list[RecordOutcome]) -> list[bytes]:
    """The accepted records' hashes, in submission order (what a receipt commits to)."""
    return [o.record_hash for o in outcomes if o.status == "accepted" and o.record_hash]


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


def _refuse_replay(store: IntakeStore, partner_id: int, nonce: bytes) -> None:
    """Raise :class:`Replayed` if this partner has used ``nonce`` before. Two racing
    requests may both pass here; the table's unique index on (partner, nonce) stops the
    later at its write, and its next try (:meth:`IntakeStore.race_free`) is refused here."""
    earlier = store.earlier_submission(partner_id, nonce)
    if earlier is not None:
        submission_id, received_at = earlier
        raise Replayed(f"this nonce was used by submission {submission_id}, received at "
                       f"{received_at}: a signed submission is accepted once; sign new "
                       "records with a new nonce", field=HEADERS["nonce"])


def _receipt(submission: SignedSubmission, submission_id: bytes, *, partner: Partner,
             operator_key: bytes, anchor_within: int, accepted: list[bytes]) -> Receipt:
    signed = sign_receipt(operator_key, chain_id=submission.chain_id,
                          contract=submission.contract,
                          submission_id=submission_id, partner=partner.code,
                          accepted_hash=records_hash(accepted), accepted=len(accepted),
                          anchor_by=submission.now + anchor_within)
    return Receipt("0x" + submission_id.hex(), submission.digest, submission.envelope.nonce, signed)


def _submission_row(submission: SignedSubmission, recorded: RecordedSubmission, *,
                    partner_id: int) -> Submission:
    receipt, envelope = recorded.receipt, submission.envelope
    assert receipt is not None
    return Submission(id=receipt.submission_id, partner_id=partner_id,
                      records_hash=submission.digest, record_count=submission.count,
                      signature=envelope.signature, nonce=envelope.nonce,
                      deadline=envelope.deadline, grams=recorded.grams,
                      receipt=json.dumps(receipt.signed), received_at=submission.now,
                      **recorded.counts)
