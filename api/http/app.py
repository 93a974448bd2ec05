"""The FastAPI application: routes under /v1, problem+json errors, size and rate limits,
and the background sealer, all over one :class:`Container`."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIASGIMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.composition import Container
from api.http import problems
from api.http.routes import router
from api.http.state import AppState


def _credential_key(request: Request) -> str:
    """Rate-limit per credential (hashed), or per client address when there is none."""
    auth = request.headers.get("authorization", "")
    if auth:
        return "cred:" + hashlib.sha256(auth.encode()).hexdigest()[:32]
    return "addr:" + (request.client.host if request.client else "unknown")


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
    limiter = Limiter(key_func=_credential_key, default_limits=[settings.rate_limit],
                      headers_enabled=True)
    app.state.limiter = limiter

    @app.exception_handler(RateLimitExceeded)
    async def rate_limited(request: Request, exc: RateLimitExceeded) -> Response:
        retry = 60
        window = getattr(exc, "limit", None)
        if window is not None:
            retry = int(window.limit.get_expiry())
        return problems.problem(429, "rate-limited", "Too many requests", str(exc.detail),
                                headers={"Retry-After": str(retry)})

    app.add_middleware(SlowAPIASGIMiddleware)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    problems.install(app)
    app.include_router(router)
    return app
