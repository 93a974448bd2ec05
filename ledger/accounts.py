"""Partners, citizens, balances and the reward catalogue."""

from __future__ import annotations

import re
import secrets
import time

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ledger.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from ledger.leaf import KIND_DEBIT, account_commitment
from ledger.methodology import partner_kinds
from ledger.store.models import Balance, Citizen, CitizenTotal, Partner, Reward

_CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_PSEUDONYM = re.compile(r"^[A-Za-z0-9_-]{4,64}$")


def parse_address(value: str, *, field: str = "address") -> bytes:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value or ""):
        raise InvalidInput(f"{value!r} is not a 0x-prefixed 20-byte hex address", field=field)
    return bytes.fromhex(value[2:])


def _label(text: str, field: str) -> None:
    """A display name or title: 1-200 printable characters (the columns' width)."""
    if not text.strip() or len(text) > 200 or not text.isprintable():
        raise InvalidInput("1 to 200 printable characters", field=field)


def create_partner(session: Session, *, code: str, name: str, kind: str,
                   signing_address: bytes) -> Partner:
    if not _CODE.match(code):
        raise InvalidInput("lower-case letters, digits, '_', '.', '-'; at most 64", field="code")
    _label(name, "name")
    kinds = partner_kinds()
    if kind not in kinds:
        raise InvalidInput(f"one of {', '.join(kinds)}", field="kind")
    if session.scalar(select(Partner.id).where(Partner.code == code)) is not None:
        raise Conflict(f"partner {code!r} exists", field="code")
    if session.scalar(select(Partner.id).where(Partner.signing_address == signing_address)):
        raise Conflict("another partner has this signing address", field="signing_address")
    partner = Partner(code=code, name=name, kind=kind, signing_address=signing_address,
                      created_at=int(time.time()))
    session.add(partner)
    session.flush()
    return partner


def find_partner(session: Session, code: str) -> Partner | None:
    return session.scalar(select(Partner).where(Partner.code == code))


def get_partner(session: Session, code: str) -> Partner:
    partner = find_partner(session, code)
    if partner is None:
        raise NotFound(f"no partner {code!r}", field="partner")
    return partner


def create_citizen(session: Session, *, pseudonym: str | None = None) -> Citizen:
    """Open an account under a random (or given) pseudonym with a fresh secret salt."""
    pseudonym = pseudonym or "c_" + secrets.token_hex(12)
    if not _PSEUDONYM.match(pseudonym):
        raise InvalidInput("4-64 of A-Z a-z 0-9 _ -", field="pseudonym")
    if session.scalar(select(Citizen.id).where(Citizen.pseudonym == pseudonym)) is not None:
        raise Conflict(f"citizen {pseudonym!r} exists", field="pseudonym")
    salt = secrets.token_bytes(32)
    citizen = Citizen(pseudonym=pseudonym, salt=salt, account=account_commitment(pseudonym, salt),
                      created_at=int(time.time()))
    session.add(citizen)
    session.flush()
    session.add(Balance(citizen_id=citizen.id, points=0))
    return citizen


def get_citizen(session: Session, pseudonym: str) -> Citizen:
    citizen = session.scalar(select(Citizen).where(Citizen.pseudonym == pseudonym))
    if citizen is None:
        raise NotFound(f"no citizen {pseudonym!r}", field="citizen")
    return citizen


def erase_citizen(session: Session, citizen: Citizen) -> None:
    """Forget who the citizen was: delete the salt (so no leaf can be linked to them any
    more), replace the pseudonym, redact their raw records (the record hashes stay, so
    their leaves still verify; only those records can no longer be re-read), revoke their
    tokens, delete their campaign nicknames. Every proof stays valid; nothing on chain changes."""
    from ledger.store.models import ActivityRecord, CampaignParticipant, CitizenToken

    if citizen.erased_at is not None:
        raise Conflict("already erased", field="citizen")
    now = int(time.time())
    citizen.salt = None
    citizen.pseudonym = "erased_" + secrets.token_hex(12)
    citizen.erased_at = now
    session.execute(update(ActivityRecord).where(ActivityRecord.citizen_id == citizen.id)
                    .values(raw='{"erased":true}'))
    session.execute(update(CitizenToken).where(CitizenToken.citizen_id == citizen.id,
                                               CitizenToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.execute(delete(CampaignParticipant)  # their ranking nicknames (#21)
                    .where(CampaignParticipant.citizen_id == citizen.id))


def balance(session: Session, citizen_id: int) -> int:
    return int(session.scalar(select(Balance.points).where(Balance.citizen_id == citizen_id)) or 0)


def credit_points(session: Session, citizen_id: int, points: int) -> None:
    session.execute(update(Balance).where(Balance.citizen_id == citizen_id)
                    .values(points=Balance.points + points))


def count_debit(session: Session, citizen_id: int, behaviour: str, points: int) -> None:
    """Add a debit entry of ``points`` to the citizen's totals (what their page reads).
    Call it in the citizen's turn (the balance row locked), as a redemption does."""
    key = (CitizenTotal.citizen_id == citizen_id, CitizenTotal.kind == KIND_DEBIT,
           CitizenTotal.behaviour == behaviour)
    added = session.execute(update(CitizenTotal).where(*key).values(
        entries=CitizenTotal.entries + 1, points=CitizenTotal.points + points))
    if added.rowcount == 0:  # type: ignore[attr-defined]
        session.add(CitizenTotal(citizen_id=citizen_id, kind=KIND_DEBIT, behaviour=behaviour,
                                 entries=1, grams=0, points=points, longest=0))


def debit_points(session: Session, citizen_id: int, points: int) -> None:
    """Take ``points`` in one conditional UPDATE, so racing debits never overdraw."""
    result = session.execute(update(Balance)
                             .where(Balance.citizen_id == citizen_id, Balance.points >= points)
                             .values(points=Balance.points - points))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InsufficientPoints(f"balance is {balance(session, citizen_id)}, "
                                 f"{points} needed", field="points")


def upsert_reward(session: Session, *, code: str, title: str, points_cost: int,
                  stock: int) -> Reward:
    if not _CODE.match(code):
        raise InvalidInput("lower-case letters, digits, '_', '.', '-'; at most 64", field="code")
    _label(title, "title")
    if points_cost <= 0:
        raise InvalidInput("must be a positive number of points", field="points_cost")
    if stock < 0:
        raise InvalidInput("cannot be negative", field="stock")
    reward = session.scalar(select(Reward).where(Reward.code == code))
    if reward is None:
        reward = Reward(code=code, title=title, points_cost=points_cost, stock=stock)
        session.add(reward)
    else:
        reward.title, reward.points_cost, reward.stock = title, points_cost, stock
    session.flush()
    return reward
