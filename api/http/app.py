"""The FastAPI application: routes under /v1, problem+json errors, size and rate limits,
and the background sealer, all over one :class:`Container`."""

from __future__ import annotations

import gc
import hashlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI
from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.composition import Container
from api.http import ledger_routes, problems, report_routes, submission_routes
from api.http.cache import ProofCache
from api.http.routes import router
from api.http.state import AppState
from ledger.credentials import CredentialCache
from ledger.errors import InvalidInput


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The header's last value, as ``dict(scope["headers"])`` would give, without the dict."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            found = value
    return found


def _credential_key(scope: Scope) -> str:
    """Rate-limit per credential (hashed), or per client address when there is none."""
    auth = _header(scope, b"authorization")
    if auth:
        return "cred:" + hashlib.sha256(auth).hexdigest()[:32]
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


class MovingWindow:
    """At most ``item.amount`` hits per key within any ``item.get_expiry()`` seconds: the
    `limits` library's moving window, kept as a deque of hit times per key (O(1) a hit;
    its in-memory storage inserts at the front of a list and starts a timer thread every
    10 ms, which costs a busy server more than the request)."""

    def __init__(self, item: RateLimitItem, clock: Callable[[], float] = time.monotonic) -> None:
        self.item, self._clock = item, clock
        self._window = float(item.get_expiry())
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + self._window

    def hit(self, key: str) -> float | None:
        """Count a hit and return None, or refuse it: the seconds until one would pass."""
        now = self._clock()
        if now >= self._next_sweep:  # forget keys idle for a whole window
            self._hits = {k: h for k, h in self._hits.items() if h[-1] > now - self._window}
            self._next_sweep = now + self._window
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) >= self.item.amount:
            return hits[0] + self._window - now
        hits.append(now)
        return None


class RateLimit:
    """A moving-window limit per credential on /v1 (in memory: per process; several
    workers each count their own)."""

    def __init__(self, app: ASGIApp, limit: str) -> None:
        self.app = app
        try:
            item = parse(limit)
        except ValueError as exc:
            raise InvalidInput(f"{limit!r} is not a rate limit like '600/minute'",
                               field="rate_limit") from exc
        self.window = MovingWindow(item)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            wait = self.window.hit(_credential_key(scope))
            if wait is not None:
                response = problems.problem(429, "rate-limited", "Too many requests",
                                            f"at most {self.window.item}",
                                            headers={"Retry-After": str(max(1, int(wait) + 1))})
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
            length = _header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                response = problems.problem(413, "too-large", "Request body too large",
                                            f"at most {self.limit} bytes", "body")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def settle_heap() -> None:
    """For a serving process, once its app is built: move what startup allocated out of
    the collector's sight and collect the youngest generation less often.

    A submission to a populated ledger makes tens of thousands of short-lived objects
    (its records' neighbours); with Python's defaults the collector then re-scans the
    ~150,000 objects of the imported libraries several times per submission, about a
    third of its CPU. Not for tests: a frozen object is never collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def app_from_environment() -> FastAPI:
    """The app as each of several uvicorn workers builds it: settings from the environment."""
    import os

    from api.settings import Settings

    run_sealer = os.environ.get("CARBON_LEDGER_RUN_SEALER", "1") == "1"
    app = create_app(Container(Settings()), run_sealer=run_sealer)
    settle_heap()
    return app


def create_app(container: Container, *, run_sealer: bool = True) -> FastAPI:
    settings = container.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            stack.enter_context(container.db.background_checkpoints())
            anchor = stack.enter_context(container.anchor())
            state = AppState(container, anchor)
            state.on_proofs_changed = lambda _batches: app.state.proofs.clear()
            app.state.ledger = state
            if run_sealer:
                state.start_sealer()
                stack.callback(state.stop_sealer)
            yield

    app = FastAPI(title="carbon-ledger", version="1",
                  summary="A blockchain-anchored personal carbon ledger", lifespan=lifespan)
    app.state.credentials = CredentialCache()  # key id → principal, for ≤ 5 s
    app.state.proofs = ProofCache()  # anchored entries' bundles
    app.add_middleware(RateLimit, limit=settings.rate_limit)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    problems.install(app)
    app.include_router(router)
    app.include_router(submission_routes.router)
    app.include_router(ledger_routes.router)
    app.include_router(report_routes.router)
    return app
