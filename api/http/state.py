"""What the running app holds: the container, the chain port and the services."""

from __future__ import annotations

from dataclasses import dataclass

from api.composition import Container
from api.http.gate import DecideFirst
from ledger.anchoring import Anchor
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

    @property
    def chain_id(self) -> int:
        return self.anchor.chain_id
