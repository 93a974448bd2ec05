"""Named leases held in the database: one sealer at a time across processes and hosts."""

from __future__ import annotations

import os
import socket
import time

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from ledger.store.database import Database
from ledger.store.models import Lease

_BOOT = f"{os.getpid()}:{time.time_ns():x}"


def process_holder() -> str:
    """This process's name as a lease holder: ``host:pid:start``. The start time tells a
    process from a later one that reused its pid (a fork gets its own)."""
    global _BOOT
    if not _BOOT.startswith(f"{os.getpid()}:"):
        _BOOT = f"{os.getpid()}:{time.time_ns():x}"
    return f"{socket.gethostname()}:{_BOOT}"


def holder_is_dead(holder: str) -> bool:
    """A holder named ``host:pid:...`` on this host whose process is gone (killed, say):
    its lease need not be waited out."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_lease(db: Database, name: str, holder: str, *, seconds: float) -> bool:
    """Take or renew ``name`` for ``seconds``; False if someone else holds it. A lease
    held by a dead process on this host is taken over at once."""
    now = time.time()
    with db.session(write_lock=True) as s:
        current = s.scalar(select(Lease.holder).where(Lease.name == name))
        stale = [current] if current is not None and holder_is_dead(current) else []
        taken = s.execute(update(Lease)
                          .where(Lease.name == name,
                                 or_(Lease.holder == holder, Lease.expires_at < now,
                                     Lease.holder.in_(stale)))
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


def lease_holder(db: Database, name: str) -> tuple[str, float] | None:
    """Who holds ``name`` and for how many seconds more (negative: expired), or None."""
    with db.session() as s:
        row = s.execute(select(Lease.holder, Lease.expires_at).where(Lease.name == name)).first()
    return None if row is None else (row.holder, row.expires_at - time.time())
