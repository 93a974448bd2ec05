"""The /v1 routes, one small function each: parse, authorise, call the ledger, shape."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from api.http.deps import AuditorDep, CitizenDep, PartnerDep, SessionDep, StateDep, ledger_state
from ledger import accounts, views
from ledger.entries import parse_entry_id
from ledger.errors import InvalidInput, NotFound, VerificationError
from ledger.methodology import available_versions, methodology_text
from ledger.models import Partner, Reward
from ledger.proofs import entry_proof, verify_bundle, write_oz_dump
from ledger.redemption import redeem
from ledger.signing import DOMAIN_NAME, DOMAIN_VERSION, SUBMISSION_TYPES
from ledger.submissions import CheckedSubmission, check_submission, record_submission

router = APIRouter(prefix="/v1")

NDJSON = "application/x-ndjson"
JSON = "application/json"


def json_response(content: Any) -> Response:
    """JSON from orjson, for the hot routes (FastAPI's own path validates through Pydantic)."""
    return Response(orjson.dumps(content), media_type=JSON)


# -- proofs: declared first, since the router tries routes in order and these are hot ---

def _proof_response(request: Request, entry_id: bytes, owner: int | None = None) -> Response:
    """The entry's bundle with its confirmations, or its pending status. An anchored
    bundle is kept by the app (:class:`ProofCache`): a repeat costs no query."""
    state, proofs = ledger_state(request), request.app.state.proofs
    cached = proofs.get(entry_id)
    if cached is None:
        with state.container.db.session() as s:
            found = entry_proof(s, entry_id)
        if owner is not None and found.citizen_id != owner:
            raise NotFound(f"no entry 0x{entry_id.hex()} in your ledger", field="entry_id")
        if found.bundle is None:
            return json_response({"entryId": "0x" + entry_id.hex(), "status": "pending",
                                  "detail": found.pending})
        cached = proofs.put(entry_id, found.citizen_id, found.bundle)
    elif owner is not None and cached.citizen_id != owner:
        raise NotFound(f"no entry 0x{entry_id.hex()} in your ledger", field="entry_id")
    return Response(cached.body(state.confirmations(cached.block_number)), media_type=JSON)


@router.get("/me/entries/{entry_id}/proof", tags=["citizens"], response_model=dict[str, Any])
async def my_proof(entry_id: str, request: Request, who: CitizenDep) -> Response:
    """The entry's proof bundle, or its pending status while its batch is not anchored."""
    return _proof_response(request, parse_entry_id(entry_id), owner=who.citizen_id)


@router.get("/entries/{entry_id}/proof", tags=["auditors"], response_model=dict[str, Any])
async def any_proof(entry_id: str, request: Request, who: AuditorDep) -> Response:
    return _proof_response(request, parse_entry_id(entry_id))


@router.get("/info", tags=["public"])
def info(state: StateDep) -> dict[str, Any]:
    """Where this ledger anchors, who signs receipts, and what partners sign."""
    return {"chainId": state.chain_id, "contract": state.anchor.contract_address,
            "operator": state.container.signer.address,
            "eip712": {"domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION,
                                  "chainId": state.chain_id},
                       "types": SUBMISSION_TYPES, "primaryType": "Submission"},
            "methodologies": list(available_versions())}


@router.get("/methodologies/{version}", tags=["public"])
def methodology(version: int) -> Any:
    """A published methodology file, exactly as the ledger uses it."""
    return json.loads(methodology_text(version))


# -- partners ---------------------------------------------------------------------------

async def _body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"the body is over {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _records_from_body(body: bytes, content_type: str) -> list[object]:
    kind = content_type.split(";")[0].strip()
    try:
        if kind == NDJSON:
            return [json.loads(line) for line in body.splitlines() if line.strip()]
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not valid JSON: {exc}", field="body") from exc
    if not isinstance(data, list):
        raise InvalidInput("expected a JSON array of records (or NDJSON)", field="body")
    return data


_SUBMISSION_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    NDJSON: {"schema": {"type": "string"}}}}}


@router.post("/submissions", tags=["partners"], openapi_extra=_SUBMISSION_BODY,
             response_model=dict[str, Any])
async def submit(request: Request, state: StateDep, who: PartnerDep,
                 x_signature: Annotated[str | None, Header()] = None) -> Response:
    """Submit records (JSON array or NDJSON), signed with EIP-712 by the partner's key."""
    settings = state.container.settings
    body = await _body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "")

    # Blocking work, off the event loop. Parsing and the signature need no lock, so
    # workers do them in parallel; deciding and writing hold the write lock.
    # Where the time went, for the partner and the benchmark (W3C Server-Timing, ms).
    clock: dict[str, float] = {}

    def check() -> CheckedSubmission:
        started = time.perf_counter()
        records = _records_from_body(body, content_type)
        with state.container.db.session() as s:
            partner = s.get_one(Partner, who.partner_id)
        checked = check_submission(partner=partner, records=records, signature=x_signature,
                                   chain_id=state.chain_id, pause=state.decide_first.pause)
        clock["check"] = time.perf_counter() - started
        return checked

    def decide(checked: CheckedSubmission) -> bytes:
        started = time.perf_counter()
        with (state.decide_first.deciding() as begin,
              state.container.db.session(write_lock=True) as s):
            begin()  # the lock is ours: this process's checks wait until it is released
            locked = time.perf_counter()
            recorded = record_submission(s, checked, partner=s.get_one(Partner, who.partner_id),
                                         chain_id=state.chain_id,
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
    return Response(answer, media_type=JSON, headers={"Server-Timing": timing})


@router.get("/submissions", tags=["partners"])
def my_submissions(session: SessionDep, who: PartnerDep,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    return views.partner_submissions(session, who.partner_id, limit=limit)  # type: ignore[arg-type]


@router.get("/submissions/{submission_id}", tags=["partners"])
def my_submission(submission_id: str, session: SessionDep, who: PartnerDep) -> dict[str, Any]:
    return views.partner_submission(session, who.partner_id, submission_id)  # type: ignore[arg-type]


# -- citizens ---------------------------------------------------------------------------

@router.get("/me", tags=["citizens"])
def me(session: SessionDep, who: CitizenDep) -> dict[str, Any]:
    """Balance, points spent, and totals per behaviour."""
    return views.citizen_summary(session, who.citizen_id)  # type: ignore[arg-type]


@router.get("/me/entries", tags=["citizens"])
def my_entries(session: SessionDep, who: CitizenDep,
               behaviour: Annotated[str | None, Query(max_length=32)] = None,
               since: Annotated[int | None, Query(alias="from", ge=0, le=2**62)] = None,
               until: Annotated[int | None, Query(alias="to", ge=0, le=2**62)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50,
               after: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> dict[str, Any]:
    return views.citizen_entries(session, who.citizen_id, behaviour=behaviour,  # type: ignore[arg-type]
                                 since=since, until=until, limit=limit, after_seq=after)


@router.get("/rewards", tags=["citizens"])
def rewards(session: SessionDep, who: CitizenDep) -> list[dict[str, Any]]:
    return [{"code": r.code, "title": r.title, "points": r.points_cost, "stock": r.stock}
            for r in session.scalars(select(Reward).order_by(Reward.code))]


@router.post("/redemptions", tags=["citizens"])
def redeem_reward(state: StateDep, who: CitizenDep,
                  reward: Annotated[str, Body(embed=True, max_length=64)],
                  idempotency_key: Annotated[str, Header(max_length=128)]) -> dict[str, Any]:
    """Redeem a reward; the same Idempotency-Key replays the first answer."""
    operator = bytes.fromhex(state.container.signer.address[2:])
    with state.container.db.session(write_lock=True) as s:
        citizen = s.get_one(accounts.Citizen, who.citizen_id)
        r, replay = redeem(s, citizen=citizen, reward_code=reward,
                           idempotency_key=idempotency_key, operator_address=operator)
        reward_code = s.get_one(Reward, r.reward_id).code
        return {"entryId": "0x" + r.entry_id.hex(), "reward": reward_code, "points": r.points,
                "balance": accounts.balance(s, citizen.id), "replayed": replay,
                "createdAt": r.created_at}


# -- auditors ---------------------------------------------------------------------------

@router.get("/batches", tags=["auditors"])
def batches(session: SessionDep, who: AuditorDep,
            limit: Annotated[int, Query(ge=1, le=500)] = 100,
            after: Annotated[int, Query(ge=0, le=2**62)] = 0) -> dict[str, Any]:
    return views.list_batches(session, limit=limit, after_id=after)


@router.get("/batches/{batch_id}/dump", tags=["auditors"], response_class=PlainTextResponse)
def batch_dump(batch_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep,
               who: AuditorDep) -> PlainTextResponse:
    """The batch as OpenZeppelin's StandardMerkleTree dump JSON."""
    import io

    buf = io.StringIO()
    write_oz_dump(session, batch_id, buf)
    return PlainTextResponse(buf.getvalue(), media_type="application/json")


@router.post("/verify", tags=["auditors"])
def verify(bundle: Annotated[dict[str, Any], Body()], state: StateDep,
           who: AuditorDep) -> dict[str, Any]:
    """Check a bundle against the chain server-side (the CLI verifier is the independent path)."""
    try:
        verdict = verify_bundle(bundle, state.anchor.reader())
    except VerificationError as exc:
        return {"valid": False, "field": exc.field, "reason": exc.message}
    return {"valid": True, "verdict": verdict.line()}
