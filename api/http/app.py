"""The FastAPI application: routes under /v1, problem+json errors, size and rate limits
(api.http.limits), and the background sealer, all over one :class:`Container`."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI

from api.composition import Container
from api.http import (
    apidocs,
    campaign_routes,
    credential_routes,
    ledger_routes,
    problems,
    report_routes,
    schemas,
    submission_routes,
    web,
)
from api.http.cors import ScopedCors
from api.http.gate import DecideFirst
from api.http.limits import BodyLimit, MovingWindow, RateLimit
from api.http.routes import router
from api.http.state import AppState
from ledger.anchoring import Anchor
from ledger.backoff import Backoff
from ledger.credentials import CredentialCache
from ledger.errors import ChainUnavailable, DatabaseUnavailable, SchemaOutOfDate

log = logging.getLogger("carbon_ledger.http")

__all__ = ["MovingWindow", "app_from_environment", "create_app", "settle_heap"]


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


async def _open_when_reachable(container: Container, stack: ExitStack) -> Anchor:
    """The database (its schema checked, its checkpointer started) and the chain, waited
    for with backoff while either does not answer: a worker (re)started while the
    database restarts must come up when it is back, not take the whole service down with
    it. A schema that is not this version's is refused at once."""
    backoff = Backoff(first=1.0, longest=15.0)
    while True:
        try:
            with ExitStack() as attempt:
                attempt.enter_context(container.db.background_checkpoints())
                anchor = attempt.enter_context(container.anchor())
                stack.enter_context(attempt.pop_all())
                return anchor
        except (DatabaseUnavailable, ChainUnavailable) as exc:
            if isinstance(exc, SchemaOutOfDate):
                raise
            wait = backoff.failed()
            log.warning("starting: %s; trying again in %.0f s", exc, wait)
            await asyncio.sleep(wait)


def create_app(container: Container, *, run_sealer: bool = True) -> FastAPI:
    settings = container.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            anchor = await _open_when_reachable(container, stack)
            proofs = container.proof_service(anchor)
            proofs.warm()  # before this worker takes a connection
            stack.enter_context(proofs.following_head())  # never read on the event loop
            scheduler = container.seal_scheduler(
                anchor, on_proofs_changed=lambda _batches: proofs.forget())
            app.state.ledger = AppState(container, anchor, scheduler, proofs, DecideFirst())
            if run_sealer:
                scheduler.start()
                stack.callback(scheduler.stop)
            yield

    app = FastAPI(title="carbon-ledger", version="1",
                  summary="A blockchain-anchored personal carbon ledger", lifespan=lifespan,
                  description=schemas.DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.credentials = CredentialCache()  # key id → principal, for ≤ 5 s
    app.add_middleware(RateLimit, limit=settings.rate_limit)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:  # outermost: a preflight is answered before any limit counts it
        app.add_middleware(ScopedCors, origins=settings.cors_origins, fastapi=app)

    problems.install(app)
    schemas.install(app)
    apidocs.install(app)  # /docs and /redoc from our own copies, not a CDN
    app.include_router(router)
    app.include_router(submission_routes.router)
    app.include_router(ledger_routes.router)
    app.include_router(report_routes.router)
    app.include_router(credential_routes.router)
    app.include_router(campaign_routes.router)
    web.install(app)  # the pages at / (web/dist), after the API's routes
    return app
