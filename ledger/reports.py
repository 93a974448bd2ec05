"""Reports: a citizen's period statement, a partner's contribution, the city's totals.

Periods are local calendar days or months (China Standard Time, the methodology's cap
day), given as inclusive ISO dates. Every figure is an integer sum of ledger entries,
so a report can be recomputed from the entries an auditor already holds. Each report
also carries a ``chart``: the series a page (or :mod:`api.charts`) draws.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ledger.accounts import balance
from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, KIND_DEBIT
from ledger.models import ActivityRecord, Batch, LedgerEntry

LOCAL = timedelta(hours=8)  # the day caps and reports count in (UTC+8)
PERIODS = ("day", "month")
MAX_DAYS = 366 * 3
EARLIEST, LATEST = date(1970, 1, 2), date(2999, 12, 31)
MIN_CELL_CITIZENS = 3  # city cells with fewer citizens are withheld (small-cell privacy)


@dataclass(frozen=True)
class Window:
    """Local dates ``first`` to ``last`` inclusive, and the unix seconds they span."""

    first: date
    last: date

    @classmethod
    def of(cls, first: date, last: date) -> Window:
        for name, day in (("from", first), ("to", last)):
            if not EARLIEST <= day <= LATEST:
                raise InvalidInput(f"a date from {EARLIEST} to {LATEST}", field=name)
        if last < first:
            raise InvalidInput("must not be before 'from'", field="to")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInput(f"at most {MAX_DAYS} days per report", field="to")
        return cls(first, last)

    @property
    def since(self) -> int:
        return _unix(self.first)

    @property
    def until(self) -> int:  # exclusive
        return _unix(self.last + timedelta(days=1))

    def as_dict(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def _unix(day: date) -> int:
    return int((datetime.combine(day, datetime.min.time(), UTC) - LOCAL).timestamp())


def _local_day_expr(column: Any) -> Any:
    return ((column + int(LOCAL.total_seconds())) // 86400).label("day")


def _period_key(day_number: int, period: str) -> str:
    day = date(1970, 1, 1) + timedelta(days=int(day_number))
    return day.isoformat() if period == "day" else day.strftime("%Y-%m")


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise InvalidInput(f"one of {', '.join(PERIODS)}", field="period")


def _chart(kind: str, x: list[str], by_series: dict[str, dict[str, int]], *,
           unit: str = "g CO2e") -> dict[str, Any]:
    return {"type": kind, "unit": unit, "x": x,
            "series": [{"name": name, "values": [values.get(k, 0) for k in x]}
                       for name, values in sorted(by_series.items())]}


def citizen_statement(session: Session, citizen_id: int, window: Window) -> dict[str, Any]:
    """Reductions by behaviour, points earned and spent, and how many of the period's
    entries are anchored on chain."""
    in_window = (LedgerEntry.citizen_id == citizen_id, LedgerEntry.occurred_at >= window.since,
                 LedgerEntry.occurred_at < window.until)
    rows = session.execute(
        select(LedgerEntry.behaviour, func.count(), func.sum(LedgerEntry.reduction_grams),
               func.sum(LedgerEntry.points))
        .where(*in_window, LedgerEntry.kind == KIND_CREDIT)
        .group_by(LedgerEntry.behaviour).order_by(LedgerEntry.behaviour)).all()
    spent = session.scalar(select(func.coalesce(func.sum(LedgerEntry.points), 0))
                           .where(*in_window, LedgerEntry.kind == KIND_DEBIT))
    anchored_upto = session.scalar(select(func.coalesce(func.max(Batch.last_seq), 0))
                                   .where(Batch.status == "anchored"))
    counts = session.execute(
        select(func.count(), func.count().filter(LedgerEntry.seq <= anchored_upto))
        .where(*in_window)).one()
    behaviours: list[dict[str, Any]] = [
        {"behaviour": b, "entries": n, "reductionGrams": int(g or 0), "points": int(p or 0)}
        for b, n, g, p in rows]
    return {
        "period": window.as_dict(),
        "reductionGrams": sum(b["reductionGrams"] for b in behaviours),
        "pointsEarned": sum(b["points"] for b in behaviours),
        "pointsSpent": int(spent or 0),
        "balance": balance(session, citizen_id),
        "entries": int(counts[0]), "entriesAnchored": int(counts[1]),
        "behaviours": behaviours,
        "chart": _chart("bar", [b["behaviour"] for b in behaviours],
                        {"reduction": {b["behaviour"]: b["reductionGrams"] for b in behaviours}}),
    }


def partner_contribution(session: Session, partner_id: int, window: Window, *,
                         period: str = "day") -> dict[str, Any]:
    """Grams credited from this partner's records, per period and behaviour."""
    _check_period(period)
    day = _local_day_expr(ActivityRecord.occurred_at)
    rows = session.execute(
        select(day, ActivityRecord.behaviour, func.count(), func.sum(LedgerEntry.reduction_grams))
        # by the entries' citizen index: entry_id alone has none (see EntryLocator)
        .join(LedgerEntry, and_(LedgerEntry.citizen_id == ActivityRecord.citizen_id,
                                LedgerEntry.occurred_at == ActivityRecord.occurred_at,
                                LedgerEntry.entry_id == ActivityRecord.entry_id))
        .where(ActivityRecord.partner_id == partner_id,
               ActivityRecord.occurred_at >= window.since, ActivityRecord.occurred_at < window.until)
        .group_by("day", ActivityRecord.behaviour)).all()
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for d, b, n, g in rows:
        cell = cells[(_period_key(d, period), b)]
        cell[0] += n
        cell[1] += int(g or 0)
    out = [{"period": p, "behaviour": b, "records": n, "reductionGrams": g}
           for (p, b), (n, g) in sorted(cells.items())]
    return {"period": window.as_dict(), "by": period, "rows": out,
            "reductionGrams": sum(r["reductionGrams"] for r in out),
            "chart": _series(out, "reductionGrams")}


def city_totals(session: Session, window: Window, *, period: str = "day") -> dict[str, Any]:
    """Reductions across all citizens, per period and behaviour. A cell with fewer than
    :data:`MIN_CELL_CITIZENS` citizens is withheld, so no one's day can be read off it."""
    _check_period(period)
    day = _local_day_expr(LedgerEntry.occurred_at)
    rows = session.execute(
        select(day, LedgerEntry.behaviour, LedgerEntry.citizen_id, func.count(),
               func.sum(LedgerEntry.reduction_grams))
        .where(LedgerEntry.kind == KIND_CREDIT, LedgerEntry.occurred_at >= window.since,
               LedgerEntry.occurred_at < window.until)
        .group_by("day", LedgerEntry.behaviour, LedgerEntry.citizen_id)).all()
    cells: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"entries": 0, "grams": 0, "citizens": set()})
    for d, b, citizen, n, g in rows:
        cell = cells[(_period_key(d, period), b)]
        cell["entries"] += n
        cell["grams"] += int(g or 0)
        cell["citizens"].add(citizen)
    out = []
    for (p, b), cell in sorted(cells.items()):
        shown = len(cell["citizens"]) >= MIN_CELL_CITIZENS
        out.append({"period": p, "behaviour": b, "citizens": len(cell["citizens"]) if shown else None,
                    "entries": cell["entries"] if shown else None,
                    "reductionGrams": cell["grams"] if shown else None, "withheld": not shown})
    return {"period": window.as_dict(), "by": period, "rows": out,
            "reductionGrams": sum(c["grams"] for c in cells.values()),
            "citizens": len(set().union(*(c["citizens"] for c in cells.values()))),
            "chart": _series([r for r in out if not r["withheld"]], "reductionGrams")}


def _series(rows: list[dict[str, Any]], value: str) -> dict[str, Any]:
    periods = sorted({r["period"] for r in rows})
    by: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        by[r["behaviour"]][r["period"]] = r[value]
    return _chart("stackedBar", periods, by)
