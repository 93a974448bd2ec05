"""What the running app holds: the container, its chain client, the background sealer."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select

from api.composition import Container
from chain.client import EvmAnchor
from ledger.errors import Conflict, LedgerError
from ledger.models import Batch, LedgerEntry

log = logging.getLogger("carbon_ledger.sealer")


@dataclass
class AppState:
    container: Container
    anchor: EvmAnchor
    _head: tuple[float, int] = (0.0, 0)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def chain_id(self) -> int:
        return self.anchor.chain_id

    def confirmations(self, block_number: int) -> int:
        """Confirmations from a head block number read at most once a second."""
        at, head = self._head
        if time.monotonic() - at > 1.0:
            head = int(self.anchor.w3.eth.block_number)
            self._head = (time.monotonic(), head)
        return max(0, head - block_number + 1)

    def pending_entries(self) -> int:
        with self.container.db.session() as s:
            last = s.scalar(select(func.max(Batch.last_seq))) or 0
            return int(s.scalar(select(func.count()).where(LedgerEntry.seq > last)) or 0)

    def seal_once(self) -> None:
        try:
            for batch in self.container.sealer(self.anchor).seal():
                log.info("anchored batch %s (%s entries) in block %s", batch.id,
                         batch.leaf_count, batch.block_number)
        except Conflict:
            pass  # another worker is sealing: the lease in the database says so
        except LedgerError as exc:
            log.error("sealing failed, will retry: %s", exc)

    def start_sealer(self) -> None:
        settings = self.container.settings

        def loop() -> None:
            last = time.monotonic()
            while not self._stop.wait(1.0):
                due = time.monotonic() - last >= settings.seal_interval
                if due or self.pending_entries() >= settings.seal_pending:
                    self.seal_once()
                    last = time.monotonic()

        self._thread = threading.Thread(target=loop, name="sealer", daemon=True)
        self._thread.start()

    def stop_sealer(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
