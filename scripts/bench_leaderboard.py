"""Time a running campaign's public leaderboard against the ledger's size (#21).

    python scripts/bench_leaderboard.py [--entries 100000] [--citizens 2000]
                                        [--participants 200] [--rounds 15] [--url URL]

Builds a ledger (SQLite in a temporary directory, or ``--url``, an empty database) with a
published ten-day season whose ranking counts cycling, ``--citizens`` citizens of whom
``--participants`` opted in, and ``--entries`` credits (cycling, metro and bus, most in
the season's period) written as intake writes them; runs the bonus step over them (which
keeps the standings; its time is printed); then, in ``--rounds`` interleaved rounds,
times the board as served, from the kept standings (``rankings.leaderboard``), and the
board recounted from every entry of the period (``rankings.leaderboard_from_entries``,
what the board did before the standings), and prints each one's median and whether the
two boards are the same. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402

from ledger import accounts, campaign_bonuses, campaigns, rankings  # noqa: E402
from ledger.campaign_rules import local_midnight, parse_campaign  # noqa: E402
from ledger.entries import make_entry  # noqa: E402
from ledger.leaf import KIND_CREDIT, credit_entry_id  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.schema import create_schema  # noqa: E402

BEHAVIOURS = ("CYCLING", "CYCLING", "METRO", "BUS")


def season(starts: date) -> str:
    first, last = starts.isoformat(), (starts + timedelta(days=9)).isoformat()
    return json.dumps({
        "id": "bench-season", "version": 1, "title": {"zh-CN": "基准", "en": "Bench"},
        "sections": [{"code": "mobility", "title": {"zh-CN": "出行", "en": "Mobility"},
                      "behaviours": ["CYCLING", "METRO"]}],
        "starts": first, "ends": last, "behaviours": ["CYCLING", "METRO"],
        "bonuses": [{"behaviour": "CYCLING", "multiplier": "1.5", "cap_points": 300}],
        "bonus_cap_points": 500, "offers": [],
        "ranking": {"metric": "reduction_grams", "behaviours": ["CYCLING"], "starts": first,
                    "ends": last, "minimum": 100, "tie_break": "earliest_reached",
                    "prizes": [{"ranks": [1, 10], "points": 100}]}})


def build(db: Database, entries: int, citizens: int, participants: int) -> None:
    rng = random.Random(7)
    starts = date.today() + timedelta(days=30)
    begin = local_midnight(starts - timedelta(days=2))
    span = 13 * 86400  # two days before the season, its ten, one after
    partner = bytes.fromhex(Account.create().address[2:])
    with db.session(write_lock=True) as s:
        campaigns.register(s, parse_campaign(season(starts))).status = "published"
        people = [accounts.create_citizen(s) for _ in range(citizens)]
        for n, c in enumerate(people[:participants]):
            campaigns.join(s, "bench-season", c, f"rider-{n}")
        people_rows = [(c.id, c.account) for c in people]
    for start in range(0, entries, 10_000):
        with db.session(write_lock=True) as s:
            for _ in range(start, min(entries, start + 10_000)):
                citizen_id, account = rng.choice(people_rows)
                grams = rng.randint(20, 600)
                s.add(make_entry(entry_id=credit_entry_id(partner, secrets.token_hex(8)),
                                 citizen_id=citizen_id, account=account, kind=KIND_CREDIT,
                                 behaviour=rng.choice(BEHAVIOURS), quantity=grams * 20,
                                 reduction_grams=grams, points=grams // 10, methodology=2,
                                 occurred_at=begin + rng.randrange(span),
                                 record_hash=secrets.token_bytes(32), partner_address=partner))


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--citizens", type=int, default=2_000)
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--url", help="an empty database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.url or f"sqlite:///{tmp}/ledger.db")
        create_schema(db.engine)
        started = time.perf_counter()
        build(db, args.entries, args.citizens, args.participants)
        print(f"built {args.entries:,} entries, {args.citizens:,} citizens "
              f"({args.participants} opted in) in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        looked = campaign_bonuses.award_bonuses(db, bytes(20))
        step = time.perf_counter() - started
        print(f"bonus step (keeps the standings): {looked:,} credits in {step:.1f} s, "
              f"{step / max(looked, 1) * 1e6:.0f} us a credit")
        kept, recounted = [], []
        with db.session() as s:
            same = (rankings.leaderboard(s, "bench-season")
                    == rankings.leaderboard_from_entries(s, "bench-season"))
            for _ in range(args.rounds):  # interleaved, so load on the host hits both alike
                kept.append(timed(lambda: rankings.leaderboard(s, "bench-season")))
                recounted.append(timed(lambda: rankings.leaderboard_from_entries(
                    s, "bench-season")))
        print(f"boards the same: {same}")
        print(f"leaderboard from the kept standings: median {statistics.median(kept):.2f} ms")
        print(f"leaderboard recounted from entries:  median {statistics.median(recounted):.2f} ms")
        db.engine.dispose()


if __name__ == "__main__":
    main()
