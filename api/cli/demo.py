"""``carbon-ledger demo``: a few realistic weeks of a city's green behaviours, end to end.

Thirteen partners of twelve kinds report their customers' activity (with the usual
flaws: resent records, implausible values, clock skew, and a journey planner reporting
trips the transit and bike operators also report), the ledger quantifies and credits
it by the methodology in force, each behaviour once, some
citizens redeem rewards, everything is sealed and anchored, and then every entry's
proof is checked against the chain, as a citizen or auditor would. The days run up to
yesterday (a week's records sealed in a batch of their own), so reports and charts have a
shape. Then a short green-life season (#21, :mod:`api.cli.demo_season`) is published
before it starts and lived on the demo's clock, ahead of today: citizens join its ranking
under nicknames, earn bonuses, redeem two partners' offers; at its end the ranking is
sealed, its root anchored and its prizes credited, and a rank proof and the ranking's
audit are checked against the chain. The demo ends with what to try next, on the data it
made.
"""

from __future__ import annotations

import random
import re
import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated

import typer
from eth_account import Account
from rich.progress import Progress

from api.cli import demo_season
from api.cli.base import DataDir, app, out, table
from api.cli.demo_season import SeasonRun
from api.composition import container
from ledger import accounts, campaign_bonuses, listings, views
from ledger.anchoring import Anchor
from ledger.bundle import ProofBundle
from ledger.errors import Conflict, InsufficientPoints, OutOfStock, VerificationError
from ledger.intake.service import submit_records
from ledger.methodology import local_day_offset
from ledger.redemption import redeem
from ledger.verification import TrustRoot, verify_bundle

CST = timezone(local_day_offset())  # the methodology's local day

PARTNERS = [  # code, name, kind
    ("greenbike", "Green Bike shared bicycles", "bike_share"),
    ("voltauto", "Volt Auto NEV maker", "nev_maker"),
    ("citytransit", "City bus and metro", "transit"),
    ("gomaas", "GoMaaS journey planner", "maas"),
    ("quickmeal", "QuickMeal food delivery", "food_delivery"),
    ("homeshop", "HomeShop appliance retailer", "appliance_retailer"),
    ("stepup", "StepUp step counter", "step_counter"),
    ("sharecar", "ShareCar carpooling", "carpool"),
    ("campuseats", "Campus canteen", "canteen"),
    ("citypower", "City Power e-billing", "utility"),
    ("swiftpost", "Swift Post courier", "courier"),
    ("reloop", "ReLoop second-hand market", "second_hand_platform"),
    ("trainly", "Trainly rail tickets", "e_ticketing"),
]
REWARDS = [("metro-day-pass", "Metro day pass", 300, 200),
           ("coffee-voucher", "Coffee voucher", 150, 500),
           ("tree-planting", "A tree planted in your name", 800, 50)]

# behaviour, partner, share of citizens, (records min, max), quantity range, km/h (trips)
HABITS: list[tuple[str, str, float, tuple[int, int], tuple[int, int], int | None]] = [
    ("CYCLING", "greenbike", 0.45, (1, 3), (600, 9000), 13),
    ("METRO", "citytransit", 0.40, (1, 2), (2500, 28000), 35),
    ("BUS", "citytransit", 0.25, (1, 2), (1500, 14000), 18),
    ("NEV_DRIVING", "voltauto", 0.15, (1, 3), (4000, 60000), 40),
    ("CARPOOLING", "sharecar", 0.05, (1, 1), (5000, 30000), 35),
    ("WALKING", "stepup", 0.50, (1, 1), (2000, 15000), None),
    ("NO_DISPOSABLE_TABLEWARE", "quickmeal", 0.30, (1, 2), (1, 1), None),
    ("CLEAN_PLATE", "campuseats", 0.10, (1, 2), (1, 1), None),
    ("PAPERLESS_BILL", "citypower", 0.20, (1, 1), (1, 1), None),
    ("EXPRESS_BOX_REUSE", "swiftpost", 0.10, (1, 1), (1, 3), None),
    ("SECOND_HAND_CLOTHING", "reloop", 0.03, (1, 1), (1, 3), None),
    ("SECOND_HAND_BOOKS", "reloop", 0.03, (1, 1), (1, 5), None),
    ("RAIL_INSTEAD_OF_FLIGHT", "trainly", 0.01, (1, 1), (300_000, 1_200_000), 250),
    ("APPLIANCE_AC_GRADE1", "homeshop", 0.01, (1, 1), (1, 1), None),
    ("APPLIANCE_FRIDGE_GRADE1", "homeshop", 0.01, (1, 1), (1, 1), None),
]
MAAS_ALSO_REPORTS = {"CYCLING", "METRO", "BUS"}  # the journey planner sees some of these trips


@dataclass
class Tally:
    submitted: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    reported_twice: int = 0  # duplicates of another partner's report of the same behaviour
    grams: int = 0
    points: int = 0
    redeemed_points: int = 0
    redemptions: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def generate_day(rng: random.Random, pseudonyms: list[str], day: datetime, run: str
                 ) -> dict[str, list[dict]]:
    """Each partner's records for one day, flaws included."""
    by_partner: dict[str, list[dict]] = {code: [] for code, _, _ in PARTNERS}

    def add(partner: str, record: dict) -> None:
        record["record_id"] = f"{partner}-{run}-{len(by_partner[partner]):06d}"
        by_partner[partner].append(record)

    for who in pseudonyms:
        for behaviour, partner, share, (lo, hi), (qlo, qhi), kmh in HABITS:
            if rng.random() >= share:
                continue
            for trip in range(rng.randint(lo, hi)):
                at = day + timedelta(seconds=rng.randint(6 * 3600, 11 * 3600) + trip * 6 * 3600)
                quantity = rng.randint(qlo, qhi)
                record: dict[str, object] = {"citizen": who, "behaviour": behaviour,
                                             "quantity": quantity, "occurred_at": at.isoformat()}
                if kmh is not None:  # a trip: its end time lets the speed be checked
                    minutes = quantity * 60 / (kmh * 1000) + rng.uniform(1, 6)
                    record["ended_at"] = (at + timedelta(minutes=minutes)).isoformat()
                add(partner, _maybe_flawed(rng, record))
                if behaviour in MAAS_ALSO_REPORTS and rng.random() < 0.1:
                    add("gomaas", {**record, "quantity": quantity + rng.randint(-50, 50)})
    return by_partner


def _maybe_flawed(rng: random.Random, record: dict) -> dict:
    roll = rng.random()
    if roll < 0.004:  # a device clock two days ahead: after the record's receipt
        ahead = datetime.fromisoformat(str(record["occurred_at"])) + timedelta(days=2)
        record["occurred_at"] = ahead.isoformat()
    elif roll < 0.008 and record["behaviour"] == "CYCLING":
        record["quantity"] = 40_000  # 40 km in the ride's few minutes: faster than a bike
    elif roll < 0.010:
        record["behaviour"] = "SKATEBOARD"  # not in the methodology
    return record


def setup(c, rng: random.Random, citizens: int) -> list[str]:  # type: ignore[no-untyped-def]
    with c.db.session(write_lock=True) as s:
        for code, name, kind in PARTNERS:
            if accounts.find_partner(s, code) is None:
                address = bytes.fromhex(Account.create().address[2:])
                accounts.create_partner(s, code=code, name=name, kind=kind, signing_address=address)
        for code, title, cost, stock in REWARDS:
            accounts.upsert_reward(s, code=code, title=title, points_cost=cost, stock=stock)
        return [accounts.create_citizen(s, pseudonym=f"c_{rng.getrandbits(64):016x}").pseudonym
                for _ in range(citizens)]


def ingest(c, by_partner: dict[str, list[dict]], rng: random.Random, tally: Tally,  # type: ignore[no-untyped-def]
           *, at: int | None = None) -> None:
    """Each partner's records, received at ``at`` (unix seconds; default now): a day's
    records arrive in the night after it, as partners send them, so they count in that day's city
    totals (a record received days late never changes a published figure)."""
    for code, records in by_partner.items():
        resent = rng.sample(records, k=len(records) // 50)  # a retry resends 2%
        for batch in (records, resent):
            if not batch:
                continue
            with c.db.session(write_lock=True) as s:
                result = submit_records(s, partner=accounts.get_partner(s, code), records=batch,
                                        now=at)
            tally.submitted += len(batch)
            for o in result.outcomes:
                setattr(tally, o.status, getattr(tally, o.status) + 1)
                tally.reported_twice += o.duplicate_of is not None
                if o.status == "rejected":  # by kind: "implausible: 57.9 km/h…" → "implausible"
                    why = f"{o.field}: {re.split(r':? [0-9]', o.reason or '', maxsplit=1)[0]}"
                    tally.reasons[why] = tally.reasons.get(why, 0) + 1
                tally.grams += o.reduction_grams if o.status == "accepted" else 0
                tally.points += o.points if o.status == "accepted" else 0


def redeem_some(c, pseudonyms: list[str], rng: random.Random, tally: Tally) -> None:  # type: ignore[no-untyped-def]
    operator = c.operator_address
    for who in rng.sample(pseudonyms, k=len(pseudonyms) // 8):
        reward = rng.choice(REWARDS)[0]
        try:
            with c.db.session(write_lock=True) as s:
                citizen = accounts.get_citizen(s, who)
                r, _ = redeem(s, citizen=citizen, reward_code=reward,
                              idempotency_key=f"demo-{who}-{reward}", operator_address=operator)
            tally.redemptions += 1
            tally.redeemed_points += r.points
        except (InsufficientPoints, OutOfStock):
            pass  # not enough points yet: the ledger refuses, as it should


#: Proofs the demo checks against the chain at most (a random sample beyond: each check is
#: a call to the contract, ~60 ms on the in-process chain).
VERIFY_AT_MOST = 1000


def verify_all(c, anchor: Anchor, batch_ids: list[int], rng: random.Random  # type: ignore[no-untyped-def]
               ) -> tuple[int, int, list[str]]:
    """Check the entries of ``batch_ids`` as an outsider would, bundle + chain only: every
    one, or a random :data:`VERIFY_AT_MOST` of them. How many were checked, of how many,
    and the failures."""
    reader = anchor.reader()
    # The demo made this deployment itself, so it is the one trust root it can pin.
    trusted = TrustRoot(anchor.chain_id, anchor.contract_address, "the demo's own deployment")
    with c.db.session() as s:
        every = views.entry_ids_in(s, batch_ids)
    ids = every if len(every) <= VERIFY_AT_MOST else rng.sample(every, VERIFY_AT_MOST)
    failures = []
    with Progress(console=out, transient=False) as progress:
        task = progress.add_task("verifying proofs against the chain", total=len(ids))
        proofs = c.proof_service()
        for entry_id in ids:
            bundle = proofs.bundle(entry_id)
            try:
                verify_bundle(ProofBundle.from_json(bundle), reader, trusted=trusted)
            except VerificationError as exc:
                failures.append(f"0x{entry_id.hex()}: {exc}")
            progress.advance(task)
    return len(ids), len(every), failures


@app.command()
def demo(data_dir: DataDir = None,
         citizens: Annotated[int, typer.Option(min=1, max=100_000,
                                               help="new citizens to simulate")] = 300,
         days: Annotated[int, typer.Option(min=1, max=40,
                                           help="days of activity, up to yesterday")] = 21,
         seed: Annotated[int | None, typer.Option(help="random seed (default: time)")] = None,
         chain: Annotated[str | None, typer.Option(
             help="anvil | tester | rpc (default: anvil, the data dir's managed node)")] = None
         ) -> None:
    """Simulate a few weeks of green behaviours for N citizens, seal, anchor, verify every
    proof; then print what to try next."""
    started = time.monotonic()
    c = container(data_dir, chain)
    rng = random.Random(seed if seed is not None else time.time_ns())
    run = f"{rng.getrandbits(32):08x}"
    tally = Tally()
    with c.anchor() as anchor:
        out.print(f"chain {anchor.chain_id}, contract {anchor.contract_address}, "
                  f"anchoring key {c.signer.address}")
        if anchor.kind.is_dev:
            demo_season.keep_dev_clock(c, anchor)
        pseudonyms = setup(c, rng, citizens)
        yesterday = datetime.now(CST).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        first = yesterday - timedelta(days=days - 1)
        sealer = c.sealer(anchor)
        batches = []
        for n in range(days):
            day = first + timedelta(days=n)
            share = 0.5 if day.weekday() >= 5 else 0.7  # fewer trips at weekends
            active = [p for p in pseudonyms if rng.random() < share]
            ingest(c, generate_day(rng, active, day, f"{run}-{day:%m%d}"), rng, tally,
                   at=int((day + timedelta(hours=25)).timestamp()))
            if day.weekday() == 6 or n == days - 1:
                batches += sealer.seal()  # a week's credits, anchored
        redeem_some(c, pseudonyms, rng, tally)
        batches += sealer.seal()  # the redemptions' debits
        season = demo_season.publish_and_join(c, anchor, pseudonyms, rng)  # #21
        season_tally = Tally()
        batches += live_season(c, anchor, sealer, season, pseudonyms, rng, run, season_tally)
        checked, total, failures = verify_all(c, anchor, [b.id for b in batches], rng)
    with c.db.session() as s:
        total_citizens = views.citizen_count(s)
        busiest = views.busiest_citizen(s)
        example = (busiest.pseudonym, listings.citizen_ledger(s, busiest.id)[-1]["entryId"]
                   ) if busiest is not None else None
    rows: list[list[object]] = [
        ["records submitted", tally.submitted],
        ["  accepted / duplicate / rejected", f"{tally.accepted} / {tally.duplicate} / {tally.rejected}"],
        ["  duplicates reported by a second partner", tally.reported_twice],
        ["reduction credited", f"{tally.grams / 1000:,.1f} kg CO2e"],
        ["points credited / redeemed", f"{tally.points:,} / {tally.redeemed_points:,} "
                                       f"({tally.redemptions} redemptions)"],
        ["batches anchored", ", ".join(f"#{b.id} ({b.leaf_count} entries)" for b in batches)],
        ["gas used", f"{sum(b.gas_used or 0 for b in batches):,}"],
        ["proofs verified on chain", f"{checked - len(failures)} of {checked}"
                                     + (f" (a random sample of the {total:,} entries)"
                                        if checked < total else "")],
        *season_rows(season, season_tally),
        ["citizens in this ledger", total_citizens],
        ["seconds", f"{time.monotonic() - started:.1f}"],
    ]
    out.print(table(f"demo: {days} days, {first:%Y-%m-%d} to {yesterday:%Y-%m-%d} "
                    f"({citizens} new citizens)", ["", ""], rows))
    for reason, n in sorted(tally.reasons.items()):
        out.print(f"  rejected {n}x — {reason}")
    if failures:
        for f in failures[:10]:
            out.print(f"[red]proof failed[/red] {f}")
        raise Conflict(f"{len(failures)} proofs failed", field="proofs")
    if season.audit is not None and not season.audit.ok:
        for problem in season.audit.problems:
            out.print(f"[red]ranking audit[/red] {problem}")
        raise Conflict(f"the ranking of {season.campaign.id} failed its audit", field="ranking")
    if example is not None:
        next_steps(c, example, first=first, last=yesterday,
                   contract=anchor.contract_address, batch=batches[0].id if batches else 1,
                   season=season)


def live_season(c, anchor, sealer, season: SeasonRun, pseudonyms: list[str],  # type: ignore[no-untyped-def]
                rng: random.Random, run: str, tally: Tally) -> list:
    """The season's days on the demo's clock, ahead of today: each day's records received
    the night after it, the offers redeemed on its second day, the bonuses awarded; then,
    the dev chain's clock moved past the season's end, everything sealed and anchored, the
    ranking closed and anchored and its prizes sealed. On a chain whose clock is not the
    demo's, nothing: the season runs on its own dates."""
    if not anchor.kind.is_dev:
        return []
    for n, day in enumerate(season.days):
        if n == 1:
            demo_season.redeem_offers(c, season, pseudonyms, rng,
                                      at=int((day + timedelta(hours=12)).timestamp()))
        active = [p for p in pseudonyms if rng.random() < 0.7]
        by_partner = generate_day(rng, active, day, f"{run}-{day:%m%d}")
        by_partner["greenbike"] += demo_season.riders_day(rng, season, day,
                                                          f"greenbike-{run}-{day:%m%d}-r")
        ingest(c, by_partner, rng, tally, at=int((day + timedelta(hours=25)).timestamp()))
    campaign_bonuses.award_bonuses(c.db, c.operator_address)
    anchor.advance_clock_if_dev(season.closes_at)
    season.clock = season.closes_at
    batches = sealer.seal()  # the season's credits, debits and bonuses
    demo_season.close_and_check(c, anchor, season)
    return batches + sealer.seal()  # the prizes


def season_rows(season: SeasonRun, tally: Tally) -> list[list[object]]:
    c = season.campaign
    head: list[object] = ["season (campaign #21)", f"{c.id}, {c.starts} to {c.ends}: two partners' offers, "
                                      f"a cycling ranking ({len(season.riders)} citizens joined)"]
    if season.ranking is None:
        return [head, ["  not run here", f"the chain's clock is not the demo's: close it "
                                         f"after {c.ends} (campaign ranking close)"]]
    r = season.ranking
    offers = ", ".join(f"{o.code} ({o.partner}) x{season.offers_redeemed.get(o.code, 0)}"
                       for o in c.offers)
    return [head,
            ["  lived ahead of today", "the demo's clock, and the dev chain's moved to "
                                       f"{demo_season.local_time(season.clock or 0)}"],
            ["  records accepted / bonus points", f"{tally.accepted} / {season.bonus_points:,}"],
            ["  partners' offers redeemed", offers],
            ["  ranking anchored", f"{r.leaf_count} ranked over batches 1-{r.through_batch_id}, "
                                   f"root 0x{r.root.hex()}, block {r.block_number}"],
            ["  prizes credited", f"{season.prize_points:,} points, as entries naming the root"],
            ["  rank proof verified", season.proof],
            ["  ranking audit", "ok" if season.audit and season.audit.ok
                                else f"{len(season.audit.problems) if season.audit else '?'} "
                                     "problem(s)"]]


def next_steps(c, example: tuple[str, str], *, first: datetime, last: datetime,  # type: ignore[no-untyped-def]
               contract: str, batch: int, season: SeasonRun) -> None:
    """What to try next, on the data just made: copy-pasteable, one command a line."""
    who, entry = example
    cid, rider = season.campaign.id, next(iter(season.riders))
    dd = shlex.quote(str(c.settings.data_dir))
    at = f"--data-dir {dd}"
    window = f"--from {first:%Y-%m-%d} --to {last:%Y-%m-%d}"
    lines = [f"The ledger is in {c.settings.data_dir}. A citizen: {who}; one of their entries: {entry}.",
             "Try next:",
             f"  carbon-ledger balance {who} {at}",
             f"  carbon-ledger report statement {who} {window} {at}",
             f"  carbon-ledger report city {window} --period day {at} --chart city.svg",
             f"  carbon-ledger proof {entry} {at} --out proof.json",
             f"  carbon-ledger audit {batch} {at}",
             f"  carbon-ledger admin citizen-list {at}    (and partner-list, reward-list, key-list)",
             f"  carbon-ledger campaign show {cid} {at}    (the season's rules; docs/campaigns.md)",
             f"  carbon-ledger campaign ranking board {cid} {at}",
             f"  carbon-ledger campaign progress {cid} {rider} {at}"]
    if season.ranking is not None:
        lines += [f"  carbon-ledger campaign ranking proof {cid} {rider} {at} --out rank.json"]
    if c.settings.chain != "tester":
        lines += [f"  carbon-ledger node {at}    (in another terminal: prints the chain's URL)",
                  f"  carbon-ledger verify proof.json --rpc URL --contract {contract}"]
        if season.ranking is not None:
            lines += [f"  carbon-ledger campaign ranking verify rank.json --rpc URL "
                      f"--contract {contract}",
                      f"  carbon-ledger campaign audit {cid} {at}"]
        lines += ["The web pages and the API:",
                  f"  carbon-ledger serve {at}    then open http://127.0.0.1:8000/ "
                  "(API reference at /docs)",
                  f"  carbon-ledger admin token-add {who} {at}    (the citizen page's sign-in)"]
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
