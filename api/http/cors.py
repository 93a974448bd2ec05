"""CORS for the public and citizen routes only, and only for the origins the operator
lists (``CARBON_LEDGER_CORS_ORIGINS``; none by default, and then no CORS header is ever
sent): a bank's or a partner's web page may show a citizen their balance or the city's
totals. Partners' and auditors' routes never answer another origin: a partner signs on
its own server, not in a browser."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

#: The OpenAPI tags whose routes another origin may call.
OPEN_TAGS = frozenset({"public", "citizens"})


class ScopedCors:
    """Starlette's CORS middleware around the routes tagged :data:`OPEN_TAGS`; every other
    path passes by it (a preflight there gets the app's 405, which a browser refuses)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str], routes: Sequence[BaseRoute]) -> None:
        self.app = app
        # routes: the app's own list, read when the middleware stack is built (at start-up,
        # once every router is included)
        self.paths = [r.path_regex for r in routes if isinstance(r, Route)
                      and OPEN_TAGS & set(getattr(r, "tags", None) or ())]
        self.cors = CORSMiddleware(app, allow_origins=list(origins),
                                   allow_methods=["GET", "POST"],
                                   allow_headers=["Authorization", "Content-Type",
                                                  "Idempotency-Key"],
                                   expose_headers=["Retry-After"], max_age=600)

    def open(self, path: str) -> bool:
        return any(p.match(path) for p in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.open(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


__all__ = ["OPEN_TAGS", "ScopedCors"]
