"""Every error as RFC 9457 problem+json, translated in one place (the status is the error
class's own ``http_status``, ledger/errors.py).

``type`` is stable (``urn:carbon-ledger:problem:<code>``), ``field`` names what was at
fault. Nothing reaches a client as a 500 with a traceback."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    LedgerError,
)

log = logging.getLogger("carbon_ledger.http")

MEDIA_TYPE = "application/problem+json"
#: What a 503 (database or chain node unreachable) asks the client to wait.
RETRY_AFTER_SECONDS = 5


class _OutageLog:
    """One log line per kind of outage (the error's code) at most every ``every`` seconds:
    while the database is down every request fails alike, and a traceback per request
    would bury the log."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}

    def log(self, exc: LedgerError) -> None:
        now = time.monotonic()
        at, missed = self._last.get(exc.code, (-self.every, 0))
        if now - at < self.every:
            self._last[exc.code] = (at, missed + 1)
            return
        self._last[exc.code] = (now, 0)
        more = f" (and {missed} more since the last line)" if missed else ""
        log.warning("answering 503 %s: %s%s", exc.code, exc, more)


_outages = _OutageLog()


def problem(status: int, code: str, title: str, detail: str | None = None,
            field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"urn:carbon-ledger:problem:{code}", "title": title,
                            "status": status}
    if detail:
        body["detail"] = detail
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _methods(request: Request) -> list[str]:
    """The methods the OpenAPI document gives the request's path (a path may have one
    route per method, as ``/v1/submissions`` does), HEAD with GET."""
    from api.http.schemas import operations

    methods = operations(request.app).methods(request.scope["path"])
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(_request: Request, exc: LedgerError) -> JSONResponse:
        status = exc.http_status
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:  # the database or the node: worth trying again shortly
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            _outages.log(exc)
        return problem(status, exc.code, type(exc).__name__, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        return problem(422, "invalid-input", "InvalidInput", first.get("msg", "invalid request"),
                       ".".join(loc) or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 413: "too-large",
                429: "rate-limited"}.get(exc.status_code, "http-error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every method the path has, not only its first route's
            headers = {**(headers or {}), "Allow": ", ".join(_methods(request))}
        return problem(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")  # the log has the trace; the client never does
        return problem(500, "internal", "Internal error", "the error was logged")
