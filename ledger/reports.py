"""Reports: a citizen's period statement, a partner's contribution, the city's totals.

Periods are local calendar days or months (China Standard Time, the methodology's cap
day), given as inclusive ISO dates. Every figure is an integer sum of ledger entries,
so a report can be recomputed from the entries an auditor already holds. Each report
also carries a ``chart``: the series a page (or :mod:`api.cli.charts`) draws.

The city report is public, so no combination of its answers, asked for any windows at
any times, may reveal a cell of fewer than :data:`MIN_CELL_CITIZENS` citizens. The rule:

1. The unit is the (local day, behaviour) cell; a month cell covers the whole calendar
   month (a month report's window widens to whole months), so no window cuts a cell and
   differencing two windows yields whole cells, never part of one.
2. A cell is final before it is shown: a day shows once it ended :data:`PUBLISH_AFTER`
   ago, and counts only credits received within :data:`SETTLE` of its end; a month shows
   once its last day does. A late record never changes a figure already published, so
   asking again later yields no difference either.
3. A day cell is published when it has at least :data:`MIN_CELL_CITIZENS` citizens.
4. A month cell is published when it has enough citizens and its withheld days together
   are empty or have enough citizens (secondary suppression: the month less its
   published days is exactly its withheld days). Decided from final days only, so a
   published day is never withheld later.
5. Totals are sums of the published cells of the answer, never of withheld ones.

So every published figure is a sum of disjoint blocks (a published day, or a published
month's withheld days), each of at least :data:`MIN_CELL_CITIZENS` citizens, and any
combination of them is a combination of such blocks. Noise (differential privacy) would
need a privacy budget that unlimited public queries exhaust; suppression keeps exact
integers and a rule anyone can check.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ledger.accounts import balance
from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, KIND_DEBIT
from ledger.methodology import local_day_offset
from ledger.store import rollups
from ledger.store.models import ActivityRecord, Batch, LedgerEntry
from ledger.store.rollups import SETTLE

LOCAL = local_day_offset()  # the day caps and reports count in (the methodology's)
PERIODS = ("day", "month")
MAX_DAYS = 366 * 3
EARLIEST, LATEST = date(1970, 1, 2), date(2999, 12, 31)
MIN_CELL_CITIZENS = 3  # city cells with fewer citizens are withheld (small-cell privacy)
PUBLISH_AFTER = SETTLE + timedelta(hours=1)  # and the day shows once no such credit can commit
EPOCH = date(1970, 1, 1)


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
    day = EPOCH + timedelta(days=int(day_number))
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


@dataclass
class _Cell:
    """One city month cell: its entries, grams and distinct citizens."""

    entries: int = 0
    grams: int = 0
    citizens: int = 0

    @property
    def large_enough(self) -> bool:
        return self.citizens >= MIN_CELL_CITIZENS


def closed_through(now: int) -> date:
    """The last local day whose city cells are final at unix time ``now``."""
    return _local_date(now - int(PUBLISH_AFTER.total_seconds())) - timedelta(days=1)


def next_close(now: int) -> int:
    """The unix time after ``now`` at which :func:`closed_through` moves to the next day:
    until then, a city report of any window is what it is at ``now``."""
    local = now - int(PUBLISH_AFTER.total_seconds()) + int(LOCAL.total_seconds())
    return (local // 86400 + 1) * 86400 - int(LOCAL.total_seconds()) + int(PUBLISH_AFTER.total_seconds())


def city_totals(session: Session, window: Window, *, period: str = "day",
                now: int | None = None) -> dict[str, Any]:
    """Credited reductions across all citizens, per day or calendar month and behaviour,
    for the closed periods of the window, under the rule in this module's docstring.

    Read from the rollups kept as credits are written (:mod:`ledger.store.rollups`): a
    few rows per day of the window, whatever the ledger's size. A year by day is some
    7,000 cells, so each costs a few dict entries here and nothing more (no date
    objects: a day stays its number until its label, made once per day)."""
    _check_period(period)
    last_closed = closed_through(int(time.time()) if now is None else now)
    connection = session.connection()
    if period == "day":
        shown = window
        last = min(window.last, last_closed)
        rows = _day_rows(connection, window.first, last)
    else:
        shown = Window(window.first.replace(day=1), _month_end(window.last))
        last = min(shown.last, _whole_months(last_closed))
        rows = _month_rows(connection, shown.first, last)
    out: list[dict[str, Any]] = []
    withheld: list[tuple[str, int, int]] = []
    published: set[tuple[Any, str]] = set()
    by_behaviour: dict[str, dict[str, int]] = defaultdict(dict)
    grams = 0
    for key, label, behaviour, entries, cell_grams, citizens, span in rows:
        if citizens >= MIN_CELL_CITIZENS and span is None:
            out.append({"period": label, "behaviour": behaviour, "citizens": citizens,
                        "entries": entries, "reductionGrams": cell_grams, "withheld": False})
            published.add((key, behaviour))
            by_behaviour[behaviour][label] = cell_grams
            grams += cell_grams  # sums of the published cells only: never a withheld one
        else:
            out.append({"period": label, "behaviour": behaviour, "citizens": None,
                        "entries": None, "reductionGrams": None, "withheld": True})
            withheld.append((behaviour, *(span or (key, key))))
    citizens_shown = 0
    if published:
        citizens_shown = _published_citizens(connection, shown.first, last, withheld, published,
                                             by_month=period == "month")
    periods = sorted({label for values in by_behaviour.values() for label in values})
    return {"period": shown.as_dict(), "by": period, "closedThrough": last_closed.isoformat(),
            "rows": out, "reductionGrams": grams, "citizens": citizens_shown,
            "chart": _chart("stackedBar", periods, by_behaviour)}


#: (key, label, behaviour, entries, grams, citizens, withheld span) of a report's cell in
#: the report's order: the key is a day's number or a month's label; the span (first,
#: last day) is set for a month withheld whatever its citizens (its withheld days)
_CellRow = tuple[Any, str, str, int, int, int, "tuple[int, int] | None"]


def _published_citizens(connection: Any, first: date, last: date,
                        withheld: list[tuple[str, int, int]], published: set[tuple[Any, str]],
                        *, by_month: bool) -> int:
    """The distinct citizens of the published cells: those of every cell of the window,
    less the citizens of withheld cells who are in no published one."""
    a, b = _day_number(first), _day_number(last)
    everyone = rollups.distinct_citizens(connection, [(rollups.ANY, a, b)])[(rollups.ANY, a, b)]
    held: dict[int, set[int]] = defaultdict(set)  # a citizen of a withheld cell: its days
    for _, d, c in rollups.citizens_in(connection, withheld):
        held[c].add(d)
    if not held:
        return everyone
    # Each behaviour a citizen had on a day of the window is a cell, withheld or published:
    # present on a day none of their withheld cells covers, they are in a published one.
    # One probe a citizen (their days in any behaviour) finds most, and only the rest are
    # sought in every behaviour: a sparse year's 1,271 citizens of withheld cells left
    # 152 so (2026-12-08, docs/benchmarks.md); all in every behaviour, 2,088 of another
    # year took 43,848 probes, 100 ms.
    unseen = set(held)
    for _, c, d in rollups.days_present(connection, [rollups.ANY], sorted(unseen), a, b):
        if d not in held[c]:
            unseen.discard(c)
    if unseen:
        behaviours = sorted({key[1] for key in published})
        for s, c, d in rollups.days_present(connection, behaviours, sorted(unseen), a, b):
            if ((_period_key(d, "month") if by_month else d), s) in published:
                unseen.discard(c)
    return everyone - len(unseen)


def _day_rows(connection: Any, first: date, last: date) -> list[_CellRow]:
    """The city's day cells from ``first`` to ``last`` in (day, behaviour) order, each
    frozen at its cut-off (only credits whose record was received by the end of their
    local day plus :data:`SETTLE`, which the rollups count as they are written)."""
    if last < first:
        return []
    a, b = _day_number(first), _day_number(last)
    labels = {d: _period_key(d, "day") for d in range(a, b + 1)}
    return [(d, labels[d], s, n, g, c, None) for d, s, n, g, c in rollups.cells(connection, a, b)]


def _month_rows(connection: Any, first: date, last: date) -> list[_CellRow]:
    """Whole months from their day cells. A month is published when it has enough citizens
    and the days withheld inside it are none, or together hold enough citizens: the month
    less its published days is exactly those days, so that difference must be safe too."""
    months: dict[tuple[str, str], _Cell] = defaultdict(_Cell)
    withheld: dict[tuple[str, str], list[int]] = defaultdict(list)
    for d, label, b, n, g, c, _ in _day_rows(connection, first, last):
        key = (label[:7], b)
        months[key].entries += n
        months[key].grams += g
        if c < MIN_CELL_CITIZENS:
            withheld[key].append(d)
    spans = {key: (b, _day_number(_month_start(m)), _day_number(_month_end(_month_start(m))))
             for key in months for m, b in [key]}
    counted = rollups.distinct_citizens(connection, list(spans.values()))
    apart = rollups.citizens_in(connection, [(b, d, d) for (_, b), ds in withheld.items()
                                             for d in ds])
    rest: dict[tuple[str, str], set[int]] = defaultdict(set)
    for b, d, citizen in apart:
        rest[(_period_key(d, "month"), b)].add(citizen)
    rows: list[_CellRow] = []
    for (month, b), cell in sorted(months.items()):
        cell.citizens = counted[spans[(month, b)]]
        ok = cell.large_enough and (
            (month, b) not in withheld or len(rest[(month, b)]) >= MIN_CELL_CITIZENS)
        rows.append((month, month, b, cell.entries, cell.grams, cell.citizens,
                     None if ok else spans[(month, b)][1:]))
    return rows


def _day_number(day: date) -> int:
    return (day - EPOCH).days


def _month_start(month: str) -> date:
    return date.fromisoformat(month + "-01")


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _whole_months(through: date) -> date:
    """The last day of the last whole month up to ``through``."""
    return through if _month_end(through) == through else through.replace(day=1) - timedelta(days=1)


def _local_date(unix: int) -> date:
    return EPOCH + timedelta(days=(unix + int(LOCAL.total_seconds())) // 86400)


def _series(rows: list[dict[str, Any]], value: str) -> dict[str, Any]:
    periods = sorted({r["period"] for r in rows})
    by: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        by[r["behaviour"]][r["period"]] = r[value]
    return _chart("stackedBar", periods, by)
