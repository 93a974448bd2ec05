"""A batch's audit as the HTTP face serves it: in the request for a small batch, as a job
for a large one, so no request holds a serving worker for the minutes a large audit takes.

A batch of at most :data:`INLINE_ENTRIES` entries (a second or two) is recomputed in the
request. A larger one is audited by a job: the first request claims it (a row of
``batch_audits``, so one job per batch whatever the number of serving processes) and
starts it in a process of its own (spawned: the server's threads and connections stay
the server's; the audit's CPU is not the worker's); every request then answers with its
progress (202) until it is done, and with its stored report (200, ``auditedAt`` saying
when) after. A job whose process died stops beating: after :data:`STALE_SECONDS` the next
request claims it anew. ``refresh`` starts a new audit of a batch already audited (the
stored report is the ledger as it was then; ``carbon-ledger audit`` recomputes it now).

Either way the recomputed batch is held against the chain, as ``carbon-ledger audit`` holds
it: in the request through the server's reader, in a job's process through the reader the
composition root's opener gives there (``heldAgainstChain`` says whether it was).
"""

from __future__ import annotations

import json
import multiprocessing
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ledger.anchoring import ChainReader
from ledger.audit import audit_batch
from ledger.errors import NotFound
from ledger.store.database import Database
from ledger.store.models import Batch, BatchAudit

#: The largest batch audited in the request (about a second at the audit's speed).
INLINE_ENTRIES = 100_000
#: A running job that has not reported progress for this long is taken to have died.
STALE_SECONDS = 60
#: How often a job reports its progress (and so that it is alive).
BEAT_SECONDS = 2.0
#: Processes a job forks to audit slices of its batch (safe there: the job's process is
#: spawned, with no thread or connection of the server's).
JOB_WORKERS = 2
#: How long a client should wait before asking again about a running job.
RETRY_SECONDS = 5

#: How a job's process opens the ledger's contract, read-only, given its own database: a
#: picklable callable (the process is spawned); it gives None if the ledger never deployed
#: on that chain.
ChainOpener = Callable[[Database], ChainReader | None]
Starter = Callable[[str, int, str, ChainOpener | None], None]


@dataclass(frozen=True)
class AuditAnswer:
    status: int  # 200: ``body`` is the report; 202: the job's progress
    body: dict[str, Any]


def batch_audit(db: Database, batch_id: int, *, chain: ChainReader | None = None,
                job_chain: ChainOpener | None = None, refresh: bool = False,
                start: Starter | None = None) -> AuditAnswer:
    """The report of batch ``batch_id`` if it is small or audited already, else its job's
    progress, claiming and starting the job (with ``start``) if none is running. A small
    batch is held against ``chain``, a large one against what ``job_chain`` opens in the
    job's process (neither: recomputed only)."""
    now = int(time.time())
    with db.session(snapshot=True) as s:
        batch = s.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id}", field="batch_id")
        if batch.leaf_count <= INLINE_ENTRIES:
            report = audit_batch(s, batch_id, chain=chain)
            return AuditAnswer(200, {**report.as_dict(), "heldAgainstChain": chain is not None,
                                     "auditedAt": now})
        total = batch.leaf_count
        job = s.get(BatchAudit, batch_id)
        if job is not None and job.state == "done" and not refresh:
            return AuditAnswer(200, _stored(job))
        if job is not None and _alive(job, now):
            return AuditAnswer(202, _progress(job, total))
    holder = _claim(db, batch_id, now, refresh=refresh)
    if holder is not None:
        (start or start_process)(db.url, batch_id, holder, job_chain)
    with db.session(snapshot=True) as s:
        job = s.get(BatchAudit, batch_id)
        if job is not None and job.state == "done" and holder is None:
            return AuditAnswer(200, _stored(job))  # finished in between
        assert job is not None  # claimed, by us or by another request
        return AuditAnswer(202, _progress(job, total))


def _alive(job: BatchAudit, now: int) -> bool:
    return job.state == "running" and job.heartbeat_at >= now - STALE_SECONDS


def _stored(job: BatchAudit) -> dict[str, Any]:
    # a report stored before jobs held batches against the chain says nothing of it
    return {"heldAgainstChain": False, **json.loads(job.result or "{}"),
            "auditedAt": job.finished_at}


def _progress(job: BatchAudit, total: int) -> dict[str, Any]:
    return {"batchId": job.batch_id, "state": "running", "entries": total,
            "entriesDone": min(job.entries_done, total), "startedAt": job.started_at}


def _claim(db: Database, batch_id: int, now: int, *, refresh: bool) -> str | None:
    """A new holder's name if this request may run the job (none running, or the one
    running stale; a done one only when ``refresh``), else None."""
    holder = secrets.token_hex(16)
    try:
        with db.session(write_lock=True) as s:
            job = s.get(BatchAudit, batch_id, with_for_update=True)
            if job is None:
                s.add(BatchAudit(batch_id=batch_id, state="running", holder=holder,
                                 started_at=now, heartbeat_at=now, entries_done=0))
                return holder
            if _alive(job, now) or (job.state == "done" and not refresh):
                return None
            job.state, job.holder, job.started_at, job.heartbeat_at = "running", holder, now, now
            job.entries_done, job.finished_at, job.result = 0, None, None
            return holder
    except IntegrityError:  # another request inserted the job first (PostgreSQL)
        return None


class _Superseded(Exception):
    """The job was claimed by another holder (this one was taken for dead)."""


def run_job(url: str, batch_id: int, holder: str, open_chain: ChainOpener | None = None) -> None:
    """Audit the batch, held against the chain ``open_chain`` opens, and store the report,
    reporting progress as it goes; the body of a job's process."""
    db = Database(url)
    last = [time.monotonic()]

    def beat(done: int, _total: int) -> None:
        if time.monotonic() - last[0] < BEAT_SECONDS:
            return
        last[0] = time.monotonic()
        if not _update(db, batch_id, holder, entries_done=done, heartbeat_at=int(time.time())):
            raise _Superseded

    try:
        chain = open_chain(db) if open_chain is not None else None
        with db.session(snapshot=True) as s:
            report = audit_batch(s, batch_id, chain=chain, progress=beat, workers=JOB_WORKERS)
        result = {**report.as_dict(), "heldAgainstChain": chain is not None}
        _update(db, batch_id, holder, state="done", entries_done=report.entries,
                finished_at=int(time.time()), result=json.dumps(result))
    except _Superseded:
        pass
    except Exception as exc:  # noqa: BLE001 - recorded; the next request starts it again
        _update(db, batch_id, holder, state="failed", finished_at=int(time.time()),
                result=json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
    finally:
        db.engine.dispose()


def _update(db: Database, batch_id: int, holder: str, **values: Any) -> bool:
    with db.session(write_lock=True) as s:
        done = s.execute(update(BatchAudit).where(BatchAudit.batch_id == batch_id,
                                                  BatchAudit.holder == holder).values(**values))
        return bool(done.rowcount)  # type: ignore[attr-defined]


_children: list[Any] = []


def start_process(url: str, batch_id: int, holder: str,
                  open_chain: ChainOpener | None = None) -> None:
    """Run the job in a spawned process (not forked: a server has threads and pooled
    connections a fork would copy). A daemon: it ends with the server, and a job left
    unfinished is claimed again by a later request."""
    _children[:] = [p for p in _children if p.is_alive()]  # reap the finished
    process = multiprocessing.get_context("spawn").Process(
        target=run_job, args=(url, batch_id, holder, open_chain), name=f"audit-batch-{batch_id}",
        daemon=True)
    process.start()
    _children.append(process)
