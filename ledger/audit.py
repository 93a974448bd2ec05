"""An auditor's recomputation of a sealed batch, from the partners' raw records up.

For every entry of the batch: the sealed leaf must encode the entry's columns; a credit's
raw record (as the partner submitted it, RFC 8785) must hash to the leaf's ``recordHash``
and re-parse to the same behaviour, quantity and time; the methodology version in force
at that time must be the one recorded; the reduction recomputed from the published
factors must equal the credited grams, or exceed them only where a daily or monthly
cap shows it was reached; points must follow that version's rule; the locator must
find the entry by its id. The batch's tree is rebuilt from the leaves and must give the
stored root, and the leaf hashes in entry order the stored content hash. Given a chain
reader, the recomputed root, leaf count and content hash must also be what the chain
holds: the root in the contract's state, the rest in the anchoring transaction's event.

Each entry is recomputed by :mod:`ledger.entry_audit`, a page at a time, so memory stays
constant but for the 32 bytes of each leaf's hash the root needs (sorted in place, the
tree's inner nodes hashed depth first and never stored): a batch of any size can be
audited; :func:`audit_entries` serves one page of the per-entry recomputation.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ledger.anchor_audit import anchored_batch
from ledger.anchoring import ChainReader
from ledger.entry_audit import PAGE_SIZE, EntryAudit, audited_pages, shown
from ledger.errors import AnchorMismatch, InvalidInput, NotFound
from ledger.hashing import keccak
from ledger.merkle import sorted_root
from ledger.store.models import Batch

#: Problems kept as text in a report; every problem is counted (``problem_count``), but
#: a batch tampered throughout must not grow the report with the batch.
MAX_PROBLEMS = 1000
Progress = Callable[[int, int], None]


@dataclass
class AuditReport:
    batch_id: int
    entries: int = 0
    credits: int = 0
    capped: int = 0
    grams: int = 0
    #: The first :data:`MAX_PROBLEMS` problems; ``problem_count`` counts them all.
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    #: What the leaves give, and what the batch was sealed (and so anchored) with.
    recomputed: Recomputed | None = None
    sealed: Recomputed | None = None

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add_problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def as_dict(self) -> dict[str, object]:
        return {"batchId": self.batch_id, "entries": self.entries, "credits": self.credits,
                "capped": self.capped, "reductionGrams": self.grams, "ok": self.ok,
                "problems": self.problems, "problemCount": self.problem_count,
                "recomputed": self.recomputed.as_dict() if self.recomputed else None,
                "sealed": self.sealed.as_dict() if self.sealed else None}


@dataclass(frozen=True)
class Recomputed:
    root: bytes
    leaf_count: int
    content_hash: bytes

    def as_dict(self) -> dict[str, object]:
        return {"root": shown(self.root), "leafCount": self.leaf_count,
                "contentHash": shown(self.content_hash)}


@dataclass(frozen=True)
class EntryPage:
    batch_id: int
    entries: list[EntryAudit]
    #: the ``after`` of the next page; None on the batch's last page
    next_after: int | None


def audit_batch(session: Session, batch_id: int, *, chain: ChainReader | None = None,
                progress: Progress | None = None, workers: int = 1,
                page_size: int = PAGE_SIZE) -> AuditReport:
    """Recompute batch ``batch_id``; with ``chain``, hold the result against the chain too.

    ``progress(done, total)`` is called as pages are done. Read it in one snapshot (a
    ``snapshot=True`` session). With ``workers`` > 1 a large batch's seq range is cut in
    as many slices, each audited by a forked process through its own connection (the
    entries of a sealed batch are never written again, so the slices read what the
    parent would); call it so only where forking is safe (not in a threaded server)."""
    batch = _batch(session, batch_id)
    report = AuditReport(batch_id, sealed=Recomputed(batch.root, batch.leaf_count,
                                                     batch.content_hash))
    slices = _slices(batch.first_seq, batch.last_seq, workers)
    engine = session.get_bind().engine
    in_memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    forking = len(slices) > 1 and not in_memory
    if not forking:
        parts = [_audit_range(session, batch, batch.first_seq, batch.last_seq, page_size,
                              _progress_of(progress, batch.leaf_count))]
    else:
        parts = _audit_in_workers(engine, batch, slices, page_size, progress)
    hashes = bytearray()
    for part in parts:
        report.entries += part.entries
        report.credits += part.credits
        report.capped += part.capped
        report.grams += part.grams
        for problem in part.problems:
            report.add_problem(problem)
        report.problem_count += part.problem_count - len(part.problems)
        hashes += part.hashes
    del parts
    if report.entries != batch.leaf_count:
        report.add_problem(f"the batch holds {report.entries} entries, sealed {batch.leaf_count}")
    elif report.entries:
        content_hash = keccak(hashes)  # type: ignore[arg-type]  # a buffer is hashed as is
        root = sorted_root(hashes, elsewhere=in_child if forking else None)
        rebuilt = Recomputed(root, report.entries, content_hash)
        report.recomputed = rebuilt
        if rebuilt.root != batch.root:
            report.add_problem(f"the leaves give root 0x{rebuilt.root.hex()}, "
                               f"sealed 0x{batch.root.hex()}")
        if rebuilt.content_hash != batch.content_hash:
            report.add_problem(f"the leaves give content hash 0x{rebuilt.content_hash.hex()}, "
                               f"sealed 0x{batch.content_hash.hex()}")
        if chain is not None:
            for problem in _against_chain(chain, batch, rebuilt):
                report.add_problem(problem)
    return report


@dataclass
class _Part:
    """One slice of a batch audited: its tallies, problems and leaf hashes in seq order."""

    entries: int = 0
    credits: int = 0
    capped: int = 0
    grams: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    hashes: bytearray = field(default_factory=bytearray)


def _audit_range(session: Session, batch: Batch, first: int, last: int, page_size: int,
                 done: Callable[[int], None] | None = None) -> _Part:
    part = _Part()
    hashes = part.hashes
    for page in audited_pages(session, batch, first - 1, page_size, last=last):
        part.entries += len(page)
        for entry in page:
            hashes += entry.leaf_hash
            if entry.credit:
                part.credits += 1
                part.grams += entry.credited_grams
                if entry.capped:
                    part.capped += 1
            if entry.problems:
                for problem in entry.problems:
                    part.problem_count += 1
                    if len(part.problems) < MAX_PROBLEMS:
                        part.problems.append(f"entry 0x{entry.entry_id.hex()}: {problem}")
        if done is not None:
            done(len(page))
    return part


def _progress_of(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    seen = [0]

    def done(n: int) -> None:
        seen[0] += n
        progress(seen[0], total)
    return done


#: Below this many entries a batch is audited in the calling process: forking and
#: connecting cost more than they save.
_FORK_AT = 50_000
_counter: Any = None  # a worker's shared count of entries done (set when it starts)


def _slices(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    if parts <= 1 or last - first + 1 < _FORK_AT:
        return [(first, last)]
    size = -(-(last - first + 1) // parts)
    return [(lo, min(lo + size - 1, last)) for lo in range(first, last + 1, size)]


def _start_worker(engine: Any, counter: Any) -> None:
    global _counter
    engine.dispose(close=False)  # the parent's pooled connections are the parent's
    _counter = counter


def _count(n: int) -> None:
    with _counter.get_lock():
        _counter.value += n


def _worker_range(url: str, batch_id: int, first: int, last: int, page_size: int) -> _Part:
    from ledger.store.database import Database

    db = Database(url)
    try:
        with db.session(snapshot=True) as s:
            return _audit_range(s, _batch(s, batch_id), first, last, page_size, _count)
    finally:
        db.engine.dispose()


def _audit_in_workers(engine: Engine, batch: Batch, slices: list[tuple[int, int]],
                      page_size: int, progress: Progress | None) -> list[_Part]:
    url = engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", 0)
    # A forked child inherits the parent's pooled connections (PostgreSQL sockets): it
    # forgets them unclosed, and reads through an engine of its own.
    with ProcessPoolExecutor(max_workers=len(slices), mp_context=ctx, initializer=_start_worker,
                             initargs=(engine, counter)) as pool:
        futures = [pool.submit(_worker_range, url, batch.id, lo, hi, page_size)
                   for lo, hi in slices]
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
            if any(f.done() and f.exception() for f in futures):
                break
            if progress is not None:
                progress(counter.value, batch.leaf_count)
        parts = [f.result() for f in futures]
    if progress is not None:
        progress(counter.value, batch.leaf_count)
    return parts


def audit_entries(session: Session, batch_id: int, *, after: int | None = None,
                  limit: int = PAGE_SIZE) -> EntryPage:
    """One page of batch ``batch_id``'s per-entry recomputation: its entries with ``seq``
    above ``after`` (from the batch's first), at most ``limit`` of them."""
    if limit < 1:
        raise InvalidInput("must be at least 1", field="limit")
    batch = _batch(session, batch_id)
    start = batch.first_seq - 1 if after is None else max(after, batch.first_seq - 1)
    entries = next(audited_pages(session, batch, start, limit, one=True), [])
    last = entries[-1].seq if entries else None
    return EntryPage(batch_id, entries, last if last is not None and last < batch.last_seq
                     else None)


def _batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}", field="batch_id")
    return batch


# -- the root's other half ------------------------------------------------------------------

def in_child(compute: Callable[[], bytes]) -> Callable[[], bytes]:
    """Start ``compute()`` in a forked child; the function returned waits for its 32 bytes
    (call it after the caller's own half of the work)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only the hash, none of the parent's cleanup
        try:
            os.write(write, compute())
        finally:
            os._exit(0)
    os.close(write)

    def result() -> bytes:
        try:
            value = os.read(read, 32)
        finally:
            os.close(read)
            os.waitpid(pid, 0)
        if len(value) != 32:
            raise RuntimeError("the forked child hashing half the tree gave no hash")
        return value
    return result


# -- the chain --------------------------------------------------------------------------------

def _against_chain(chain: ChainReader, batch: Batch, rebuilt: Recomputed) -> list[str]:
    """How what the chain holds for ``batch`` differs from its recomputation."""
    try:
        on_chain = anchored_batch(chain, batch.id, look_first=batch.tx_hash)
    except AnchorMismatch as exc:
        return [exc.message]
    if on_chain is None:
        return [] if batch.status != "anchored" else [f"batch {batch.id} is not on chain"]
    where = f"tx 0x{on_chain.tx_hash.hex()}"
    return [f"the chain holds {name} {shown(chained)} ({source}), the leaves give {shown(ours)}"
            for name, source, chained, ours in (
                ("root", "the contract's state", on_chain.root, rebuilt.root),
                ("leaf count", f"the event of {where}", on_chain.leaf_count, rebuilt.leaf_count),
                ("content hash", f"the event of {where}", on_chain.content_hash,
                 rebuilt.content_hash))
            if chained != ours]


