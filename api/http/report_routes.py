"""Report routes: a citizen's statement, a partner's contribution, the city's totals.

Each answer carries the table and a ``chart`` series a page can draw as is."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.http.deps import AuditorDep, CitizenDep, PartnerDep, SessionDep, StateDep
from api.http.responses import JSON, json_response
from api.http.schemas import (
    Audit,
    AuditEntryPage,
    AuditJob,
    BatchId,
    CityTotals,
    Contribution,
    FromDate,
    Statement,
    ToDate,
    ok,
    problems,
    ref,
)
from ledger.audit import audit_entries
from ledger.audit_jobs import RETRY_SECONDS, batch_audit
from ledger.reports import (
    Window,
    citizen_statement,
    city_totals,
    closed_through,
    next_close,
    partner_contribution,
)

router = APIRouter(prefix="/v1")

First = FromDate
Last = ToDate
Period = Annotated[Literal["day", "month"], Query(description="rows per local day or per "
                                                  "calendar month")]


@router.get("/me/statement", tags=["citizens"], response_model=None,
            responses=ok(Statement, problems(401, 403, 422, 503)))
def my_statement(session: SessionDep, who: CitizenDep, first: First, last: Last) -> Response:
    """Your period statement: kg CO2e by behaviour, points earned and spent, and how many
    of the period's entries are anchored."""
    return json_response(citizen_statement(session, who.citizen_id, Window.of(first, last)))  # type: ignore[arg-type]


@router.get("/contribution", tags=["partners"], response_model=None,
            responses=ok(Contribution, problems(401, 403, 422, 503)))
def contribution(session: SessionDep, who: PartnerDep, first: First, last: Last,
                 period: Period = "day") -> Response:
    """Grams CO2e credited from your records, by behaviour and day or month."""
    return json_response(partner_contribution(session, who.partner_id, Window.of(first, last),  # type: ignore[arg-type]
                                              period=period))


_CACHED = {"ETag": {"description": "the answer's tag: send it as `If-None-Match` and an answer "
                    "unchanged comes as 304", "schema": {"type": "string"}},
           "Cache-Control": {"description": "public, until the next day closes",
                             "schema": {"type": "string"}}}


@router.get("/reports/city", tags=["public"], response_model=None,
            responses=ok(CityTotals, problems(422, 503), {304: {
                "description": "the answer tagged `If-None-Match`, unchanged",
                "headers": _CACHED}}, headers=_CACHED))
def city(request: Request, state: StateDep, first: First, last: Last,
         period: Period = "day") -> Response:
    """Reductions across the city by behaviour and day or whole month, for the days that
    are final (``closedThrough``). Aggregates only: a cell of fewer than three citizens is
    withheld, so is a month whose withheld days would show by difference, and totals add
    up the cells shown. A final day never changes, so an answer holds until the next day
    closes: caches may keep it that long (``Cache-Control``), and ``If-None-Match`` with
    its ``ETag`` is answered 304 while it holds."""
    window, now = Window.of(first, last), int(time.time())
    key = (window.first, window.last, period, closed_through(now))
    # The same window, period and closedThrough: the same answer (ledger.reports, rule 2),
    # made once per worker while it holds. orjson: a year by day is ~7,600 cells, which
    # FastAPI's own encoder took over 100 ms to walk (0.6 ms here; 2026-12-06,
    # docs/benchmarks.md)
    kept = state.city_answers.get(key)
    if kept is None:
        with state.container.db.session(snapshot=True) as s:
            body = orjson.dumps(city_totals(s, window, period=period, now=now))
        kept = (body, f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')
        state.city_answers.put(key, kept)
    body, tag = kept
    headers = {"ETag": tag, "Cache-Control": f"public, max-age={next_close(now) - now}"}
    if _tags(request.headers.get("if-none-match", "")) & {tag, "*"}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)


def _tags(if_none_match: str) -> set[str]:
    """The entity tags an ``If-None-Match`` names, weak or strong alike (RFC 9110 13.1.2)."""
    return {t.strip().removeprefix("W/") for t in if_none_match[:4096].split(",")}


Refresh = Annotated[bool, Query(description="audit a large batch again, though a report of it "
                                "is stored")]
After = Annotated[int, Query(ge=0, le=2**62, description="the `next` of the page before; "
                             "from the batch's first entry if left out")]
PageSize = Annotated[int, Query(ge=1, le=1000, description="at most this many entries")]
_RUNNING: dict[int | str, Any] = {202: {"description": "a large batch's audit is under way: ask again after "
                  "`Retry-After` seconds (the answer is then the report)",
                  "headers": {"Retry-After": {"description": "seconds to wait", "schema": {
                      "type": "string", "pattern": "^[0-9]+$"}}},
                  "content": {"application/json": {"schema": ref(AuditJob)}}}}


@router.get("/batches/{batch_id}/audit", tags=["auditors"], response_model=None,
            responses=ok(Audit, "the batch's recomputation", _RUNNING,
                         problems(401, 403, 404, 422, 503)))
def audit(batch_id: BatchId, state: StateDep, who: AuditorDep,
          refresh: Refresh = False) -> Response:
    """Recompute the batch from the partners' raw records and the published methodology:
    every leaf, record hash, version, reduction, cap and the root. A batch of up to
    100,000 entries is recomputed in the request; a larger one by a job: 202 with its
    progress until it is done, then its stored report (`auditedAt` says when it was
    made; `refresh=true` starts it anew). The recomputed root, leaf count and content hash
    are held against what the chain holds for the batch (`heldAgainstChain`): a batch a
    reorg took away, or anchored with other contents, is a problem named in the report.
    Each entry's recomputation: `/batches/{id}/audit/entries`."""
    answer = batch_audit(state.container.db, batch_id, chain=state.anchor.reader(),
                         job_chain=state.container.audit_job_chain(state.anchor),
                         refresh=refresh)
    if answer.status == 202:
        return JSONResponse(answer.body, status_code=202,
                            headers={"Retry-After": str(RETRY_SECONDS)})
    return json_response(answer.body)


@router.get("/batches/{batch_id}/audit/entries", tags=["auditors"], response_model=None,
            responses=ok(AuditEntryPage, problems(401, 403, 404, 422, 503)))
def audit_entry_page(batch_id: BatchId, session: SessionDep, who: AuditorDep,
                     after: After | None = None, limit: PageSize = 100) -> Response:
    """One page of the batch's per-entry recomputation, in the batch's order (`seq`):
    each entry's leaf hash, raw record hash, the methodology version in force, the
    factors' full figure, the rule's points, and what does not hold. The cost of a page
    follows `limit`, not the batch."""
    page = audit_entries(session, batch_id, after=after, limit=limit)
    return json_response({"batchId": page.batch_id, "entries": [e.as_dict() for e in page.entries],
                          "next": None if page.next_after is None else str(page.next_after)})
