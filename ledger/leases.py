"""Named leases held in the database: one sealer at a time across processes and hosts."""

from __future__ import annotations

import time

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from ledger.db import Database
from ledger.models import Lease


def acquire_lease(db: Database, name: str, holder: str, *, seconds: float) -> bool:
    """Take or renew ``name`` for ``seconds``; False if someone else holds it."""
    now = time.time()
    with db.session(write_lock=True) as s:
        taken = s.execute(update(Lease)
                          .where(Lease.name == name,
                                 or_(Lease.holder == holder, Lease.expires_at < now))
                          .values(holder=holder, expires_at=now + seconds))
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return True
    try:
        with db.session(write_lock=True) as s:
            s.add(Lease(name=name, holder=holder, expires_at=now + seconds))
        return True
    except IntegrityError:
        return False


def release_lease(db: Database, name: str, holder: str) -> None:
    with db.session(write_lock=True) as s:
        s.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
