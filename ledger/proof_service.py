"""The proof service both faces use: an entry's bundle, from the stored tree, with its
confirmations counted against the chain's head.

Once an entry's batch is anchored its bundle never changes except the confirmations
count, so each is kept as JSON (with the entry's owner, for the citizens' route) and the
count is appended per request; the head is read at most once a second (in a serving
process by a thread of its own, :meth:`ProofService.following_head`). The service owns
those caches and the sealed trees' (:class:`~ledger.proofs.TreeCache`): rows of 1 KiB, a
proof reading only the few its nodes are in, so a batch's first proof after a start
costs about what any other does, whatever the batch's size."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from eth_utils import to_checksum_address
from sqlalchemy import select

from ledger.errors import ChainUnavailable, LedgerError, NotFound
from ledger.lru import Lru
from ledger.proofs import TreeCache, entry_proof, proof_bundle
from ledger.store.database import Database
from ledger.store.models import Batch, LedgerEntry

log = logging.getLogger(__name__)

# A bundle is about 2 KB of JSON: 16,384 of them are ~32 MB per worker.
DEFAULT_SIZE = 16_384
# A bundle changes only if a reorg deeper than the confirmations makes the sealer anchor
# its batch again: that worker clears its cache at once, the others within this long.
MAX_AGE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class CachedProof:
    citizen_id: int
    block_number: int
    head: bytes  # the bundle's JSON without its closing brace
    cached_at: float = 0.0

    def body(self, confirmations: int) -> bytes:
        """The bundle's JSON with ``confirmations`` as its last member."""
        return self.head + b',"confirmations":%d}' % confirmations


def _expired(cached: CachedProof) -> bool:
    return time.monotonic() - cached.cached_at > MAX_AGE_SECONDS


class ProofCache:
    """A bounded LRU of anchored entries' bundles, by entry id."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._proofs = Lru[bytes, CachedProof](size)

    def __len__(self) -> int:
        return len(self._proofs)

    def __contains__(self, entry_id: bytes) -> bool:
        """Whether :meth:`get` would answer the entry's bundle without a query (kept, and
        not too old), leaving the LRU order as it was."""
        cached = self._proofs.peek(entry_id)
        return cached is not None and not _expired(cached)

    def get(self, entry_id: bytes) -> CachedProof | None:
        cached = self._proofs.get(entry_id)
        if cached is not None and _expired(cached):
            self._proofs.drop(entry_id)  # a re-anchor in another worker shows by then
            return None
        return cached

    def clear(self) -> None:
        """Forget every bundle: a batch was anchored again (after a reorg) elsewhere."""
        self._proofs.clear()

    def put(self, entry_id: bytes, citizen_id: int, bundle: dict[str, Any]) -> CachedProof:
        """Keep an anchored entry's bundle (its JSON, without confirmations)."""
        if bundle["status"] != "anchored" or "confirmations" in bundle:
            raise ValueError("only an anchored bundle without confirmations is cached")
        cached = CachedProof(citizen_id, bundle["blockNumber"], orjson.dumps(bundle)[:-1],
                             time.monotonic())
        self._proofs.put(entry_id, cached)
        return cached


class ProofService:
    """Bundles for the faces. ``head`` reads the chain's newest block number (None: no
    chain at hand, as for the CLI's ``proof``, whose bundle has no confirmations)."""

    def __init__(self, db: Database, head: Callable[[], int] | None = None, *,
                 bundles: int = DEFAULT_SIZE, tree_rows: int = 4096) -> None:
        self.db = db
        self._head = head
        self._head_read: tuple[float, int] = (0.0, 0)
        self._following = False  # a thread reads the head (following_head)
        self.bundles = ProofCache(bundles)
        self.trees = TreeCache(tree_rows)
        # A bundle names its contract by checksum address, whose keccak backend loads its
        # library at first use (pycryptodome runs `file` in a subprocess to learn the
        # architecture: ~10 ms); paid here, at start, not by the first proof asked for.
        to_checksum_address(b"\0" * 20)

    def answer(self, entry_id: bytes, *, owner: int | None = None) -> bytes | dict[str, Any]:
        """The anchored entry's bundle as JSON with its confirmations, or (while its batch
        is not anchored) its pending status. With ``owner``, another citizen's entry is
        :class:`NotFound`, exactly like an entry that does not exist: a citizen cannot
        tell the two apart."""
        cached = self.bundles.get(entry_id)
        if cached is None:
            with self.db.reads() as conn:
                try:
                    found = entry_proof(conn, entry_id, cache=self.trees)
                except NotFound:
                    raise _no_entry(entry_id) from None
            if owner is not None and found.citizen_id != owner:
                raise _no_entry(entry_id)
            if found.bundle is None:
                return {"entryId": "0x" + entry_id.hex(), "status": "pending",
                        "detail": found.pending}
            cached = self.bundles.put(entry_id, found.citizen_id, found.bundle)
        elif owner is not None and cached.citizen_id != owner:
            raise _no_entry(entry_id)
        return cached.body(self.confirmations(cached.block_number))

    def bundle(self, entry_id: bytes) -> dict[str, Any]:
        """The anchored entry's bundle (:class:`~ledger.errors.NotAnchored` until then),
        without confirmations."""
        with self.db.reads() as conn:
            return proof_bundle(conn, entry_id, cache=self.trees)

    def confirmations(self, block_number: int) -> int:
        """Confirmations from a head block number read at most once a second (the last one
        read while the node does not answer); while :meth:`following_head`, the head its
        thread read last, read here only for the first count, or when the block asked about
        is newer than that head (a batch anchored since)."""
        if self._head is None:
            raise ChainUnavailable("no chain to count confirmations on", field="chain")
        at, head = self._head_read
        if at == 0.0 or head < block_number or (
                not self._following and time.monotonic() - at > 1.0):
            try:
                head = self._head()
            except ChainUnavailable:
                if at == 0.0:
                    raise
            else:
                self._head_read = (time.monotonic(), head)
        return max(0, head - block_number + 1)

    @contextlib.contextmanager
    def following_head(self, interval: float = 1.0) -> Iterator[None]:
        """For a serving process: a thread of its own reads the head every ``interval``
        seconds, so no answer waits on the chain's node (:meth:`confirmations` takes the
        last head read, however old, once there is one). Read on the event loop, one slow
        answer held every request of the worker: a local anvil writing its state each
        second answered 1 read in 100 in about 300 ms, and at 10 M entries that was the
        proof GETs' p99 (docs/benchmarks.md, "Cold proofs at 10 M")."""
        if self._head is None:
            yield
            return
        head, stop = self._head, threading.Event()

        def follow() -> None:
            while True:
                try:
                    self._head_read = (time.monotonic(), head())
                except Exception as exc:  # noqa: BLE001 - the last head stands; try again
                    log.debug("reading the chain's head: %s", exc)
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=follow, name="chain-head", daemon=True)
        self._following = True
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)
            self._following = False

    def warm(self) -> None:
        """Pay a fresh process's first-use costs before its first request does: make the
        bundle of the newest anchored entry (statements compiled, a database connection
        opened, the leaf and bundle code's first calls: ~30 ms, which the first requests
        to a fresh worker all waited for) and keep none of it but the tree rows read.
        Nothing to make yet, or a database that does not answer, is no error here: the
        first request meets it as it would have."""
        with contextlib.suppress(LedgerError), self.db.reads() as conn:
            newest = conn.execute(_NEWEST_ANCHORED).scalar()
            if newest is not None:
                entry_proof(conn, newest, cache=self.trees)

    def forget(self) -> None:
        """Drop every kept bundle: a reorg changed some batch's proofs."""
        self.bundles.clear()


# the entry that opens the newest anchored batch (one row read by the batches' key)
_NEWEST_ANCHORED = (select(LedgerEntry.entry_id).join(Batch, LedgerEntry.seq == Batch.first_seq)
                    .where(Batch.status == "anchored").order_by(Batch.id.desc()).limit(1))


def _no_entry(entry_id: bytes) -> NotFound:
    return NotFound(f"no entry 0x{entry_id.hex()}", field="entry_id")
