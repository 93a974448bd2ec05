"""Campaigns' bonus points and running standings (#21): the bonus step.

Bonuses are computed in a step of their own after intake (:func:`award_bonuses`, run by
``carbon-ledger campaign bonuses`` and after each seal), not inside intake: intake is the
hot path that other work tunes and benchmarks, a bonus needs no answer in the partner's
receipt, and a separate step reads each credit once, in ledger order, under the citizen's
turn. Each bonus is a ledger entry of its own (kind 3) whose id is derived from the
campaign and the earning entry, so a rerun never pays twice, and whose record hash
commits to both; the caps are kept in :class:`CampaignBonusTotal`, and the entry that
crosses a cap is paid the rest up to it, so whatever order credits arrive in, a citizen's
bonus is the lesser of the cap and the sum of the uncapped bonuses.

The same step keeps each campaign's running standings (:class:`CampaignStanding`) under
the latest published version's ranking, which the public board reads while the ranking
runs; a correction that ranks other credits has them counted anew
(:func:`follow_correction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import rfc8785
from sqlalchemy import and_, case, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from ledger.accounts import credit_points
from ledger.campaign_rules import Campaign, RankingRules
from ledger.campaigns import current, in_force, published_versions
from ledger.entries import make_entry
from ledger.hashing import keccak
from ledger.leaf import KIND_BONUS, KIND_CREDIT, leaf_methodology
from ledger.store.database import Database
from ledger.store.locks import (
    CITIZEN_LOCK_BUCKETS,
    hold_standings,
    lock_citizen,
    share_standings,
)
from ledger.store.models import (
    Balance,
    CampaignBonus,
    CampaignBonusTotal,
    CampaignParticipant,
    CampaignStanding,
    Citizen,
    LedgerEntry,
)

#: The total across a campaign's bonus behaviours in :class:`CampaignBonusTotal`.
ALL = "*"
#: Credits read per transaction by :func:`award_bonuses`.
BONUS_PAGE = 500


def bonus_entry_id(campaign_id: str, earned_by: bytes) -> bytes:
    """One bonus per earning entry and campaign, whatever version governs it."""
    return keccak(b"carbon-ledger/bonus\x00" + campaign_id.encode() + b"\x00" + earned_by)


def bonus_record(campaign: Campaign, earned_by: bytes, points: int) -> bytes:
    """What a bonus entry's record hash commits to: the campaign version and the entry."""
    return rfc8785.dumps({"kind": "campaign-bonus", "campaign": "0x" + campaign.key.hex(),
                          "entry": "0x" + earned_by.hex(), "points": points})


def bonus_behaviour(campaign_id: str) -> str:
    return f"BONUS/{campaign_id}"


@dataclass(frozen=True)
class _Credit:
    seq: int
    entry_id: bytes
    citizen_id: int
    account: bytes
    behaviour: str
    points: int
    methodology: int
    occurred_at: int
    reduction_grams: int


def award_bonuses(db: Database, operator_address: bytes, *, campaign_id: str | None = None,
                  limit: int | None = None) -> int:
    """Write the bonus entries every published campaign owes for credits not yet looked
    at, in ledger order; the number of credits looked at. Safe to run any time and
    twice: a credit looked at has its :class:`CampaignBonus` row (points 0 if capped)."""
    with db.session() as s:
        ids = sorted({c.id for c in published_versions(s, campaign_id)})
    done = 0
    for cid in ids:
        while limit is None or done < limit:
            n = _award_page(db, cid, operator_address, BONUS_PAGE if limit is None
                            else min(BONUS_PAGE, limit - done))
            done += n
            if n == 0:
                break
    return done


def _award_page(db: Database, campaign_id: str, operator: bytes, page: int) -> int:
    with db.session(write_lock=True) as s:
        share_standings(s, campaign_id)  # the versions read stay in force to the commit
        versions = published_versions(s, campaign_id)
        windows = in_force(versions)
        if not windows:
            return 0
        ranking = versions[-1].ranking  # the current version's, as the board shows
        looked_for = ({b.behaviour for c, _, _ in windows for b in c.bonuses}
                      | set(ranking.behaviours if ranking else ()))
        if not looked_for:
            return 0
        earliest = min(f for _, f, _ in windows)
        latest = max(t for _, _, t in windows)
        e = LedgerEntry
        rows = s.execute(
            select(e.seq, e.entry_id, e.citizen_id, Citizen.account, e.behaviour, e.points,
                   e.leaf, e.occurred_at, e.reduction_grams)
            .join(Citizen, Citizen.id == e.citizen_id)
            .outerjoin(CampaignBonus, and_(CampaignBonus.campaign_id == campaign_id,
                                           CampaignBonus.earned_by == e.entry_id))
            .where(e.kind == KIND_CREDIT, e.behaviour.in_(sorted(looked_for)),
                   e.occurred_at >= earliest, e.occurred_at < latest,
                   CampaignBonus.earned_by.is_(None))
            .order_by(e.seq).limit(page)).all()
        credits = [_Credit(*r[:6], leaf_methodology(r[6]), *r[7:])
                   for r in rows]  # the methodology is in the leaf only
        take_turns(s, {c.citizen_id for c in credits})
        for credit in credits:
            governing = next((c for c, f, t in windows if f <= credit.occurred_at < t), None)
            _award_one(s, campaign_id, governing, windows[0][0].key, credit, operator, ranking)
        return len(credits)


def _award_one(s: Session, campaign_id: str, campaign: Campaign | None, first_key: bytes,
               credit: _Credit, operator: bytes, ranking: RankingRules | None) -> None:
    if s.get(CampaignBonus, (campaign_id, credit.entry_id)) is not None:
        return  # another run looked at it while this one waited for the citizen's turn
    if ranking is not None and counts_in(ranking, credit.behaviour, credit.reduction_grams,
                                         credit.occurred_at):
        _stand(s, campaign_id, credit)
    rule = campaign.bonus_rule(credit.behaviour) if campaign is not None else None
    if campaign is None or rule is None:  # between versions, or a version without the rule
        key = campaign.key if campaign is not None else first_key
        s.add(CampaignBonus(campaign_id=campaign_id, earned_by=credit.entry_id, campaign_key=key,
                            citizen_id=credit.citizen_id, entry_id=None, points=0))
        return
    wanted = rule.bonus_for(credit.points)
    totals = {b: _total(s, campaign_id, credit.citizen_id, b) for b in (ALL, rule.behaviour)}
    room = campaign.bonus_cap_points - totals[ALL]
    if rule.cap_points is not None:
        room = min(room, rule.cap_points - totals[rule.behaviour])
    points = max(0, min(wanted, room))
    entry_id = None
    if points > 0:
        entry_id = bonus_entry_id(campaign_id, credit.entry_id)
        s.add(make_entry(entry_id=entry_id, citizen_id=credit.citizen_id, account=credit.account,
                         kind=KIND_BONUS, behaviour=bonus_behaviour(campaign_id), quantity=1,
                         reduction_grams=0, points=points, methodology=credit.methodology,
                         occurred_at=credit.occurred_at,
                         record_hash=keccak(bonus_record(campaign, credit.entry_id, points)),
                         partner_address=operator))
        credit_points(s, credit.citizen_id, points)
        for b in (ALL, rule.behaviour):
            _add_total(s, campaign_id, credit.citizen_id, b, totals[b], points)
    s.add(CampaignBonus(campaign_id=campaign_id, earned_by=credit.entry_id,
                        campaign_key=campaign.key, citizen_id=credit.citizen_id,
                        entry_id=entry_id, points=points))
    s.flush()


def counts_in(ranking: RankingRules, behaviour: str, reduction_grams: int, occurred_at: int
              ) -> bool:
    """Whether a credit counts in a ranking's metric: one of its behaviours, some grams,
    in its period. :func:`ledger.rankings.scores` applies the same test to leaves."""
    return (behaviour in ranking.behaviours and reduction_grams > 0
            and ranking.starts_at <= occurred_at < ranking.ends_at)


def counted_by(ranking: RankingRules | None) -> tuple[object, ...] | None:
    """What of a ranking's rules decides which credits its metric counts."""
    if ranking is None:
        return None
    return (ranking.metric, frozenset(ranking.behaviours), ranking.starts_at, ranking.ends_at)


def follow_correction(s: Session, campaign: Campaign) -> bool:
    """Once ``campaign`` is published: if it is now the campaign's latest version and its
    ranking counts other credits than the version before (other behaviours, another
    period), count the standings anew under it (:func:`recount_standings`). Whether it
    did."""
    versions = published_versions(s, campaign.id)
    if len(versions) < 2 or versions[-1].key != campaign.key:
        return False
    if counted_by(versions[-2].ranking) == counted_by(campaign.ranking):
        return False
    recount_standings(s, campaign.id, campaign.ranking)
    return True


def recount_standings(s: Session, campaign_id: str, ranking: RankingRules | None) -> None:
    """The standings counted anew under ``ranking`` from the credits the bonus step has
    looked at (the step counts the rest under the same rules as it looks at them), as
    migration 0013 first counted them. No bonus page runs meanwhile."""
    hold_standings(s, campaign_id)
    s.execute(delete(CampaignStanding).where(CampaignStanding.campaign_id == campaign_id))
    if ranking is None:
        return
    e = LedgerEntry
    counted = (select(literal(campaign_id), e.citizen_id, func.sum(e.reduction_grams),
                      func.max(e.occurred_at))
               .join(CampaignBonus, and_(CampaignBonus.campaign_id == campaign_id,
                                         CampaignBonus.earned_by == e.entry_id))
               .where(e.kind == KIND_CREDIT, e.behaviour.in_(ranking.behaviours),
                      e.reduction_grams > 0, e.occurred_at >= ranking.starts_at,
                      e.occurred_at < ranking.ends_at)
               .group_by(e.citizen_id))
    s.execute(insert(CampaignStanding).from_select(
        ["campaign_id", "citizen_id", "metric", "reached_at"], counted))


def _stand(s: Session, campaign_id: str, credit: _Credit) -> None:
    """Add a credit to its citizen's standing: the metric grows, the time is the latest."""
    key = (CampaignStanding.campaign_id == campaign_id,
           CampaignStanding.citizen_id == credit.citizen_id)
    changed = s.execute(update(CampaignStanding).where(*key).values(
        metric=CampaignStanding.metric + credit.reduction_grams,
        reached_at=case((CampaignStanding.reached_at < credit.occurred_at, credit.occurred_at),
                        else_=CampaignStanding.reached_at)))
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        s.add(CampaignStanding(campaign_id=campaign_id, citizen_id=credit.citizen_id,
                               metric=credit.reduction_grams, reached_at=credit.occurred_at))
        s.flush()


def _total(s: Session, campaign_id: str, citizen_id: int, behaviour: str) -> int:
    return int(s.scalar(select(CampaignBonusTotal.points).where(
        CampaignBonusTotal.campaign_id == campaign_id, CampaignBonusTotal.citizen_id == citizen_id,
        CampaignBonusTotal.behaviour == behaviour)) or 0)


def _add_total(s: Session, campaign_id: str, citizen_id: int, behaviour: str, before: int,
               points: int) -> None:
    key = (CampaignBonusTotal.campaign_id == campaign_id,
           CampaignBonusTotal.citizen_id == citizen_id, CampaignBonusTotal.behaviour == behaviour)
    changed = s.execute(update(CampaignBonusTotal).where(*key)
                        .values(points=CampaignBonusTotal.points + points))
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        s.add(CampaignBonusTotal(campaign_id=campaign_id, citizen_id=citizen_id,
                                 behaviour=behaviour, points=before + points))
        s.flush()


def take_turns(s: Session, citizen_ids: set[int]) -> None:
    """As a redemption does for one citizen: wait for other writes to these citizens'
    entries, so theirs commit in seq order and the caps' totals are read under the same
    locks. The advisory locks are taken in bucket order, as intake takes them, so the
    two never deadlock; then the balance rows, in id order."""
    for citizen_id in sorted(citizen_ids, key=lambda c: (c % CITIZEN_LOCK_BUCKETS, c)):
        lock_citizen(s, citizen_id)
    if citizen_ids:
        s.execute(select(Balance.citizen_id).where(Balance.citizen_id.in_(sorted(citizen_ids)))
                  .order_by(Balance.citizen_id).with_for_update())


class BonusChore:
    """After a serving process's seals: award the bonuses of credits since the last run
    (cheap when there is nothing to do: one query per published campaign)."""

    def __init__(self, db: Database, operator_address: bytes) -> None:
        self.db, self.operator = db, operator_address

    def __call__(self) -> None:
        award_bonuses(self.db, self.operator)


# -- what a citizen sees ------------------------------------------------------------------

def bonus_points_paid(session: Session, campaign_id: str) -> int:
    """Every bonus point a campaign has paid, to all its citizens."""
    return int(session.scalar(select(func.coalesce(func.sum(CampaignBonusTotal.points), 0)).where(
        CampaignBonusTotal.campaign_id == campaign_id, CampaignBonusTotal.behaviour == ALL)) or 0)


def progress(session: Session, campaign_id: str, citizen: Citizen) -> dict[str, object]:
    """A citizen's bonuses in a campaign and where the caps stand."""
    campaign = current(session, campaign_id)
    totals = dict(session.execute(select(CampaignBonusTotal.behaviour, CampaignBonusTotal.points)
                                  .where(CampaignBonusTotal.campaign_id == campaign_id,
                                         CampaignBonusTotal.citizen_id == citizen.id)).all())
    bonuses = [{"entryId": "0x" + (entry or b"").hex(), "earnedBy": "0x" + earned.hex(), "points": pts}
               for entry, earned, pts in session.execute(
                   select(CampaignBonus.entry_id, CampaignBonus.earned_by, CampaignBonus.points)
                   .where(CampaignBonus.campaign_id == campaign_id,
                          CampaignBonus.citizen_id == citizen.id, CampaignBonus.points > 0)
                   .order_by(CampaignBonus.entry_id))]
    participant = session.get(CampaignParticipant, (campaign_id, citizen.id))
    return {"campaign": campaign_id, "version": campaign.version,
            "bonusPoints": int(totals.get(ALL, 0)), "bonusCapPoints": campaign.bonus_cap_points,
            "byBehaviour": {b: int(p) for b, p in sorted(totals.items()) if b != ALL},
            "bonuses": bonuses, "nickname": participant.nickname if participant else None}
