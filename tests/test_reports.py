"""Reports add up to the ledger's entries: a citizen's statement, a partner's contribution
by day and month, the city's totals with small cells withheld (attacked in
test_report_privacy.py); and the CLI draws them."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from api.cli.main import main
from ledger import accounts
from ledger.errors import InvalidInput
from ledger.intake.service import submit_records
from ledger.redemption import redeem
from ledger.reports import Window, citizen_statement, city_totals, partner_contribution
from ledger.store.models import LedgerEntry
from tests.conftest import CST, a_record

TODAY = datetime.now(CST).date()
LAST_WEEK = Window.of(TODAY - timedelta(days=7), TODAY)


def submit(db, partner, records):
    with db.session(write_lock=True) as s:
        return submit_records(s, partner=s.merge(partner), records=records)


@pytest.fixture
def ledger(db, make_partner, make_citizen):  # type: ignore[no-untyped-def]
    bikes = make_partner("greenbike", "bike_share")
    metro = make_partner("citymetro", "transit")
    citizens = [make_citizen() for _ in range(4)]
    for i, c in enumerate(citizens):
        submit(db, bikes, [a_record(c.pseudonym, quantity=2000 + 100 * i, hours_ago=30),
                           a_record(c.pseudonym, quantity=1500, hours_ago=3)])
    submit(db, metro, [a_record(citizens[0].pseudonym, behaviour="METRO", quantity=9000,
                                hours_ago=5)])
    return db, bikes, metro, citizens


def test_statement_adds_up_the_citizens_entries(ledger, sealer) -> None:
    db, _, _, citizens = ledger
    sealer.seal()
    with db.session(write_lock=True) as s:
        accounts.upsert_reward(s, code="tea", title="Tea", points_cost=50, stock=5)
        redeem(s, citizen=s.merge(citizens[0]), reward_code="tea", idempotency_key="k1",
               operator_address=b"\x01" * 20)
    with db.session() as s:
        report = citizen_statement(s, citizens[0].id, LAST_WEEK)
        credits = s.execute(select(func.count(), func.sum(LedgerEntry.reduction_grams))
                            .where(LedgerEntry.citizen_id == citizens[0].id,
                                   LedgerEntry.kind == 1)).one()
    assert {b["behaviour"] for b in report["behaviours"]} == {"CYCLING", "METRO"}
    assert report["reductionGrams"] == credits[1]
    assert report["pointsEarned"] == report["reductionGrams"]  # 1 point per gram
    assert report["pointsSpent"] == 50
    assert report["balance"] == report["pointsEarned"] - 50
    assert report["entries"] == credits[0] + 1  # the credits and the redemption's debit
    assert report["entriesAnchored"] == credits[0]  # the debit came after the seal
    assert report["chart"]["x"] == ["CYCLING", "METRO"]


def test_contribution_by_day_and_by_month_agree(ledger) -> None:
    db, bikes, metro, _ = ledger
    with db.session() as s:
        daily = partner_contribution(s, bikes.id, LAST_WEEK, period="day")
        monthly = partner_contribution(s, bikes.id, LAST_WEEK, period="month")
        theirs = partner_contribution(s, metro.id, LAST_WEEK, period="day")
    assert daily["reductionGrams"] == monthly["reductionGrams"] > 0
    assert sum(r["records"] for r in daily["rows"]) == 8
    assert {r["behaviour"] for r in daily["rows"]} == {"CYCLING"}  # only its own records
    assert all(len(r["period"]) == 7 for r in monthly["rows"])  # YYYY-MM
    assert theirs["reductionGrams"] == sum(r["reductionGrams"] for r in theirs["rows"]) > 0


def test_city_totals_withhold_cells_of_few_citizens(ledger) -> None:
    db, _, _, _ = ledger
    weeks_on = int(time.time()) + 40 * 86400  # when every day of the last week is final
    with db.session() as s:
        report = city_totals(s, LAST_WEEK, period="month", now=weeks_on)
        as_yet = city_totals(s, LAST_WEEK, period="day")
    cycling = [r for r in report["rows"] if r["behaviour"] == "CYCLING"]
    assert cycling and all(r["citizens"] == 4 and not r["withheld"] for r in cycling)
    assert [r["withheld"] for r in report["rows"] if r["behaviour"] == "METRO"] == [True]
    assert report["reductionGrams"] == sum(r["reductionGrams"] for r in cycling)  # no METRO
    assert report["citizens"] == 4 and report["period"]["from"].endswith("-01")
    assert [s["name"] for s in report["chart"]["series"]] == ["CYCLING"]
    assert as_yet["rows"] == [] and as_yet["reductionGrams"] == 0  # not final yet


def test_a_window_must_be_ordered_and_bounded() -> None:
    with pytest.raises(InvalidInput) as exc:
        Window.of(date(2026, 2, 1), date(2026, 1, 1))
    assert exc.value.field == "to"
    with pytest.raises(InvalidInput):
        Window.of(date(2020, 1, 1), date(2026, 1, 1))


def test_cli_writes_reports_and_charts(ledger, tmp_path, capsys, monkeypatch) -> None:
    db, _, _, citizens = ledger
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    data_dir = str(tmp_path / "state")
    span = ["--from", str(TODAY - timedelta(days=7)), "--to", str(TODAY), "--data-dir", data_dir]
    svg, png = tmp_path / "city.svg", tmp_path / "me.png"
    assert main(["report", "city", *span, "--chart", str(svg)]) == 0
    assert main(["report", "statement", citizens[0].pseudonym, *span, "--chart", str(png)]) == 0
    assert main(["report", "partner", "greenbike", *span, "--period", "month", "--json"]) == 0
    assert ElementTree.parse(svg).getroot().tag.endswith("svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"by": "month"' in capsys.readouterr().out
    assert main(["report", "city", "--from", "yesterday", "--to", str(TODAY),
                 "--data-dir", data_dir]) == 2
    assert main(["report", "city", *span, "--chart", str(tmp_path / "x.gif")]) == 2


def test_dates_outside_the_ledgers_range_are_bad_input() -> None:
    for first, last, field in ((date.min, date(2026, 1, 1), "from"),
                               (date(2026, 1, 1), date.max, "to")):
        with pytest.raises(InvalidInput) as exc:
            Window.of(first, last)
        assert exc.value.field == field
