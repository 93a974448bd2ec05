"""Campaign routes (#21): the published campaigns and their public leaderboard (anyone),
and a citizen's progress, rank proof and nickname.

The leaderboard shows nicknames only, of citizens who opted in; a citizen's rank comes
with its Merkle proof against the ranking root anchored on chain (docs/campaigns.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.http import schemas
from api.http.bodies import read_body
from api.http.deps import CitizenDep, SessionDep, StateDep
from api.http.responses import JSON, json_response
from api.http.schemas import Address, Count, Hex32, IsoDate, Shape, body, ok, problems, ref
from ledger import campaign_bonuses, campaigns, rankings
from ledger.errors import InvalidInput, NotFound, UnsupportedMediaType
from ledger.json_input import parse_json
from ledger.store.models import Citizen

router = APIRouter(prefix="/v1")

CampaignId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,23}$", examples=["bj-season-2026"],
                                 description="a campaign's id, as its file names it")]
MAX_NICKNAME_BYTES = 512


# -- shapes ---------------------------------------------------------------------------------

class Publication(Shape):
    chainId: int | None
    contract: str | None
    txHash: str | None = Field(description="the transaction that pinned the rules hash")
    blockNumber: int | None


class CampaignInfo(Shape):
    """A published campaign version: its rules as published and where they are pinned."""

    id: str
    version: int = Field(ge=1)
    key: Hex32 = Field(description="the contract's key for this version")
    rulesHash: Hex32 = Field(description="keccak256 of the rules' RFC 8785 form, pinned on "
                             "chain before the start")
    title: dict[str, str] = Field(description="zh-CN and en")
    starts: IsoDate
    ends: IsoDate
    rules: dict[str, Any] = Field(description="the campaign file (docs/campaigns.md)")
    publication: Publication


class BoardEntry(Shape):
    rank: int = Field(ge=1)
    nickname: str
    metric: Count
    prize: Count


class Leaderboard(Shape):
    """The public board: nicknames of citizens who opted in, best first."""

    campaign: str
    final: bool = Field(description="true once the ranking is closed and sealed")
    root: Hex32 | None = Field(description="the ranking tree's root, once closed")
    status: str = Field(description="open, closed, submitted or anchored")
    metric: str
    entries: list[BoardEntry]


class RankLeafView(Shape):
    campaign: Hex32
    account: Hex32
    metric: str = Field(pattern=r"^[0-9]{1,20}$")
    rank: int = Field(ge=1)
    prize: str = Field(pattern=r"^[0-9]{1,20}$")


class RankProof(Shape):
    """A rank's leaf and its path to the ranking's root (OpenZeppelin standard tree)."""

    campaign: str
    root: Hex32
    status: str
    leaf: RankLeafView
    proof: list[Hex32]
    chainId: int | None
    contract: Address | None


class BonusView(Shape):
    entryId: Hex32 = Field(description="the bonus entry")
    earnedBy: Hex32 = Field(description="the credit entry that earned it")
    points: Count


class CampaignProgress(Shape):
    """A citizen's bonuses in a campaign, the caps, their nickname and rank."""

    campaign: str
    version: int
    bonusPoints: Count
    bonusCapPoints: Count
    byBehaviour: dict[str, int]
    bonuses: list[BonusView]
    nickname: str | None
    rank: RankProof | None = Field(description="once the ranking is closed, if ranked")


class NicknameRequest(Shape):
    nickname: str = Field(min_length=1, max_length=64,
                          description="2-24 letters, digits, '_', '-' or '.'; no run of 6 "
                                      "digits (no personal data)", examples=["绿色骑手"])


class Participation(Shape):
    campaign: str
    nickname: str | None = Field(description="null once opted out")


MODELS: list[type[BaseModel]] = [CampaignInfo, Leaderboard, CampaignProgress, NicknameRequest,
                                 Participation]
for _model in MODELS:  # the document's components: this face's shapes beside the others'
    if _model not in schemas.MODELS:
        schemas.MODELS.append(_model)


# -- public ---------------------------------------------------------------------------------

@router.get("/campaigns", tags=["public"], response_model=None,
            responses=ok({"type": "array", "items": ref(CampaignInfo)},
                         "every published campaign version", problems(503)))
def campaign_list(session: SessionDep) -> list[dict[str, Any]]:
    """Every published campaign version, its rules and where their hash is pinned."""
    return campaigns.campaign_summaries(session)


@router.get("/campaigns/{campaign_id}/leaderboard", tags=["public"], response_model=None,
            responses=ok(Leaderboard, problems(404, 409, 422, 503,
                                               not_found="No published campaign of this id",
                                               conflict="The campaign has no ranking")))
def leaderboard(session: SessionDep, campaign_id: CampaignId,
                limit: Annotated[int, Query(ge=1, le=500, description="at most this many")] = 100
                ) -> dict[str, Any]:
    """The public board: nicknames only, of those who opted in (provisional until the
    ranking is closed)."""
    return rankings.leaderboard(session, campaign_id, limit=limit)


# -- a citizen ------------------------------------------------------------------------------

@router.get("/me/campaigns/{campaign_id}", tags=["citizens"], response_model=None,
            responses=ok(CampaignProgress, problems(401, 403, 404, 422, 503,
                                                    not_found="No published campaign of this id")))
def my_progress(session: SessionDep, who: CitizenDep, campaign_id: CampaignId) -> dict[str, Any]:
    """Your bonus points in a campaign, the caps, your nickname, and your rank with its
    proof once the ranking is closed."""
    citizen = session.get_one(Citizen, who.citizen_id)
    answer = campaign_bonuses.progress(session, campaign_id, citizen)
    try:
        answer["rank"] = rankings.rank_proof(session, campaign_id, citizen)
    except NotFound:
        answer["rank"] = None
    return answer


def _nickname(raw: bytes, content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind != JSON:
        raise UnsupportedMediaType(f"send {JSON}, not {kind or 'no Content-Type'}",
                                   field="content-type")
    data = parse_json(raw, field="body", max_bytes=MAX_NICKNAME_BYTES)
    if not isinstance(data, dict) or set(data) != {"nickname"}:
        raise InvalidInput('expected {"nickname": "<nickname>"}', field="body")
    if not isinstance(data["nickname"], str):
        raise InvalidInput("a string", field="nickname")
    return data["nickname"]


@router.put("/me/campaigns/{campaign_id}/nickname", tags=["citizens"], response_model=None,
            openapi_extra=body(ref(NicknameRequest), description="the nickname to show"),
            responses=ok(Participation, "you take part in the public ranking", problems(
                401, 403, 404, 409, 413, 415, 422, 503,
                not_found="No published campaign of this id",
                conflict="The nickname is taken, the campaign has no ranking, or the "
                         "account is erased")))
async def join(request: Request, state: StateDep, who: CitizenDep,
               campaign_id: CampaignId) -> Any:
    """Opt in to the campaign's public ranking under a nickname (again: change it)."""
    nickname = _nickname(await read_body(request, MAX_NICKNAME_BYTES),
                         request.headers.get("content-type", ""))

    def write() -> dict[str, Any]:
        with state.container.db.session(write_lock=True) as s:
            citizen = s.get_one(Citizen, who.citizen_id)
            row = campaigns.join(s, campaign_id, citizen, nickname)
            return {"campaign": campaign_id, "nickname": row.nickname}

    return json_response(await run_in_threadpool(write))


@router.delete("/me/campaigns/{campaign_id}/nickname", tags=["citizens"], response_model=None,
               responses=ok(Participation, "you no longer take part; your nickname is deleted",
                            problems(401, 403, 422, 503)))
async def leave(state: StateDep, who: CitizenDep, campaign_id: CampaignId) -> Any:
    """Opt out of the campaign's public ranking: your nickname is deleted."""
    def write() -> dict[str, Any]:
        with state.container.db.session(write_lock=True) as s:
            campaigns.leave(s, campaign_id, s.get_one(Citizen, who.citizen_id))
        return {"campaign": campaign_id, "nickname": None}

    return json_response(await run_in_threadpool(write))

