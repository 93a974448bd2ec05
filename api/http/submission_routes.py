"""Partners' routes: signed submissions of records, and their history."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.http.bodies import read_body
from api.http.deps import PartnerDep, SessionDep, StateDep
from api.http.responses import JSON, NDJSON
from api.http.schemas import (
    RECORDS,
    Limit,
    SubmissionAnswer,
    SubmissionDetail,
    SubmissionId,
    SubmissionSummary,
    body,
    ok,
    problems,
    ref,
)
from ledger import views
from ledger.errors import InvalidInput, UnsupportedMediaType
from ledger.intake.service import record_submission
from ledger.intake.signed import SignedSubmission, check_submission
from ledger.json_input import parse_json, parse_ndjson
from ledger.store.models import Partner

router = APIRouter(prefix="/v1")


def _records_from_body(body: bytes, content_type: str, limit: int) -> list[object]:
    kind = content_type.split(";")[0].strip().lower()
    if kind == NDJSON:
        return parse_ndjson(body, field="body", max_bytes=limit)
    if kind != JSON:
        raise UnsupportedMediaType(f"send {JSON} (an array of records) or {NDJSON}, "
                                   f"not {kind or 'no Content-Type'}", field="content-type")
    data = parse_json(body, field="body", max_bytes=limit)
    if not isinstance(data, list):
        raise InvalidInput("expected a JSON array of records (or NDJSON)", field="body")
    return data


_SUBMISSION_BODY = body(RECORDS, ndjson=True, description="the records: a JSON array, or "
                        "NDJSON (one record per line)")


@router.post("/submissions", tags=["partners"], openapi_extra=_SUBMISSION_BODY,
             response_model=None, responses=ok(
                 SubmissionAnswer, "every record's outcome and the operator's signed receipt",
                 problems(401, 403, 409, 415, 422, 503,
                          conflict="The nonce was used before (`replayed-submission`)"),
                 headers={"Server-Timing": {"description": "check, wait, locked, commit, "
                                                           "answer (ms)",
                                            "schema": {"type": "string"}}}))
async def submit(request: Request, state: StateDep, who: PartnerDep,
                 x_signature: Annotated[str | None, Header()] = None,
                 x_nonce: Annotated[str | None, Header()] = None,
                 x_deadline: Annotated[str | None, Header()] = None) -> Response:
    """Submit records (JSON array or NDJSON), signed with EIP-712 by the partner's key:
    ``Submission(partner, recordsHash, count, nonce, deadline)`` in the domain
    ``GET /v1/info`` publishes, the nonce (32 random bytes, used once) and deadline (unix
    seconds, at most an hour ahead) in ``X-Nonce`` and ``X-Deadline`` (docs/signing.md)."""
    settings = state.container.settings
    body = await read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "")

    # Blocking work, off the event loop. Parsing and the signature need no lock, so
    # workers do them in parallel; deciding and writing hold the write lock.
    # Where the time went, for the partner and the benchmark (W3C Server-Timing, ms).
    clock: dict[str, float] = {}

    def check() -> SignedSubmission:
        started = time.perf_counter()
        records = _records_from_body(body, content_type, settings.max_body_bytes)
        with state.container.db.session() as s:
            partner = s.get_one(Partner, who.partner_id)
        checked = check_submission(partner=partner, records=records, signature=x_signature,
                                   nonce=x_nonce, deadline=x_deadline, chain_id=state.chain_id,
                                   contract=state.anchor.contract_address,
                                   pause=state.decide_first.pause)
        clock["check"] = time.perf_counter() - started
        return checked

    def decide(checked: SignedSubmission) -> bytes:
        started = time.perf_counter()
        with (state.decide_first.deciding() as begin,
              state.container.db.session(write_lock=True) as s):
            begin()  # the lock is ours: this process's checks wait until it is released
            locked = time.perf_counter()
            recorded = record_submission(s, checked, partner=s.get_one(Partner, who.partner_id),
                                         operator_key=bytes(state.container.signer.key),
                                         anchor_within=int(2 * settings.seal_interval + 600))
            decided = time.perf_counter()
        committed = time.perf_counter()  # and the lock released
        clock.update(wait=locked - started, locked=decided - locked, commit=committed - decided)
        answer = orjson.dumps(recorded.answer())
        clock["answer"] = time.perf_counter() - committed
        return answer

    checked = await run_in_threadpool(check)
    answer = await run_in_threadpool(decide, checked)
    timing = ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in clock.items())
    # On PostgreSQL the connection is closed after each submission, so a partner's next
    # one is accepted by whichever worker is free. Kept alive, every submission of a
    # connection went to the worker that accepted it first, and two partners' connections
    # on one worker took turns there while the other idled: half the throughput. SQLite's
    # writers take turns at one lock wherever they land, and a new connection a
    # submission cost more than it gained there (docs/benchmarks.md, "One submission a
    # connection").
    headers = {"Server-Timing": timing}
    if not state.container.db.is_sqlite:
        headers["Connection"] = "close"
    return Response(answer, media_type=JSON, headers=headers)


@router.get("/submissions", tags=["partners"], response_model=None, responses=ok(
    {"type": "array", "items": ref(SubmissionSummary)}, "the latest first",
    problems(401, 403, 422, 503)))
def my_submissions(session: SessionDep, who: PartnerDep,
                   limit: Limit = 50) -> list[dict[str, Any]]:
    return views.partner_submissions(session, who.partner_id, limit=limit)  # type: ignore[arg-type]


@router.get("/submissions/{submission_id}", tags=["partners"], response_model=None,
            responses=ok(SubmissionDetail, problems(401, 403, 404, 422, 503)))
def my_submission(submission_id: SubmissionId, session: SessionDep, who: PartnerDep) -> dict[str, Any]:
    return views.partner_submission(session, who.partner_id, submission_id)  # type: ignore[arg-type]


