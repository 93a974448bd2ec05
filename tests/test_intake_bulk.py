"""Intake's bulk writes (ledger/store/intake.py): on PostgreSQL each column goes as one
array read by ``unnest``, on SQLite by executemany. Either way every row lands as decided:
entries draw their seq in the order of the submission's records, and totals, tallies and
balances add up across submissions that update rows written before."""

from __future__ import annotations

from sqlalchemy import text

from ledger.intake.service import submit_records
from tests.conftest import a_record


def test_bulk_writes_keep_the_records_order_and_add_to_earlier_rows(db, make_partner,  # type: ignore[no-untyped-def]
                                                                    make_citizen) -> None:
    partner = make_partner()
    citizens = [make_citizen() for _ in range(7)]
    outcomes = []
    for round_ in range(3):  # the second and third update the rows the first inserted
        records = [a_record(c.pseudonym, quantity=1000 + 10 * k + round_,
                            hours_ago=30 - 9 * round_ - k / 10)
                   for k, c in enumerate(citizens * 3)]
        with db.session(write_lock=True) as s:
            recorded = submit_records(s, partner=s.merge(partner), records=records)
        assert recorded.counts["accepted"] == len(records)
        outcomes += recorded.outcomes
    with db.session() as s:
        by_seq = [bytes(r[0]).hex() for r in s.execute(text(  # ids: the leaves' first 32 bytes
            "SELECT substr(leaf, 1, 32) FROM ledger_entries ORDER BY seq"))]
        assert by_seq == [o.entry_id.removeprefix("0x") for o in outcomes if o.entry_id]
        grams = {cid: g for cid, g in s.execute(text(
            "SELECT citizen_id, sum(reduction_grams) FROM ledger_entries GROUP BY citizen_id"))}
        for table, column in (("citizen_totals", "grams"), ("balances", "points"),
                              ("daily_totals", "grams"), ("monthly_totals", "grams")):
            kept = dict(s.execute(text(
                f"SELECT citizen_id, sum({column}) FROM {table} GROUP BY citizen_id")).all())
            assert kept == grams, table
        assert sum(grams.values()) == sum(o.reduction_grams for o in outcomes)
