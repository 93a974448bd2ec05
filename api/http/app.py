"""The FastAPI application: routes under /v1, problem+json errors, size and rate limits,
and the background sealer, all over one :class:`Container`."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware

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

    app.add_middleware(SlowAPIMiddleware)

    @app.middleware("http")
    async def body_limit(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return problems.problem(413, "too-large", "Request body too large",
                                    f"at most {settings.max_body_bytes} bytes", "body")
        return await call_next(request)

    problems.install(app)
    app.include_router(router)
    return app
