"""What the running app holds: the container, the chain port and the services."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.composition import Container
from api.http.gate import DecideFirst
from api.http.turns import PerTurn
from ledger.anchoring import Anchor
from ledger.lru import Lru
from ledger.proof_service import ProofService
from ledger.seal_scheduler import SealScheduler


@dataclass
class AppState:
    container: Container
    anchor: Anchor
    scheduler: SealScheduler
    proofs: ProofService
    #: this process's checks wait while it holds the write lock (see api.http.gate)
    decide_first: DecideFirst
    #: proof bundles made from the database per turn of this process's event loop: 4 was
    #: the best of 1, 4 and 8 for a cold start's p99 (docs/benchmarks.md, "Cold proofs")
    bundle_turns: PerTurn = field(default_factory=lambda: PerTurn(4))
    #: the public city report's answers, (body, ETag) by (from, to, period, closedThrough):
    #: a year by day is about 1 MB, so at most 8 of them
    city_answers: Lru[tuple[object, ...], tuple[bytes, str]] = field(
        default_factory=lambda: Lru(8))

    @property
    def chain_id(self) -> int:
        return self.anchor.chain_id
