"""The demo's green-life season (#21), run from publication to its checked ranking.

A season is pinned on chain before it starts, by the chain's clock, and the earliest a
season can start is the next local midnight, so a season that ends within the demo lies
ahead of today. The demo lives it on a clock of its own, ahead of the wall clock, through
the same code paths a real season takes, each of which takes the time as a parameter
(intake's receipt time, a redemption's time, the ranking's close); and on a dev chain it
moves the chain's clock forward with it before anchoring, so no block holds an entry
that had not yet occurred by the block's time. The data dir's chain so ends the demo
a few days ahead of the wall clock (a rerun starts its season after the chain's day).
On a chain whose clock it cannot move (``--chain rpc``) the season is published and
joined, and the rest is left to its dates (``campaign ranking close``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from ledger import accounts, campaign_anchoring, campaign_bonuses, campaigns, ranking_audit, rankings
from ledger.anchoring import Anchor
from ledger.campaign_rules import Campaign
from ledger.errors import Conflict, InsufficientPoints, OutOfStock
from ledger.green_credit_issue import anchoring_turn
from ledger.methodology import local_day_offset
from ledger.redemption import redeem
from ledger.store.models import CampaignRanking

LOCAL = timezone(local_day_offset())  # the methodology's day, in which a season's dates are
#: A short season: three days, so the demo reaches its close.
SEASON_DAYS = 3
#: Those who join the ranking; they ride every day of the season, to compete.
RIDERS = 5
#: The offers: code, partner, (zh-CN, en) title, points cost, stock.
OFFERS = (("trade-in-discount", "homeshop", ("家电以旧换新立减券", "Appliance trade-in discount voucher"),
           200, 100),
          ("nev-test-drive", "voltauto", ("新能源汽车试驾", "NEV test drive"), 50, 40))


def season_file(starts: date, days: int = SEASON_DAYS) -> dict[str, Any]:
    """A short season (docs/samples/campaign-green-season.json, moved to start on
    ``starts``): two partners' offers and a cycling ranking."""
    first, last = starts.isoformat(), (starts + timedelta(days=days - 1)).isoformat()
    return {
        "id": f"season-{starts:%Y%m%d}", "version": 1,
        "title": {"zh-CN": "绿色生活季（演示）", "en": "Green-life season (demo)"},
        "sections": [{"code": "green-mobility", "title": {"zh-CN": "绿畅出行",
                                                          "en": "Green mobility"},
                      "behaviours": ["CYCLING", "METRO"]},
                     {"code": "green-living", "title": {"zh-CN": "绿享生活", "en": "Green living"},
                      "behaviours": ["APPLIANCE_TRADE_IN"]}],
        "starts": first, "ends": last,
        "behaviours": ["CYCLING", "METRO", "APPLIANCE_TRADE_IN"],
        "bonuses": [{"behaviour": "CYCLING", "multiplier": "1.5", "cap_points": 300},
                    {"behaviour": "METRO", "multiplier": "1.2"}],
        "bonus_cap_points": 500,
        "offers": [{"code": code, "partner": partner, "title": {"zh-CN": zh, "en": en},
                    "points_cost": cost, "stock": stock, "valid_from": first, "valid_until": last}
                   for code, partner, (zh, en), cost, stock in OFFERS],
        "ranking": {"metric": "reduction_grams", "behaviours": ["CYCLING"], "starts": first,
                    "ends": last, "minimum": 500, "tie_break": "earliest_reached",
                    "prizes": [{"ranks": [1, 1], "points": 1000}, {"ranks": [2, 3], "points": 500},
                               {"ranks": [4, 10], "points": 100}]},
    }


@dataclass
class SeasonRun:
    """What the demo did with its season, for its summary."""

    campaign: Campaign
    riders: dict[str, str]  # pseudonym -> nickname
    bonus_points: int = 0
    offers_redeemed: dict[str, int] = field(default_factory=dict)
    ranking: CampaignRanking | None = None
    prize_points: int = 0
    proof: str = ""  # the rank proof checked against the chain, said in words
    audit: ranking_audit.RankingAudit | None = None
    clock: int | None = None  # where the dev chain's clock was moved to

    @property
    def days(self) -> list[datetime]:
        """The season's days, each at its local midnight."""
        first = datetime.combine(self.campaign.starts, datetime.min.time(), LOCAL)
        return [first + timedelta(days=n) for n in range(SEASON_DAYS)]

    @property
    def closes_at(self) -> int:
        """Two hours after the season's end: its last day's records arrive an hour after it."""
        return self.campaign.ends_at + 2 * 3600


def next_start(chain_time: int, seasons_end: int) -> date:
    """The first local day after the wall clock's, the chain's and the last season's: the
    chain's clock is ahead after an earlier demo moved it."""
    latest = max(datetime.now(UTC).timestamp(), chain_time, seasons_end)
    return datetime.fromtimestamp(latest, LOCAL).date() + timedelta(days=1)


def keep_dev_clock(c: Any, anchor: Anchor) -> None:
    """A managed anvil restarted from its state file runs on the wall clock again, behind
    the blocks an earlier demo mined ahead of it; so before any block of its own, the demo
    sets the clock back to the latest block's time, and the chain's times never go back."""
    latest = c.campaign_chain(anchor).block_time()
    if latest > datetime.now(UTC).timestamp():
        anchor.advance_clock_if_dev(latest + 1)


def publish_and_join(c: Any, anchor: Anchor, pseudonyms: list[str], rng: random.Random
                     ) -> SeasonRun:
    """Publish the season (before its start, by the chain's clock) and have a few citizens
    join its ranking under nicknames."""
    chain = c.campaign_chain(anchor)
    with c.db.session() as s:
        seasons_end = max((v.ends_at for v in campaigns.published_versions(s)), default=0)
    with anchoring_turn(c.db):
        campaign = campaign_anchoring.publish(c.db, chain, json.dumps(
            season_file(next_start(chain.block_time(), seasons_end)), ensure_ascii=False))
    riders = {}
    with c.db.session(write_lock=True) as s:
        for k, pseudonym in enumerate(rng.sample(pseudonyms, min(RIDERS, len(pseudonyms)))):
            # never from the pseudonym: its tail may be six digits, which a nickname refuses
            nickname = f"rider-{chr(ord('a') + k)}{rng.randrange(100, 1000)}"
            campaigns.join(s, campaign.id, accounts.get_citizen(s, pseudonym), nickname)
            riders[pseudonym] = nickname
    return SeasonRun(campaign, riders)


def riders_day(rng: random.Random, run: SeasonRun, day: datetime, prefix: str) -> list[dict]:
    """The riders' bike rides of one season day (two each, evenings), as greenbike sends them."""
    rides: list[dict[str, object]] = []
    for who in run.riders:
        for trip in range(2):
            at = day + timedelta(hours=19 + 2 * trip, minutes=rng.randint(0, 50))
            metres = rng.randint(3000, 9000)
            ended = at + timedelta(minutes=metres * 60 / 13_000 + rng.uniform(1, 4))
            rides.append({"record_id": f"{prefix}-{len(rides):05d}", "citizen": who,
                          "behaviour": "CYCLING", "quantity": metres,
                          "occurred_at": at.isoformat(), "ended_at": ended.isoformat()})
    return rides


def redeem_offers(c: Any, run: SeasonRun, pseudonyms: list[str], rng: random.Random,
                  at: int) -> None:
    """A few citizens redeem each partner's offer at ``at`` (within the offers' dates)."""
    for offer in run.campaign.offers:
        code = run.campaign.reward_code(offer)
        for who in rng.sample(pseudonyms, k=min(len(pseudonyms), 12)):
            try:
                with c.db.session(write_lock=True) as s:
                    redeem(s, citizen=accounts.get_citizen(s, who), reward_code=code,
                           idempotency_key=f"demo-{who}-{code}",
                           operator_address=c.operator_address, now=at)
            except (InsufficientPoints, OutOfStock):
                continue
            run.offers_redeemed[offer.code] = run.offers_redeemed.get(offer.code, 0) + 1
            if run.offers_redeemed[offer.code] >= 3:
                break


def close_and_check(c: Any, anchor: Anchor, run: SeasonRun) -> None:
    """After the season: close the ranking (crediting the prizes), anchor its root, and
    check one rider's rank proof against the chain and the ranking as an auditor would."""
    cid = run.campaign.id
    chain = c.campaign_chain(anchor)
    run.ranking = rankings.close_ranking(c.db, cid, c.operator_address, now=run.closes_at)
    with anchoring_turn(c.db):
        run.ranking = campaign_anchoring.anchor_ranking(c.db, chain, cid)
    with c.db.session() as s:
        ranks = rankings.ranks(s, cid)
        run.prize_points = sum(r.prize for r in ranks)
        run.bonus_points = campaign_bonuses.bonus_points_paid(s, cid)
        riders = {accounts.get_citizen(s, p).id: p for p in run.riders}
        first = accounts.get_citizen(s, riders[ranks[0].citizen_id])  # only riders joined
        proof = rankings.rank_proof(s, cid, first)
    root = chain.ranking_root(run.campaign.key)
    if root is None:
        raise Conflict(f"no ranking root on chain for {cid}", field="ranking")
    leaf = rankings.verify_rank_proof(proof, root)
    run.proof = (f"{run.riders[first.pseudonym]}: rank {leaf.rank}, {leaf.metric:,} g, "
                 f"{leaf.prize} prize points, in root 0x{root.hex()[:16]}… read from the chain")
    run.audit = ranking_audit.audit_ranking(c.db, cid, chain)


def local_time(unix: int) -> str:
    return datetime.fromtimestamp(unix, LOCAL).strftime("%Y-%m-%d %H:%M")
