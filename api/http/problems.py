"""Every error as RFC 9457 problem+json, translated in one place (the status is the error
class's own ``http_status``, ledger/errors.py).

``type`` is stable (``urn:carbon-ledger:problem:<code>``), ``field`` names what was at
fault. Nothing reaches a client as a 500 with a traceback."""

from __future__ import annotations

import logging
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
