"""Read-side views of the ledger for its users: a citizen's own ledger, a partner's own
submissions, the batches an auditor lists. Plain dicts out."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select, union_all
from sqlalchemy.orm import Session

from ledger.accounts import balance
from ledger.entries import sealed_through
from ledger.errors import InvalidInput, NotFound
from ledger.leaf import KIND_BONUS, KIND_CREDIT, KIND_DEBIT
from ledger.store.models import (
    Batch,
    Citizen,
    CitizenTotal,
    LedgerEntry,
    Partner,
    Reward,
    Submission,
)

MAX_PAGE = 500
#: An entry's kind as the faces name it (a bonus: campaign points, #21).
KIND_NAMES = {KIND_CREDIT: "credit", KIND_DEBIT: "debit", KIND_BONUS: "bonus"}


def _hex(b: bytes | None) -> str | None:
    return "0x" + b.hex() if b is not None else None


def entry_view(e: LedgerEntry) -> dict[str, Any]:
    return {"entryId": _hex(e.entry_id), "kind": KIND_NAMES.get(e.kind, "debit"),
            "behaviour": e.behaviour, "quantity": e.quantity, "reductionGrams": e.reduction_grams,
            "points": e.points, "methodology": e.methodology, "occurredAt": e.occurred_at}


def citizen_summary(session: Session, citizen_id: int) -> dict[str, Any]:
    """Balance, points spent and totals per behaviour, from the citizen's totals (kept as
    entries are written), never their entries: as cheap at their thousandth entry as at
    their first. Two reads of one snapshot (the session's): points = credits − spent."""
    rows = session.execute(
        select(CitizenTotal.kind, CitizenTotal.behaviour, CitizenTotal.entries,
               CitizenTotal.grams, CitizenTotal.points)
        .where(CitizenTotal.citizen_id == citizen_id, CitizenTotal.entries > 0)
        .order_by(CitizenTotal.kind, CitizenTotal.behaviour)).all()
    spent = sum(p for kind, _, _, _, p in rows if kind == KIND_DEBIT)
    return {"points": balance(session, citizen_id), "pointsSpent": int(spent),
            "totals": [{"behaviour": b, "entries": n, "reductionGrams": int(g),
                        "points": int(p)} for kind, b, n, g, p in rows if kind == KIND_CREDIT]}


def _behaviours_query() -> Select[str]:
    e = LedgerEntry
    citizen = bindparam("citizen", type_=Integer())
    found = select(select(func.min(e.behaviour)).where(e.citizen_id == citizen)
                   .scalar_subquery().label("code")).cte("found", recursive=True)
    found = found.union_all(
        select(select(func.min(e.behaviour))
               .where(e.citizen_id == citizen, e.behaviour > found.c.code)
               .scalar_subquery())
        .where(found.c.code.is_not(None)))
    return select(found.c.code).where(found.c.code.is_not(None))


_BEHAVIOURS = _behaviours_query()


def citizen_behaviours(session: Session, citizen_id: int) -> list[str]:
    """The behaviours a citizen has entries of: a loose scan of
    ``ix_entries_citizen_behaviour_seq`` (each step the first code past the last one found),
    so it costs one index seek per behaviour, whatever their number of entries."""
    return list(session.scalars(_BEHAVIOURS, {"citizen": citizen_id}))


@lru_cache(maxsize=256)
def _page_query(arms: int, since: bool, until: bool, after: bool) -> Select[LedgerEntry]:
    """A page merged over ``arms`` behaviours (bound as ``b0``, ``b1``, ...), each read
    down ``ix_entries_citizen_behaviour_seq`` for its next ``n`` rows; the filters given
    are bound too. Built once for each shape: building it costs more than running it."""
    e = LedgerEntry
    n = bindparam("n", type_=Integer())
    parts = []
    for k in range(arms):
        arm = select(e.seq).where(e.citizen_id == bindparam("citizen"),
                                  e.behaviour == bindparam(f"b{k}"))
        if since:
            arm = arm.where(e.occurred_at >= bindparam("since"))
        if until:
            arm = arm.where(e.occurred_at < bindparam("until"))
        if after:
            arm = arm.where(e.seq > bindparam("after"))
        # each arm a subquery of its own: SQLite takes no LIMIT inside a compound select
        parts.append(select(arm.order_by(e.seq).limit(n).subquery().c.seq))
    merged = union_all(*parts).subquery() if arms > 1 else parts[0].subquery()
    first = select(merged.c.seq).order_by(merged.c.seq).limit(n).subquery()
    return select(e).join(first, first.c.seq == e.seq).order_by(e.seq)


def citizen_entries(session: Session, citizen_id: int, *, behaviour: str | None = None,
                    since: int | None = None, until: int | None = None, limit: int = 50,
                    after_seq: int | None = None) -> dict[str, Any]:
    """One page of a citizen's entries, oldest first (in ledger order, ``seq``); ``next``
    continues after the last. A page costs its size times the citizen's behaviours, never
    their history: each behaviour's next ``limit + 1`` are read down
    ``ix_entries_citizen_behaviour_seq`` (``from``/``to`` filter the rows met on the way)
    and the first ``limit + 1`` of them all are kept. One index serves both this and the
    page of one behaviour; an index in ``(citizen, seq)`` order cost every entry about 42
    bytes on PostgreSQL and a page written at random on every commit (#19, #24)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"1 to {MAX_PAGE}", field="limit")
    codes = [behaviour] if behaviour else citizen_behaviours(session, citizen_id)
    if not codes:
        return {"entries": [], "next": None}
    params: dict[str, Any] = {f"b{k}": code for k, code in enumerate(codes)}
    params.update(citizen=citizen_id, n=limit + 1, since=since, until=until, after=after_seq)
    query = _page_query(len(codes), since is not None, until is not None, after_seq is not None)
    rows = session.scalars(query, params).all()
    page = rows[:limit]
    return {"entries": [entry_view(row) for row in page],
            "next": str(page[-1].seq) if len(rows) > limit else None}


def batch_view(b: Batch) -> dict[str, Any]:
    return {"batchId": b.id, "root": _hex(b.root), "leafCount": b.leaf_count,
            "contentHash": _hex(b.content_hash), "status": b.status, "txHash": _hex(b.tx_hash),
            "blockNumber": b.block_number, "chainId": b.chain_id, "contract": b.contract_address,
            "sealedAt": b.sealed_at, "anchoredAt": b.anchored_at}


def list_batches(session: Session, *, limit: int = 100, after_id: int = 0) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"1 to {MAX_PAGE}", field="limit")
    rows = session.scalars(select(Batch).where(Batch.id > after_id).order_by(Batch.id)
                           .limit(limit + 1)).all()
    page = rows[:limit]
    return {"batches": [batch_view(b) for b in page],
            "next": str(page[-1].id) if len(rows) > limit else None}


def submission_view(s: Submission, *, with_receipt: bool = True) -> dict[str, Any]:
    view = {"submissionId": s.id, "records": s.record_count, "accepted": s.accepted,
            "duplicate": s.duplicate, "rejected": s.rejected, "reductionGrams": s.grams,
            "recordsHash": _hex(s.records_hash), "receivedAt": s.received_at}
    if with_receipt:
        view["receipt"] = json.loads(s.receipt)
    return view


def partner_submissions(session: Session, partner_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"1 to {MAX_PAGE}", field="limit")
    rows = session.scalars(select(Submission).where(Submission.partner_id == partner_id)
                           .order_by(Submission.received_at.desc()).limit(limit))
    return [submission_view(s, with_receipt=False) for s in rows]


def partner_submission(session: Session, partner_id: int, submission_id: str) -> dict[str, Any]:
    row = session.get(Submission, submission_id)
    if row is None or row.partner_id != partner_id:  # another partner's is "not found" too
        raise NotFound(f"no submission {submission_id}", field="submission_id")
    return submission_view(row)


def all_batches(session: Session) -> list[Batch]:
    """Every batch, oldest first (the CLI's list, the chain audit)."""
    return list(session.scalars(select(Batch).order_by(Batch.id)))


def entries_of(session: Session, citizen_id: int) -> list[LedgerEntry]:
    """All of a citizen's entries, in ledger order."""
    return list(session.scalars(select(LedgerEntry).where(LedgerEntry.citizen_id == citizen_id)
                                .order_by(LedgerEntry.seq)))


def entry_ids_in(session: Session, batch_ids: list[int]) -> list[bytes]:
    """The ids of every entry sealed into ``batch_ids``, batch by batch in ledger order."""
    ranges = session.execute(select(Batch.first_seq, Batch.last_seq)
                             .where(Batch.id.in_(batch_ids)).order_by(Batch.id)).all()
    return [e for lo, hi in ranges for e in session.scalars(
        select(LedgerEntry.entry_id).where(LedgerEntry.seq.between(lo, hi))
        .order_by(LedgerEntry.seq))]


def reward_list(session: Session) -> list[dict[str, Any]]:
    return [{"code": r.code, "title": r.title, "points": r.points_cost, "stock": r.stock}
            for r in session.scalars(select(Reward).order_by(Reward.code))]


def citizen_count(session: Session) -> int:
    return int(session.scalar(select(func.count(Citizen.id))) or 0)


def unsealed_entries(session: Session) -> int:
    """How many entries wait for the next batch."""
    return int(session.scalar(select(func.count())
                              .where(LedgerEntry.seq > sealed_through(session))) or 0)


def busiest_citizen(session: Session) -> Citizen | None:
    """The citizen with the most entries (the demo's sign-in shows their ledger)."""
    return session.scalars(select(Citizen).join(LedgerEntry, LedgerEntry.citizen_id == Citizen.id)
                           .group_by(Citizen.id).order_by(func.count().desc()).limit(1)).first()


def first_partner(session: Session, *, preferring: str) -> Partner | None:
    """The partner coded ``preferring`` if there is one, else the first by code."""
    return session.scalars(select(Partner).order_by(Partner.code != preferring, Partner.code)
                           .limit(1)).first()
