"""What exists, listed for the operator's command line: partners, citizens, rewards,
credentials (ids and roles, never a secret or its hash), submissions, and a citizen's
entries with their status. Plain dicts out, full ids, unix seconds."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ledger.errors import InvalidInput
from ledger.leaf import KIND_CREDIT, KIND_DEBIT
from ledger.methodology import local_day_offset
from ledger.store.models import (
    ApiKey,
    Balance,
    Batch,
    Citizen,
    CitizenToken,
    EntryLocator,
    LedgerEntry,
    Partner,
    Redemption,
    Reward,
    Submission,
    entry_key,
)
from ledger.views import KIND_NAMES

MAX_LIST = 10_000


def _hex(b: bytes | None) -> str | None:
    return "0x" + b.hex() if b is not None else None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"1 to {MAX_LIST}", field="--limit")
    return limit


def partners(session: Session) -> list[dict[str, Any]]:
    return [{"code": p.code, "name": p.name, "kind": p.kind,
             "signingAddress": _hex(p.signing_address), "createdAt": p.created_at}
            for p in session.scalars(select(Partner).order_by(Partner.code))]


def citizens(session: Session, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Citizens, oldest first, with their points (an erased one has no pseudonym left to
    list: its account stays, unlinkable)."""
    rows = session.execute(
        select(Citizen, Balance.points).outerjoin(Balance, Balance.citizen_id == Citizen.id)
        .where(Citizen.erased_at.is_(None)).order_by(Citizen.id).limit(_limit(limit))).all()
    return [{"pseudonym": c.pseudonym, "points": int(points or 0), "createdAt": c.created_at}
            for c, points in rows]


def rewards(session: Session) -> list[dict[str, Any]]:
    return [{"code": r.code, "title": r.title, "points": r.points_cost, "stock": r.stock}
            for r in session.scalars(select(Reward).order_by(Reward.code))]


def credentials(session: Session) -> list[dict[str, Any]]:
    """API keys and citizens' tokens: the key id ``admin revoke`` takes, the role and whose
    it is; never the secret (which is not kept) nor its hash."""
    keys = session.execute(select(ApiKey, Partner.code)
                           .outerjoin(Partner, Partner.id == ApiKey.partner_id)
                           .order_by(ApiKey.id)).all()
    tokens = session.execute(select(CitizenToken, Citizen.pseudonym)
                             .join(Citizen, Citizen.id == CitizenToken.citizen_id)
                             .order_by(CitizenToken.id)).all()
    return ([{"keyId": k.key_id, "role": k.role, "owner": code, "createdAt": k.created_at,
              "revokedAt": k.revoked_at} for k, code in keys]
            + [{"keyId": t.key_id, "role": "citizen", "owner": who, "createdAt": t.created_at,
                "revokedAt": t.revoked_at} for t, who in tokens])


def submissions(session: Session, *, partner_id: int | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Signed submissions, newest first."""
    q = (select(Submission, Partner.code).join(Partner, Partner.id == Submission.partner_id)
         .order_by(Submission.received_at.desc(), Submission.id).limit(_limit(limit)))
    if partner_id is not None:
        q = q.where(Submission.partner_id == partner_id)
    return [{"submissionId": s.id, "partner": code, "receivedAt": s.received_at,
             "records": s.record_count, "accepted": s.accepted, "duplicate": s.duplicate,
             "rejected": s.rejected, "reductionGrams": s.grams,
             "recordsHash": _hex(s.records_hash)}
            for s, code in session.execute(q).all()]


def citizen_ledger(session: Session, citizen_id: int) -> list[dict[str, Any]]:
    """A citizen's entries in ledger order, each with its status: ``pending`` (not yet in
    a batch), else its batch's status (``sealed``, ``submitted``, ``anchored``) and block;
    a redemption's debit names the reward."""
    rows = session.execute(
        select(LedgerEntry, EntryLocator.batch_id, Batch.status, Batch.block_number,
               Reward.code, Reward.title).select_from(LedgerEntry)
        .outerjoin(EntryLocator, and_(EntryLocator.entry_key == entry_key(LedgerEntry.entry_id),
                                      EntryLocator.seq == LedgerEntry.seq))
        .outerjoin(Batch, Batch.id == EntryLocator.batch_id)
        .outerjoin(Redemption, Redemption.entry_id == LedgerEntry.entry_id)
        .outerjoin(Reward, Reward.id == Redemption.reward_id)
        .where(LedgerEntry.citizen_id == citizen_id).order_by(LedgerEntry.seq)).all()
    out = []
    for e, batch_id, status, block, reward, title in rows:
        item: dict[str, Any] = {
            "entryId": _hex(e.entry_id), "kind": KIND_NAMES.get(e.kind, "debit"),
            "behaviour": e.behaviour, "quantity": e.quantity, "reductionGrams": e.reduction_grams,
            "points": -e.points if e.kind == KIND_DEBIT else e.points,
            "methodology": e.methodology, "occurredAt": e.occurred_at,
            "status": status or "pending", "batchId": batch_id, "blockNumber": block}
        if reward is not None:
            item["reward"] = {"code": reward, "title": title}
        out.append(item)
    return out


def citizen_months(session: Session, citizen_id: int, *, since: int, until: int) -> dict[str, Any]:
    """A citizen's credited grams by local month and behaviour, for entries that occurred
    in ``[since, until)``: a chart's series (``stackedBar``, as the reports' charts)."""
    offset = int(local_day_offset().total_seconds())
    by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    months: set[str] = set()
    for behaviour, at, grams in session.execute(
            select(LedgerEntry.behaviour, LedgerEntry.occurred_at, LedgerEntry.reduction_grams)
            .where(LedgerEntry.citizen_id == citizen_id, LedgerEntry.kind == KIND_CREDIT,
                   LedgerEntry.occurred_at >= since, LedgerEntry.occurred_at < until)):
        month = datetime.fromtimestamp(at + offset, UTC).strftime("%Y-%m")
        months.add(month)
        by[behaviour][month] += grams
    x = sorted(months)
    return {"type": "stackedBar", "unit": "g CO2e", "x": x,
            "series": [{"name": name, "values": [values.get(m, 0) for m in x]}
                       for name, values in sorted(by.items())]}
