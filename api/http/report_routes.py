"""Report routes: a citizen's statement, a partner's contribution, the city's totals.

Each answer carries the table and a ``chart`` series a page can draw as is."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.http.deps import AuditorDep, CitizenDep, PartnerDep, SessionDep
from api.http.schemas import (
    Audit,
    BatchId,
    CityTotals,
    Contribution,
    FromDate,
    Statement,
    ToDate,
    ok,
    problems,
)
from ledger.audit import audit_batch
from ledger.reports import Window, citizen_statement, city_totals, partner_contribution

router = APIRouter(prefix="/v1")

First = FromDate
Last = ToDate
Period = Annotated[Literal["day", "month"], Query(description="rows per local day or per "
                                                  "calendar month")]


@router.get("/me/statement", tags=["citizens"], response_model=None,
            responses=ok(Statement, problems(401, 403, 422, 503)))
def my_statement(session: SessionDep, who: CitizenDep, first: First, last: Last) -> dict[str, Any]:
    """Your period statement: kg CO2e by behaviour, points earned and spent, and how many
    of the period's entries are anchored."""
    return citizen_statement(session, who.citizen_id, Window.of(first, last))  # type: ignore[arg-type]


@router.get("/contribution", tags=["partners"], response_model=None,
            responses=ok(Contribution, problems(401, 403, 422, 503)))
def contribution(session: SessionDep, who: PartnerDep, first: First, last: Last,
                 period: Period = "day") -> dict[str, Any]:
    """Grams CO2e credited from your records, by behaviour and day or month."""
    return partner_contribution(session, who.partner_id, Window.of(first, last),  # type: ignore[arg-type]
                                period=period)


@router.get("/reports/city", tags=["public"], response_model=None,
            responses=ok(CityTotals, problems(422, 503)))
def city(session: SessionDep, first: First, last: Last, period: Period = "day") -> dict[str, Any]:
    """Reductions across the city by behaviour and day or whole month, for the days that
    are final (``closedThrough``). Aggregates only: a cell of fewer than three citizens is
    withheld, so is a month whose withheld days would show by difference, and totals add
    up the cells shown."""
    return city_totals(session, Window.of(first, last), period=period)


@router.get("/batches/{batch_id}/audit", tags=["auditors"], response_model=None,
            responses=ok(Audit, problems(401, 403, 404, 422, 503)))
def audit(batch_id: BatchId, session: SessionDep,
          who: AuditorDep) -> dict[str, Any]:
    """Recompute the batch from the partners' raw records and the published methodology:
    every leaf, record hash, version, reduction, cap and the root."""
    return audit_batch(session, batch_id).as_dict()  # type: ignore[arg-type]
