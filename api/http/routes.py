"""The /v1 routes, one small function each: parse, authorise, call the ledger, shape."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from api.http.bodies import read_body
from api.http.deps import AuditorDep, CitizenDep, SessionDep, StateDep, ledger_state
from api.http.responses import JSON, json_response
from api.http.schemas import (
    PROOF,
    BatchId,
    BatchPage,
    CitizenSummary,
    EntryId,
    EntryPage,
    Limit,
    Methodology,
    OzDump,
    Redemption,
    RedemptionRequest,
    Reward,
    SinceUnix,
    UntilUnix,
    body,
    ok,
    problems,
    ref,
)
from ledger import accounts, views
from ledger.entries import parse_entry_id
from ledger.errors import InvalidInput, UnsupportedMediaType
from ledger.json_input import parse_json
from ledger.methodology import methodology_text
from ledger.proofs import write_oz_dump
from ledger.redemption import IDEMPOTENCY_KEY_PATTERN, balance_after, redeem

router = APIRouter(prefix="/v1")

# -- proofs: declared first, since the router tries routes in order and these are hot ---

async def _proof_response(request: Request, entry_id: bytes, owner: int | None = None
                          ) -> Response:
    """The entry's bundle with its confirmations, or its pending status (an anchored
    bundle is kept by the proof service: a repeat costs no query). One not kept yet is
    made from the database when this turn of the loop has room (api.http.turns)."""
    state = ledger_state(request)
    if entry_id not in state.proofs.bundles:
        await state.bundle_turns.admit()
    answer = state.proofs.answer(entry_id, owner=owner)
    if isinstance(answer, dict):
        return json_response(answer)
    return Response(answer, media_type=JSON)


@router.get("/me/entries/{entry_id}/proof", tags=["citizens"], response_model=None,
            responses=ok(PROOF, "the proof bundle, or the entry's pending status",
                         problems(401, 403, 404, 422, 503, not_found="No such entry of yours")))
async def my_proof(entry_id: EntryId, request: Request, who: CitizenDep) -> Response:
    """The entry's proof bundle, or its pending status while its batch is not anchored."""
    return await _proof_response(request, parse_entry_id(entry_id), owner=who.citizen_id)


@router.get("/entries/{entry_id}/proof", tags=["auditors"], response_model=None,
            responses=ok(PROOF, "the proof bundle, or the entry's pending status",
                         problems(401, 403, 404, 422, 503)))
async def any_proof(entry_id: EntryId, request: Request, who: AuditorDep) -> Response:
    return await _proof_response(request, parse_entry_id(entry_id))


@router.get("/methodologies/{version}", tags=["public"], response_model=None,
            responses=ok(Methodology, problems(404, 422)))
def methodology(version: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Any:
    """A published methodology file, exactly as the ledger uses it."""
    return json.loads(methodology_text(version))


# -- citizens ---------------------------------------------------------------------------

@router.get("/me", tags=["citizens"], response_model=None,
            responses=ok(CitizenSummary, problems(401, 403, 503)))
def me(session: SessionDep, who: CitizenDep) -> dict[str, Any]:
    """Balance, points spent, and totals per behaviour."""
    return views.citizen_summary(session, who.citizen_id)  # type: ignore[arg-type]


@router.get("/me/entries", tags=["citizens"], response_model=None,
            responses=ok(EntryPage, problems(401, 403, 422, 503)))
def my_entries(session: SessionDep, who: CitizenDep,
               behaviour: Annotated[str | None, Query(max_length=32)] = None,
               since: SinceUnix = None, until: UntilUnix = None, limit: Limit = 50,
               after: Annotated[int | None, Query(ge=0, le=2**62, description="the `next` of "
                                                  "the page before")] = None) -> dict[str, Any]:
    return views.citizen_entries(session, who.citizen_id, behaviour=behaviour,  # type: ignore[arg-type]
                                 since=since, until=until, limit=limit, after_seq=after)


@router.get("/rewards", tags=["citizens"], response_model=None,
            responses=ok({"type": "array", "items": ref(Reward)}, "the catalogue",
                         problems(401, 403, 503)))
def rewards(session: SessionDep, who: CitizenDep) -> list[dict[str, Any]]:
    return views.reward_list(session)


#: A redemption's body is one short member; anything longer is refused unread.
MAX_REDEMPTION_BYTES = 1024
_REDEMPTION_BODY = body(ref(RedemptionRequest), description="the reward to redeem")


def _reward_code(body: bytes, content_type: str) -> str:
    """The reward a redemption's body names: ``{"reward": "<code>"}``, as JSON."""
    kind = content_type.split(";")[0].strip().lower()
    if kind != JSON:
        raise UnsupportedMediaType(f"send {JSON}, not {kind or 'no Content-Type'}",
                                   field="content-type")
    data = parse_json(body, field="body", max_bytes=MAX_REDEMPTION_BYTES)
    if not isinstance(data, dict) or set(data) != {"reward"}:
        raise InvalidInput('expected {"reward": "<reward code>"}', field="body")
    reward = data["reward"]
    if not isinstance(reward, str) or not 1 <= len(reward) <= 64:
        raise InvalidInput("a reward code: 1-64 characters", field="reward")
    return reward


@router.post("/redemptions", tags=["citizens"], openapi_extra=_REDEMPTION_BODY,
             response_model=None, responses=ok(
                 Redemption, "the debit (or, for a key seen before, the first answer)",
                 problems(401, 403, 404, 409, 415, 422, 503, not_found="No such reward",
                            conflict="Too few points (`insufficient-points`), none left "
                                     "(`out-of-stock`), or the key was used for another "
                                     "reward (`idempotency-key-reused`)")))
async def redeem_reward(request: Request, state: StateDep, who: CitizenDep,
                        idempotency_key: Annotated[str, Header(
                            min_length=1, max_length=128, pattern=IDEMPOTENCY_KEY_PATTERN,
                            examples=["7d3f0b7e-coffee"],
                            description="any string new to this redemption: sent again, "
                                        "it replays the first answer")]) -> Response:
    """Redeem a reward; the same Idempotency-Key replays the first answer (409 if it was
    used for another reward)."""
    body = await read_body(request, MAX_REDEMPTION_BYTES)  # read once the caller is known
    reward = _reward_code(body, request.headers.get("content-type", ""))
    operator = bytes.fromhex(state.container.signer.address[2:])

    def write() -> dict[str, Any]:
        with state.container.db.session(write_lock=True) as s:
            citizen = s.get_one(accounts.Citizen, who.citizen_id)
            r, replayed = redeem(s, citizen=citizen, reward_code=reward,
                                 idempotency_key=idempotency_key, operator_address=operator)
            return {"entryId": "0x" + r.entry_id.hex(), "reward": reward, "points": r.points,
                    "balance": balance_after(s, r), "replayed": replayed,
                    "createdAt": r.created_at}

    return json_response(await run_in_threadpool(write))


# -- auditors ---------------------------------------------------------------------------

@router.get("/batches", tags=["auditors"], response_model=None,
            responses=ok(BatchPage, problems(401, 403, 422, 503)))
def batches(session: SessionDep, who: AuditorDep,
            limit: Limit = 100,
            after: Annotated[int, Query(ge=0, le=2**62, description="the `next` of the page "
                                        "before")] = 0) -> dict[str, Any]:
    return views.list_batches(session, limit=limit, after_id=after)


@router.get("/batches/{batch_id}/dump", tags=["auditors"], response_model=None,
            responses=ok(OzDump, problems(401, 403, 404, 422, 503)))
def batch_dump(batch_id: BatchId, session: SessionDep,
               who: AuditorDep) -> PlainTextResponse:
    """The batch as OpenZeppelin's StandardMerkleTree dump JSON."""
    import io

    buf = io.StringIO()
    write_oz_dump(session, batch_id, buf)
    return PlainTextResponse(buf.getvalue(), media_type="application/json")
