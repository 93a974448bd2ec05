"""CORS for the public and citizen routes only, and only for the origins the operator
lists (``CARBON_LEDGER_CORS_ORIGINS``; none by default, and then no CORS header is ever
sent): a bank's or a partner's web page may show a citizen their balance or the city's
totals. Partners' and auditors' routes never answer another origin: a partner signs on
its own server, not in a browser."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.schemas import operations

#: The OpenAPI tags whose routes another origin may call.
OPEN_TAGS = frozenset({"public", "citizens"})


class ScopedCors:
    """Starlette's CORS middleware around the routes the OpenAPI document tags
    :data:`OPEN_TAGS`; every other path passes by it (a preflight there gets the app's
    405, which a browser refuses)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str], fastapi: Any) -> None:
        self.app, self.fastapi = app, fastapi  # the app, whose document names the routes
        self.cors = CORSMiddleware(app, allow_origins=list(origins),
                                   allow_methods=["GET", "POST"],
                                   allow_headers=["Authorization", "Content-Type",
                                                  "Idempotency-Key"],
                                   expose_headers=["Retry-After"], max_age=600)

    def open(self, path: str) -> bool:
        return path.startswith("/v1/") and operations(self.fastapi).tagged(path, OPEN_TAGS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.open(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


__all__ = ["OPEN_TAGS", "ScopedCors"]
