"""The FastAPI application: routes under /v1, problem+json errors, size and rate limits,
and the background sealer, all over one :class:`Container`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from api.composition import Container
from api.http import problems, report_routes
from api.http.routes import router
from api.http.state import AppState
from ledger.errors import InvalidInput


def _credential_key(scope: Scope) -> str:
    """Rate-limit per credential (hashed), or per client address when there is none."""
    auth = dict(scope["headers"]).get(b"authorization")
    if auth:
        return "cred:" + hashlib.sha256(auth).hexdigest()[:32]
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


class RateLimit:
    """A moving-window limit per credential on /v1 (the `limits` library, in memory:
    per process; several workers each count their own)."""

    def __init__(self, app: ASGIApp, limit: str) -> None:
        self.app = app
        try:
            self.item = parse(limit)
        except ValueError as exc:
            raise InvalidInput(f"{limit!r} is not a rate limit like '600/minute'",
                               field="rate_limit") from exc
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            key = _credential_key(scope)
            if not self.limiter.hit(self.item, key):
                reset, _left = self.limiter.get_window_stats(self.item, key)
                retry = max(1, int(reset - time.time()) + 1)
                response = problems.problem(429, "rate-limited", "Too many requests",
                                            f"at most {self.item}", headers={"Retry-After": str(retry)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a declared Content-Length over the limit with 413 before reading the body
    (a pure ASGI middleware: no per-request task as BaseHTTPMiddleware makes). Bodies
    without a length are bounded where they are read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                response = problems.problem(413, "too-large", "Request body too large",
                                            f"at most {self.limit} bytes", "body")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def app_from_environment() -> FastAPI:
    """The app as each of several uvicorn workers builds it: settings from the environment."""
    import os

    from api.settings import Settings

    run_sealer = os.environ.get("CARBON_LEDGER_RUN_SEALER", "1") == "1"
    return create_app(Container(Settings()), run_sealer=run_sealer)


def create_app(container: Container, *, run_sealer: bool = True) -> FastAPI:
    settings = container.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            anchor = stack.enter_context(container.anchor())
            state = AppState(container, anchor)
            app.state.ledger = state
            if run_sealer:
                state.start_sealer()
                stack.callback(state.stop_sealer)
            yield

    app = FastAPI(title="carbon-ledger", version="1",
                  summary="A blockchain-anchored personal carbon ledger", lifespan=lifespan)
    app.add_middleware(RateLimit, limit=settings.rate_limit)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    problems.install(app)
    app.include_router(router)
    app.include_router(report_routes.router)
    return app
