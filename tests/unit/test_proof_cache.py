"""The proof service's bundle cache: what it says it holds is what it answers."""

from __future__ import annotations

import pytest

import ledger.proof_service as proof_service
from ledger.proof_service import MAX_AGE_SECONDS, ProofCache


def test_a_bundle_past_its_age_is_neither_held_nor_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(proof_service.time, "monotonic", lambda: now[0])
    cache = ProofCache(size=4)
    entry = bytes(31) + b"\1"
    cache.put(entry, 7, {"status": "anchored", "blockNumber": 3})
    assert entry in cache and cache.get(entry) is not None
    now[0] += MAX_AGE_SECONDS + 1
    # the route asks `in` to decide whether a bundle needs a turn of its own: an expired
    # one is made from the database, so it is not "in"
    assert entry not in cache
    assert cache.get(entry) is None and len(cache) == 0


def test_asking_whether_a_bundle_is_held_keeps_the_lru_order() -> None:
    cache = ProofCache(size=2)
    first, second, third = (bytes([n]) * 32 for n in (1, 2, 3))
    cache.put(first, 1, {"status": "anchored", "blockNumber": 1})
    cache.put(second, 1, {"status": "anchored", "blockNumber": 1})
    assert first in cache  # a peek: `first` stays the least recently used
    cache.put(third, 1, {"status": "anchored", "blockNumber": 1})
    assert first not in cache and second in cache and third in cache
