"""Dependencies: the database session, the caller's principal, and role checks.

FastAPI resolves every dependency anew on each request, at a cost comparable to a cached
proof's whole answer, so a role check is one dependency: the bearer scheme itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from api.http.limits import caller_of
from api.http.state import AppState
from ledger.credentials import Principal
from ledger.errors import Forbidden, Unauthenticated


def ledger_state(request: Request) -> AppState:
    return request.app.state.ledger  # type: ignore[no-any-return]


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain function in its threadpool, a hop per request
    return ledger_state(request)


StateDep = Annotated[AppState, Depends(app_state)]


async def session(state: StateDep) -> AsyncIterator[Session]:
    """The request's read session, one snapshot (every route taking it only reads, and an
    answer combining several queries must not half-see a commit between them). Opened on
    the event loop: SQLite reads here take well under a millisecond, less than a hop to
    the threadpool and back."""
    with state.container.db.session(snapshot=True) as s:
        yield s


SessionDep = Annotated[Session, Depends(session)]


class BearerRole(HTTPBearer):
    """The caller's principal, from ``Authorization: Bearer``, if its role is allowed.

    The credential was checked once for the request, before the rate limit counted it
    (:func:`api.http.limits.caller_of`), and before any body is read: no route takes a
    body parameter, each reads its body itself once this has passed. Being the HTTP
    bearer scheme, it is what OpenAPI shows as the routes' security."""

    def __init__(self, *allowed: str) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer",
                         description="API key (partners, auditors) or citizen token")
        self.allowed = allowed

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        caller = caller_of(request.scope)
        if caller.refused is not None:
            raise caller.refused
        who = caller.principal
        if who is None:
            raise Unauthenticated("send 'Authorization: Bearer <key or token>'",
                                  field="authorization")
        if who.role not in self.allowed:
            raise Forbidden(f"a {who.role} may not use this route", field="authorization")
        return who


PartnerDep = Annotated[Principal, Depends(BearerRole("partner"))]
CitizenDep = Annotated[Principal, Depends(BearerRole("citizen"))]
AuditorDep = Annotated[Principal, Depends(BearerRole("auditor"))]
