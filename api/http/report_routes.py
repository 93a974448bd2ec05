"""Report routes: a citizen's statement, a partner's contribution, the city's totals.

Each answer carries the table and a ``chart`` series a page can draw as is."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from api.http.deps import AuditorDep, CitizenDep, PartnerDep, SessionDep
from ledger.audit import audit_batch
from ledger.reports import Window, citizen_statement, city_totals, partner_contribution

router = APIRouter(prefix="/v1")

First = Annotated[date, Query(alias="from", description="first local date (UTC+8), YYYY-MM-DD")]
Last = Annotated[date, Query(alias="to", description="last local date, inclusive")]
Period = Annotated[Literal["day", "month"], Query()]


@router.get("/me/statement", tags=["citizens"])
def my_statement(session: SessionDep, who: CitizenDep, first: First, last: Last) -> dict[str, Any]:
    """Your period statement: kg CO2e by behaviour, points earned and spent, and how many
    of the period's entries are anchored."""
    return citizen_statement(session, who.citizen_id, Window.of(first, last))  # type: ignore[arg-type]


@router.get("/contribution", tags=["partners"])
def contribution(session: SessionDep, who: PartnerDep, first: First, last: Last,
                 period: Period = "day") -> dict[str, Any]:
    """Grams CO2e credited from your records, by behaviour and day or month."""
    return partner_contribution(session, who.partner_id, Window.of(first, last),  # type: ignore[arg-type]
                                period=period)


@router.get("/reports/city", tags=["public"])
def city(session: SessionDep, first: First, last: Last, period: Period = "day") -> dict[str, Any]:
    """Reductions across the city by behaviour and day or whole month, for the days that
    are final (``closedThrough``). Aggregates only: a cell of fewer than three citizens is
    withheld, so is a month whose withheld days would show by difference, and totals add
    up the cells shown."""
    return city_totals(session, Window.of(first, last), period=period)


@router.get("/batches/{batch_id}/audit", tags=["auditors"])
def audit(batch_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep,
          who: AuditorDep) -> dict[str, Any]:
    """Recompute the batch from the partners' raw records and the published methodology:
    every leaf, record hash, version, reduction, cap and the root."""
    return audit_batch(session, batch_id).as_dict()  # type: ignore[arg-type]
