"""Dependencies: the database session, the caller's principal, and role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.http.state import AppState
from ledger.credentials import Forbidden, Principal, Unauthenticated, authenticate

bearer = HTTPBearer(auto_error=False, description="API key (partners, auditors) or citizen token")


def app_state(request: Request) -> AppState:
    return request.app.state.ledger  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(app_state)]


async def session(state: StateDep) -> AsyncIterator[Session]:
    """The request's session. Opened on the event loop: SQLite reads here take well under
    a millisecond, less than a hop to the threadpool and back."""
    with state.container.db.session() as s:
        yield s


SessionDep = Annotated[Session, Depends(session)]


async def principal(s: SessionDep,
              creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """Who is calling, checked on the request's own session (one connection a request)."""
    if creds is None:
        raise Unauthenticated("send 'Authorization: Bearer <key or token>'", field="authorization")
    return authenticate(s, creds.credentials)


def role(*allowed: str):  # type: ignore[no-untyped-def]
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in allowed:
            raise Forbidden(f"a {who.role} may not use this route", field="authorization")
        return who
    return check


PartnerDep = Annotated[Principal, Depends(role("partner"))]
CitizenDep = Annotated[Principal, Depends(role("citizen"))]
AuditorDep = Annotated[Principal, Depends(role("auditor"))]
