"""The public city report under attack: no combination of its answers may reveal a cell of
fewer than three citizens.

A small city in a closed month (March 2025): four days, three behaviours, five citizens,
with one citizen alone in a cell (twice) and two pairs in cells of two. The attacker asks
``GET /v1/reports/city`` for every window of whole days, by day and by month, subtracts
the shown cells from the totals, differences overlapping windows, and takes the month
apart into its days. Every figure the answers give is a sum of per-citizen, per-day,
per-behaviour amounts (the unknowns); whatever the attacker can derive is in the span of
those sums. The test asks linear algebra whether that span holds any nonzero combination
of the amounts of one or two citizens alone: if it does, that much of them is revealed.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.composition import Container
from api.http import report_routes
from api.http.app import create_app
from api.settings import Settings
from ledger import accounts
from ledger.intake.service import submit_records
from ledger.reports import closed_through, next_close
from ledger.store.database import Database
from ledger.store.models import Citizen, LedgerEntry
from tests.conftest import CST, a_record

DAYS = [date(2025, 3, 3) + timedelta(days=i) for i in range(4)]  # d1..d4, a closed month
# behaviour → day index → citizens (by index) who did it that day
WHO = {
    "CYCLING": {0: [1, 2, 3, 4], 1: [1, 2, 3, 4], 2: [1, 2, 3, 4], 3: [0]},  # 0 alone on d4
    "METRO": {0: [1, 2, 3], 1: [1, 2], 2: [3, 4]},  # pairs on d2 and d3
    "BUS": {1: [0]},  # 0 the only one all month
}
PARTNER_KIND = {"CYCLING": ("greenbike", "bike_share"), "METRO": ("citymetro", "transit"),
                "BUS": ("citymetro", "transit")}

Atom = tuple[int, date, str]  # (citizen index, local day, behaviour)


def at_noon(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(12, minutes), CST)


def a_record_at(pseudonym: str, behaviour: str, quantity: int, when: datetime) -> dict:
    hours_ago = (datetime.now(CST) - when).total_seconds() / 3600
    return a_record(pseudonym, behaviour=behaviour, quantity=quantity, hours_ago=hours_ago)


class City:
    """The ledger above, the public app over it, and the ground truth the attacker lacks."""

    def __init__(self, db: Database, client: TestClient, citizens: list[Citizen]) -> None:
        self.db, self.client, self.citizens = db, client, citizens
        self.truth = self._amounts()

    def _amounts(self) -> dict[Atom, int]:
        index = {c.id: i for i, c in enumerate(self.citizens)}
        with self.db.session() as s:
            rows = s.execute(select(LedgerEntry.citizen_id, LedgerEntry.occurred_at,
                                    LedgerEntry.behaviour, LedgerEntry.reduction_grams)
                             .where(LedgerEntry.kind == 1)).all()
        amounts: dict[Atom, int] = defaultdict(int)
        for citizen, occurred, behaviour, grams in rows:
            day = datetime.fromtimestamp(occurred, CST).date()
            amounts[(index[citizen], day, behaviour)] += grams
        return dict(amounts)

    def forget(self) -> None:
        """Drop the answers the app keeps (api.http.report_routes), so the next is made anew."""
        self.client.app.state.ledger.city_answers.clear()  # type: ignore[attr-defined]

    def ask(self, first: date, last: date, period: str) -> dict[str, Any]:
        answer = self.client.get("/v1/reports/city", params={
            "from": first.isoformat(), "to": last.isoformat(), "period": period})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def every_answer(self) -> Iterator[dict[str, Any]]:
        for i, j in itertools.combinations_with_replacement(range(len(DAYS)), 2):
            for period in ("day", "month"):
                yield self.ask(DAYS[i], DAYS[j], period)
        yield self.ask(date(2025, 3, 1), date(2025, 3, 31), "month")
        yield self.ask(date(2025, 2, 1), date(2025, 4, 30), "day")


@pytest.fixture
def city(db: Database, make_partner, make_citizen, tmp_path: Path) -> Iterator[City]:  # type: ignore[no-untyped-def]
    citizens = [make_citizen() for _ in range(5)]
    partners = {code: make_partner(code, kind) for code, kind in set(PARTNER_KIND.values())}
    for behaviour, days in WHO.items():
        partner = partners[PARTNER_KIND[behaviour][0]]
        for d, who in days.items():
            when = at_noon(DAYS[d], 0)
            records = [a_record_at(citizens[c].pseudonym, behaviour,
                                   2000 + 310 * c + 170 * d, when + timedelta(minutes=c))
                       for c in who]
            with db.session(write_lock=True) as s:  # sent by the partner an hour later
                result = submit_records(s, partner=s.merge(partner), records=records,
                                        now=int(when.timestamp()) + 3600)
            assert [o.status for o in result.outcomes] == ["accepted"] * len(who)
    container = Container(Settings(data_dir=tmp_path / "state", chain="tester",
                                   database_url=db.url, rate_limit="1000000/minute"))
    with TestClient(create_app(container, run_sealer=False)) as client:
        yield City(db, client, citizens)
    container.db.engine.dispose()


def _days_of(period: str, answer: dict[str, Any]) -> list[date]:
    """The days a row covers: its day, or its month's days within the answer's window."""
    first = date.fromisoformat(answer["period"]["from"])
    last = date.fromisoformat(answer["period"]["to"])
    if len(period) == 10:
        return [date.fromisoformat(period)]
    year, month = map(int, period.split("-"))
    day, days = max(first, date(year, month, 1)), []
    while day <= last and day.month == month:
        days.append(day)
        day += timedelta(days=1)
    return days


def published_sums(city: City) -> list[tuple[frozenset[Atom], int]]:
    """Every figure the public answers give, as (the amounts it adds up, its value). A
    figure that is not the sum of the rows shown beside it covers its whole window."""
    figures = []
    for answer in city.every_answer():
        shown = [r for r in answer["rows"] if not r["withheld"]]
        for r in shown:
            days = set(_days_of(r["period"], answer))
            cover = frozenset(a for a in city.truth if a[1] in days and a[2] == r["behaviour"])
            figures.append((cover, r["reductionGrams"]))
        if answer["reductionGrams"] != sum(r["reductionGrams"] for r in shown):
            first = date.fromisoformat(answer["period"]["from"])
            last = date.fromisoformat(answer["period"]["to"])
            figures.append((frozenset(a for a in city.truth if first <= a[1] <= last),
                            answer["reductionGrams"]))
    for cover, value in figures:  # the attacker's reading of each figure is right
        assert value == sum(city.truth[a] for a in cover)
    return figures


def rank(rows: list[list[int]]) -> int:
    """The rank of an integer matrix, exactly (Gaussian elimination over the rationals)."""
    matrix = [[Fraction(x) for x in row] for row in rows if any(row)]
    r = 0
    for col in range(len(matrix[0]) if matrix else 0):
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][col]), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        for i in range(len(matrix)):
            if i != r and matrix[i][col]:
                factor = matrix[i][col] / matrix[r][col]
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[r], strict=True)]
        r += 1
    return r


def revealed_groups(figures: list[tuple[frozenset[Atom], int]], atoms: list[Atom],
                    citizens: int) -> list[tuple[int, ...]]:
    """The groups of one or two citizens of whom some combination of figures reveals a
    nonzero sum: exactly those whose columns, struck out, lower the figures' rank."""
    matrix = [[1 if a in cover else 0 for a in atoms] for cover, _ in figures]
    full = rank(matrix)
    found = []
    for size in (1, 2):
        for group in itertools.combinations(range(citizens), size):
            keep = [k for k, a in enumerate(atoms) if a[0] not in group]
            if rank([[row[k] for k in keep] for row in matrix]) < full:
                found.append(group)
    return found


def test_no_combination_of_public_answers_reveals_fewer_than_three_citizens(city: City) -> None:
    figures = published_sums(city)
    assert figures, "the report publishes nothing: the test would prove nothing"
    atoms = sorted(city.truth)
    assert revealed_groups(figures, atoms, len(city.citizens)) == []


def test_the_classic_differences_give_nothing_away(city: City) -> None:
    """The attacks spelled out: the lone citizen's ride on d4 is never the answer."""
    lone = city.truth[(0, DAYS[3], "CYCLING")]
    whole, but_last = city.ask(DAYS[0], DAYS[3], "day"), city.ask(DAYS[0], DAYS[2], "day")
    last_day = city.ask(DAYS[3], DAYS[3], "day")
    derived = {
        "total minus shown cells": last_day["reductionGrams"]
        - sum(r["reductionGrams"] for r in last_day["rows"] if not r["withheld"]),
        "overlapping day windows": whole["reductionGrams"] - but_last["reductionGrams"],
    }
    months = [city.ask(DAYS[0], d, "month") for d in (DAYS[2], DAYS[3])]
    cycling = [next((r["reductionGrams"] for r in m["rows"] if r["behaviour"] == "CYCLING"), None)
               for m in months]
    if None not in cycling:
        derived["overlapping month windows"] = cycling[1] - cycling[0]
    days_shown = sum(r["reductionGrams"] for r in whole["rows"]
                     if r["behaviour"] == "CYCLING" and not r["withheld"])
    if cycling[1] is not None:
        derived["month minus its published days"] = cycling[1] - days_shown
    assert lone not in derived.values(), derived


def test_a_published_cell_never_changes_and_an_open_day_is_not_shown(city: City) -> None:
    """A record sent late, or today's, would change a figure someone already holds: the
    difference would be that record. Neither enters the public report."""
    before = city.ask(DAYS[0], DAYS[3], "day")
    with city.db.session(write_lock=True) as s:
        bikes = accounts.get_partner(s, "greenbike")
        when = at_noon(DAYS[1], 30)  # sent three days later: late, as some partners are
        late = a_record_at(city.citizens[1].pseudonym, "CYCLING", 1234, when)
        sent = [submit_records(s, partner=bikes, records=[late],
                               now=int((when + timedelta(days=3)).timestamp()))]
        today = [a_record(c.pseudonym, quantity=1500 + c.id, hours_ago=0.5)
                 for c in city.citizens[1:]]
        sent.append(submit_records(s, partner=bikes, records=today))
    assert [o.status for r in sent for o in r.outcomes] == ["accepted"] * 5
    assert city.ask(DAYS[0], DAYS[3], "day") == before  # as the app keeps it
    city.forget()
    assert city.ask(DAYS[0], DAYS[3], "day") == before  # and as the rollups make it anew
    now = datetime.now(CST).date()
    recent = city.ask(now - timedelta(days=1), now, "day")
    assert all(r["period"] != now.isoformat() for r in recent["rows"])
    assert date.fromisoformat(recent["closedThrough"]) < now



def test_a_day_closes_when_the_report_says_its_answers_stop_holding() -> None:
    rng = random.Random(15)
    for now in [rng.randrange(1_600_000_000, 1_900_000_000) for _ in range(2000)]:
        then = next_close(now)
        assert now < then <= now + 86400
        assert closed_through(then - 1) == closed_through(now)
        assert closed_through(then) == closed_through(now) + timedelta(days=1)


def test_the_city_report_is_tagged_kept_and_made_anew_when_a_day_closes(
        city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer holds until the next day closes: it says so (``Cache-Control``), carries
    a tag a client can ask with (304 while it holds), and is kept by the app that long,
    not longer."""
    clock = [float(datetime.combine(date(2026, 6, 1), time(9), CST).timestamp())]
    monkeypatch.setattr(report_routes, "time", SimpleNamespace(time=lambda: clock[0]))
    params = {"from": DAYS[0].isoformat(), "to": DAYS[3].isoformat(), "period": "day"}
    first = city.client.get("/v1/reports/city", params=params)
    assert first.status_code == 200
    tag, holds = first.headers["etag"], first.headers["cache-control"]
    assert holds == f"public, max-age={next_close(int(clock[0])) - int(clock[0])}"
    assert first.json()["closedThrough"] == str(closed_through(int(clock[0])))
    for asked in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = city.client.get("/v1/reports/city", params=params,
                                headers={"If-None-Match": asked})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    other = city.client.get("/v1/reports/city", params=params, headers={"If-None-Match": '"x"'})
    assert (other.status_code, other.content) == (200, first.content)
    by_month = city.client.get("/v1/reports/city", params={**params, "period": "month"})
    assert by_month.headers["etag"] != tag
    # kept: a change to a closed day (which the intake never makes) does not show ...
    with city.db.session() as s:
        s.execute(text("UPDATE city_cells SET grams = grams + 1"))
    assert city.client.get("/v1/reports/city", params=params).content == first.content
    # ... until the next day closes, when the answer is made anew
    clock[0] = next_close(int(clock[0]))
    later = city.client.get("/v1/reports/city", params=params)
    assert later.headers["etag"] != tag
    assert later.json()["closedThrough"] == str(closed_through(int(clock[0])))
    assert later.json()["reductionGrams"] == first.json()["reductionGrams"] + sum(
        1 for r in first.json()["rows"] if not r["withheld"])
