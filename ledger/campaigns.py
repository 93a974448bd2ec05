"""Campaigns in the ledger (#21): their registered versions, their partners' offers and
who takes part in their public rankings.

A campaign version's canonical rules are stored here (:func:`register`) and their hash
pinned on the anchor contract by :func:`ledger.campaign_anchoring.publish`, which the
contract refuses once the campaign has started (the chain's clock, not ours) or if that
version was pinned already. Only published versions award anything.

Bonus points and the running standings are the bonus step's:
:mod:`ledger.campaign_bonuses`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.accounts import find_partner, upsert_reward
from ledger.campaign_rules import Campaign, local_midnight, parse_campaign
from ledger.errors import AnchorMismatch, Conflict, InvalidInput, NotFound
from ledger.methodology import local_day_offset
from ledger.store.models import CampaignOffer, CampaignParticipant, CampaignRow, Citizen

# -- versions -------------------------------------------------------------------------------

def register(session: Session, campaign: Campaign) -> CampaignRow:
    """Store a campaign version (idempotent for the same file) and its offers as rewards
    in the catalogue. A version already stored with other rules is refused: a correction
    is a new version."""
    row = session.get(CampaignRow, campaign.key)
    if row is not None:
        if row.rules_hash != campaign.rules_hash:
            raise Conflict(f"{campaign.id} version {campaign.version} is registered with rules "
                           f"hash 0x{row.rules_hash.hex()}; this file hashes "
                           f"0x{campaign.rules_hash.hex()}: publish the correction as a new "
                           "version", field="version")
        return row
    row = CampaignRow(key=campaign.key, campaign_id=campaign.id, version=campaign.version,
                      rules=campaign.canonical.decode(), rules_hash=campaign.rules_hash,
                      starts_at=campaign.starts_at, ends_at=campaign.ends_at, status="registered")
    session.add(row)
    session.flush()
    for i, offer in enumerate(campaign.offers):
        partner = find_partner(session, offer.partner)
        if partner is None:
            raise NotFound(f"no partner {offer.partner!r}", field=f"offers[{i}].partner")
        reward = upsert_reward(session, code=campaign.reward_code(offer), title=offer.title.en,
                               points_cost=offer.points_cost, stock=offer.stock)
        session.add(CampaignOffer(reward_id=reward.id, campaign_key=campaign.key,
                                  partner_id=partner.id,
                                  valid_from=_local_start(offer.valid_from),
                                  valid_until=_local_start(offer.valid_until, days=1)))
    return row


def load(row: CampaignRow) -> Campaign:
    """A stored version's rules, refused if the stored text no longer has its hash."""
    campaign = parse_campaign(row.rules)
    if campaign.rules_hash != row.rules_hash or campaign.key != row.key:
        raise AnchorMismatch(f"the stored rules of {row.campaign_id} v{row.version} do not hash "
                             "to the published hash", field="rules")
    return campaign


def published_versions(session: Session, campaign_id: str | None = None) -> list[Campaign]:
    q = select(CampaignRow).where(CampaignRow.status == "published")
    if campaign_id is not None:
        q = q.where(CampaignRow.campaign_id == campaign_id)
    return [load(r) for r in session.scalars(q.order_by(CampaignRow.campaign_id,
                                                        CampaignRow.version))]


def in_force(versions: Sequence[Campaign]) -> list[tuple[Campaign, int, int]]:
    """Each published version of one campaign and the window it governs, ``[from, to)``:
    from its start until its end or a later version's start, whichever comes first. A
    correction so applies from its own start, never to what happened before it."""
    ordered = sorted(versions, key=lambda c: c.version)
    out = []
    for i, c in enumerate(ordered):
        until = c.ends_at
        later = [v.starts_at for v in ordered[i + 1:]]
        if later:
            until = min(until, min(later))
        if until > c.starts_at:
            out.append((c, c.starts_at, until))
    return out


def current(session: Session, campaign_id: str) -> Campaign:
    """The latest published version of a campaign."""
    versions = published_versions(session, campaign_id)
    if not versions:
        raise NotFound(f"no published campaign {campaign_id!r}", field="campaign")
    return versions[-1]


def campaign_summaries(session: Session) -> list[dict[str, object]]:
    """Every published version: what ``campaign list`` and ``GET /v1/campaigns`` show."""
    return [summary(c, s_row) for c, s_row in (
        (load(r), r) for r in session.scalars(select(CampaignRow)
                                              .where(CampaignRow.status == "published")
                                              .order_by(CampaignRow.campaign_id,
                                                        CampaignRow.version)))]


def summary(c: Campaign, row: CampaignRow | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "id": c.id, "version": c.version, "key": "0x" + c.key.hex(),
        "rulesHash": "0x" + c.rules_hash.hex(), "title": {"zh-CN": c.title.zh, "en": c.title.en},
        "starts": c.starts.isoformat(), "ends": c.ends.isoformat(),
        "rules": json.loads(c.canonical)}
    if row is not None:
        out["publication"] = {"chainId": row.chain_id, "contract": row.contract_address,
                              "txHash": "0x" + row.tx_hash.hex() if row.tx_hash else None,
                              "blockNumber": row.block_number}
    return out


# -- offers ---------------------------------------------------------------------------------

def check_offer_window(session: Session, reward_id: int, now: int) -> None:
    """Refuse redeeming a campaign's partner offer outside its validity (a reward that is
    no offer passes). Called by :func:`ledger.redemption.redeem`."""
    offer = session.get(CampaignOffer, reward_id)
    if offer is None:
        return
    if not offer.valid_from <= now < offer.valid_until:
        raise Conflict("this partner offer is redeemable only from "
                       f"{_day(offer.valid_from)} to {_day(offer.valid_until - 1)} (local dates)",
                       field="reward")


def _local_start(day: date, *, days: int = 0) -> int:
    return local_midnight(day + timedelta(days=days))


def _day(unix: int) -> str:
    return datetime.fromtimestamp(unix + local_day_offset().total_seconds(), UTC).date().isoformat()


# -- taking part in rankings ----------------------------------------------------------------

#: A nickname: letters of any script, digits, '_', '-', '.', 2-24 of them; no '@' and no
#: run of 6 digits, so neither an e-mail address nor a phone number passes as one.
_NICKNAME = re.compile(r"^[\w.-]{2,24}$")
_DIGITS = re.compile(r"[0-9]{6}")


def join(session: Session, campaign_id: str, citizen: Citizen, nickname: str,
         *, now: int | None = None) -> CampaignParticipant:
    """Opt in to a campaign's public ranking under ``nickname`` (or change it)."""
    campaign = current(session, campaign_id)
    if campaign.ranking is None:
        raise Conflict(f"campaign {campaign_id!r} has no ranking", field="campaign")
    if citizen.erased_at is not None:
        raise Conflict("an erased account takes part in nothing", field="citizen")
    if not _NICKNAME.fullmatch(nickname) or _DIGITS.search(nickname):
        raise InvalidInput("2-24 letters, digits, '_', '-' or '.', and no run of 6 digits "
                           "(no phone numbers or other personal data)", field="nickname")
    taken = session.scalar(select(CampaignParticipant.citizen_id).where(
        CampaignParticipant.campaign_id == campaign_id, CampaignParticipant.nickname == nickname))
    if taken is not None and taken != citizen.id:
        raise Conflict(f"nickname {nickname!r} is taken in this campaign", field="nickname")
    row = session.get(CampaignParticipant, (campaign_id, citizen.id))
    if row is None:
        row = CampaignParticipant(campaign_id=campaign_id, citizen_id=citizen.id,
                                  nickname=nickname, joined_at=int(time.time()) if now is None else now)
        session.add(row)
    else:
        row.nickname = nickname
    session.flush()
    return row


def leave(session: Session, campaign_id: str, citizen: Citizen) -> bool:
    """Opt out: the nickname is deleted; whether there was one."""
    row = session.get(CampaignParticipant, (campaign_id, citizen.id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def forget_citizen(session: Session, citizen_id: int) -> None:
    """Erasure: every nickname of the citizen goes (their ranks' leaves stay, holding only
    the account commitment, which the erased salt no longer links to anyone)."""
    for row in session.scalars(select(CampaignParticipant)
                               .where(CampaignParticipant.citizen_id == citizen_id)):
        session.delete(row)
