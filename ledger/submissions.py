"""A signed partner submission: check the partner's EIP-712 signature over the records,
decide every record, and answer with the operator's signed receipt."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import rfc8785
from sqlalchemy.orm import Session

from ledger.credentials import Forbidden
from ledger.errors import InvalidInput
from ledger.hashing import keccak
from ledger.ingest import parse_records, submit_records
from ledger.models import Partner, Submission
from ledger.signing import records_hash, sign_receipt, submission_signer


class WrongSigner(Forbidden):
    """The submission is signed, but not by the partner's registered address."""

    code = "wrong-signer"


def record_hash(raw: object, index: int) -> bytes:
    """keccak256 of one record's RFC 8785 JSON, as the partner computes it to sign."""
    try:
        return keccak(rfc8785.dumps(raw))  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        raise InvalidInput(f"record {index} cannot be canonicalised: {exc}",
                           field=f"records[{index}]") from exc


def record_hashes(records: Sequence[object]) -> list[bytes]:
    return [record_hash(raw, i) for i, raw in enumerate(records)]


def accept_submission(session: Session, *, partner: Partner, records: Sequence[object],
                      signature: str | None, chain_id: int, operator_key: bytes,
                      anchor_within: int, now: int | None = None) -> dict[str, Any]:
    """Verify, decide and record one submission; return the answer with its receipt."""
    now = int(time.time()) if now is None else now
    if not records:
        raise InvalidInput("a submission holds at least one record", field="records")
    if not signature:
        raise InvalidInput("the submission must be signed (EIP-712 over the records' hash)",
                           field="X-Signature")
    parsed = parse_records(records, now=now)  # canonicalises every well-formed record once
    known = {index: record.record_hash for index, record in parsed[0]}
    digest = records_hash([known.get(i) or record_hash(raw, i) for i, raw in enumerate(records)])
    signer = submission_signer(signature, chain_id=chain_id, partner=partner.code, digest=digest,
                               count=len(records))
    if signer != partner.signing_address:
        raise WrongSigner(f"signed by 0x{signer.hex()}, not the partner's registered address",
                          field="X-Signature")
    submission_id = "0x" + secrets.token_hex(32)
    result = submit_records(session, partner=partner, records=records, now=now,
                            submission_id=submission_id, parsed=parsed)
    accepted = result.accepted_hashes()
    receipt = sign_receipt(operator_key, chain_id=chain_id,
                           submission_id=bytes.fromhex(submission_id[2:]), partner=partner.code,
                           accepted_hash=records_hash(accepted), accepted=len(accepted),
                           anchor_by=now + anchor_within)
    session.add(Submission(id=submission_id, partner_id=partner.id, records_hash=digest,
                           record_count=len(records), signature=signature,
                           accepted=result.count("accepted"), duplicate=result.count("duplicate"),
                           rejected=result.count("rejected"), grams=result.grams,
                           receipt=json.dumps(receipt), received_at=now))
    outcomes = []
    for o in result.outcomes:
        item = {k: v for k, v in asdict(o).items() if v is not None and k != "record_hash"}
        outcomes.append(item)
    return {"submissionId": submission_id, "recordsHash": "0x" + digest.hex(),
            "accepted": result.count("accepted"), "duplicate": result.count("duplicate"),
            "rejected": result.count("rejected"), "reductionGrams": result.grams,
            "records": outcomes, "receipt": receipt}
