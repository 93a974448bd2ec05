"""POST /v1/me/credentials: a citizen's green-credit credential for a range of months.

The body names the holder key's address (the citizen's app made the key; the operator
never holds it), the months and whether to disclose totals per area. The answer is the
signed credential (docs/green-credit.md), which the citizen presents to a bank.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, ValidationError

from api.http.bodies import read_body
from api.http.deps import CitizenDep, StateDep
from api.http.responses import JSON, json_response
from api.http.schemas import Address, Shape, body, ok, problems
from ledger.errors import InvalidInput, UnsupportedMediaType
from ledger.green_credit import DEFAULT_VALID_DAYS
from ledger.green_credit_issue import CredentialRequest, issue_credential
from ledger.json_input import parse_json
from ledger.statements import parse_period

router = APIRouter(prefix="/v1")

MAX_CREDENTIAL_REQUEST_BYTES = 1024
_MONTH = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$"  # 1970-01 to 9999-12


class CredentialAsk(Shape):
    """What a citizen asks for: months, holder key, and what to disclose."""

    holder: Address = Field(description="the address of the holder key the citizen made")
    from_: str = Field(alias="from", pattern=_MONTH, description="the first local month",
                       examples=["2026-10"])
    to: str = Field(pattern=_MONTH, description="the last local month", examples=["2026-11"])
    areas: bool = Field(default=False, description="disclose each month's totals per area "
                                                   "(transport, food, housing, shopping…) too")
    validDays: int = Field(default=DEFAULT_VALID_DAYS, ge=1, le=366,
                           description="days the credential stays valid")


_CREDENTIAL = {"type": "object", "description": "a W3C Verifiable Credential "
               "(GreenCreditCredential) with an EIP-712 proof: docs/green-credit.md"}


def _ask(raw: bytes, content_type: str) -> CredentialAsk:
    kind = content_type.split(";")[0].strip().lower()
    if kind != JSON:
        raise UnsupportedMediaType(f"send {JSON}, not {kind or 'no Content-Type'}",
                                   field="content-type")
    data = parse_json(raw, field="body", max_bytes=MAX_CREDENTIAL_REQUEST_BYTES)
    try:
        return CredentialAsk.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(first["msg"], field=where) from None


@router.post("/me/credentials", tags=["citizens"], response_model=None,
             openapi_extra=body(CredentialAsk.model_json_schema(by_alias=True),
                                description="the months and the holder key"),
             responses=ok(_CREDENTIAL, "the signed credential", problems(
                 401, 403, 404, 409, 413, 415, 422, 503,
                 not_found="A month without an anchored statement (yet)",
                 conflict="A month anchored on another contract than this ledger's")))
async def my_credential(request: Request, state: StateDep, who: CitizenDep) -> Any:
    """A green-credit credential of your anchored month statements, bound to your key."""
    ask = _ask(await read_body(request, MAX_CREDENTIAL_REQUEST_BYTES),
               request.headers.get("content-type", ""))
    wanted = CredentialRequest(who.citizen_id, ask.holder,  # type: ignore[arg-type]
                               parse_period(ask.from_, field="from"),
                               parse_period(ask.to, field="to"), ask.areas, ask.validDays)
    c = state.container

    def issue() -> dict[str, Any]:
        return issue_credential(c.db, wanted, issuer=c.signer, chain_id=state.anchor.chain_id,
                                contract=state.anchor.contract_address)

    return json_response(await run_in_threadpool(issue))
