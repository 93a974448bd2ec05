"""Redeeming points for a reward: a debit entry, sealed and anchored like any credit.

Stock and balance are taken with conditional UPDATEs in one transaction, so however
many requests race, neither goes below zero; the idempotency key replays the first
answer instead of debiting twice (one citizen's redemptions take turns on their balance
row, so a racing replay sees the first one's answer), and a key used again for another
reward is refused (the IETF Idempotency-Key draft's "key reused with another payload").

The answer's balance is the balance as of the redemption, :func:`balance_after`: the sum
of the citizen's entries up to its debit. A replay tomorrow gives the same figure.
"""

from __future__ import annotations

import re
import time

import rfc8785
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from ledger.accounts import count_debit, debit_points
from ledger.campaigns import check_offer_window
from ledger.entries import make_entry
from ledger.errors import IdempotencyKeyReused, InvalidInput, NotFound, OutOfStock
from ledger.hashing import keccak
from ledger.leaf import KIND_DEBIT, debit_entry_id
from ledger.methodology import methodology_in_force
from ledger.store.locks import lock_citizen
from ledger.store.models import Balance, Citizen, LedgerEntry, Redemption, Reward

REDEMPTION_BEHAVIOUR = "REDEMPTION"
#: An Idempotency-Key: what an HTTP header carries unchanged (visible ASCII, inner
#: spaces; a header's outer spaces are not part of its value). The OpenAPI document
#: declares the same pattern.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]{0,126}[!-~])?$"
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def redeem(session: Session, *, citizen: Citizen, reward_code: str, idempotency_key: str,
           operator_address: bytes, now: int | None = None) -> tuple[Redemption, bool]:
    """Redeem one reward. Returns the redemption and whether it was a replay."""
    if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidInput("1-128 printable ASCII characters, no space at either end",
                           field="idempotency_key")
    _take_turn(session, citizen.id)
    earlier = session.scalar(select(Redemption).where(Redemption.citizen_id == citizen.id,
                                                      Redemption.idempotency_key == idempotency_key))
    if earlier is not None:
        first = session.get_one(Reward, earlier.reward_id).code
        if first != reward_code:
            raise IdempotencyKeyReused(f"this Idempotency-Key redeemed {first!r}; "
                                       "use a new key for another reward",
                                       field="idempotency_key")
        return earlier, True
    now = int(time.time()) if now is None else now
    reward = session.scalar(select(Reward).where(Reward.code == reward_code))
    if reward is None:
        raise NotFound(f"no reward {reward_code!r}", field="reward")
    check_offer_window(session, reward.id, now)  # a campaign's offer, only in its dates
    taken = session.execute(update(Reward).where(Reward.id == reward.id, Reward.stock > 0)
                            .values(stock=Reward.stock - 1))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise OutOfStock(f"reward {reward_code!r} is out of stock", field="reward")
    debit_points(session, citizen.id, reward.points_cost)
    count_debit(session, citizen.id, REDEMPTION_BEHAVIOUR, reward.points_cost)

    key_hash = keccak(idempotency_key.encode())
    entry_id = debit_entry_id(citizen.account + key_hash)
    record = rfc8785.dumps({"kind": "redemption", "reward": reward.code,
                            "points": reward.points_cost, "key": "0x" + key_hash.hex(),
                            "at": now})
    session.add(make_entry(entry_id=entry_id, citizen_id=citizen.id, account=citizen.account,
                           kind=KIND_DEBIT, behaviour=REDEMPTION_BEHAVIOUR, quantity=1,
                           reduction_grams=0, points=reward.points_cost,
                           methodology=methodology_in_force(now).version, occurred_at=now,
                           record_hash=keccak(record), partner_address=operator_address))
    redemption = Redemption(citizen_id=citizen.id, reward_id=reward.id,
                            idempotency_key=idempotency_key, points=reward.points_cost,
                            entry_id=entry_id, created_at=now)
    session.add(redemption)
    session.flush()
    return redemption, False


def balance_after(session: Session, redemption: Redemption) -> int:
    """The citizen's balance just after ``redemption``: their credits and campaign points
    less their debits, up to and including its debit entry."""
    debit_seq = (select(LedgerEntry.seq)
                 .where(LedgerEntry.citizen_id == redemption.citizen_id,
                        LedgerEntry.entry_id == redemption.entry_id).scalar_subquery())
    signed = case((LedgerEntry.kind == KIND_DEBIT, -LedgerEntry.points), else_=LedgerEntry.points)
    total = session.scalar(select(func.coalesce(func.sum(signed), 0))
                           .where(LedgerEntry.citizen_id == redemption.citizen_id,
                                  LedgerEntry.seq <= debit_seq))
    return int(total or 0)


def _take_turn(session: Session, citizen_id: int) -> None:
    """Wait for any other write to this citizen's ledger to commit: their redemptions
    (the balance row, FOR UPDATE) and, on PostgreSQL, submissions crediting them too
    (the citizen's row lock ingest takes). So the citizen's entries commit in the
    order of their seq, and :func:`balance_after` never changes once answered. SQLite's
    write lock already serialises every writer (FOR UPDATE is not rendered there)."""
    lock_citizen(session, citizen_id)
    session.execute(select(Balance.citizen_id).where(Balance.citizen_id == citizen_id)
                    .with_for_update())
