"""Proof bundles of anchored entries, kept in memory by the HTTP app.

Once an entry's batch is anchored its bundle never changes except the confirmations
count, so each is kept as JSON (with the entry's owner, for the citizens' route) and
the count is appended per request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.lru import Lru

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


class ProofCache:
    """A bounded LRU of anchored entries' bundles, by entry id."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._proofs = Lru[bytes, CachedProof](size)

    def __len__(self) -> int:
        return len(self._proofs)

    def get(self, entry_id: bytes) -> CachedProof | None:
        cached = self._proofs.get(entry_id)
        if cached is not None and time.monotonic() - cached.cached_at > MAX_AGE_SECONDS:
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
