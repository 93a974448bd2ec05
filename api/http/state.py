"""What the running app holds: the container, its chain client, the background sealer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from api.composition import Container
from api.http.gate import DecideFirst
from chain.client import EvmAnchor
from ledger import views
from ledger.errors import ChainUnavailable, Conflict, LedgerError

log = logging.getLogger("carbon_ledger.sealer")


@dataclass
class AppState:
    container: Container
    anchor: EvmAnchor
    #: called with the ids of batches whose proofs a reorg changed (sent again, or their
    #: anchor mined in another block): anything caching their bundles must drop them
    on_proofs_changed: Callable[[list[int]], None] | None = None
    #: this process's checks wait while it holds the write lock (see api.http.gate)
    decide_first: DecideFirst = field(default_factory=DecideFirst)
    _head: tuple[float, int] = (0.0, 0)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def chain_id(self) -> int:
        return self.anchor.chain_id

    def confirmations(self, block_number: int) -> int:
        """Confirmations from a head block number read at most once a second (the last one
        read while the node does not answer)."""
        at, head = self._head
        if time.monotonic() - at > 1.0:
            try:
                head = self.anchor.head()
            except ChainUnavailable:
                if at == 0.0:
                    raise
            else:
                self._head = (time.monotonic(), head)
        return max(0, head - block_number + 1)

    def pending_entries(self) -> int:
        with self.container.db.session() as s:
            return views.unsealed_entries(s)

    def seal_once(self) -> bool:
        """One seal; False if it failed (it is tried again later: the state is in the
        database, so nothing is lost or sent twice)."""
        sealer = self.container.sealer(self.anchor)
        try:
            for batch in sealer.seal():
                log.info("anchored batch %s (%s entries) in block %s", batch.id,
                         batch.leaf_count, batch.block_number)
        except Conflict:
            pass  # another worker is sealing: the lease in the database says so
        except ChainUnavailable as exc:
            log.warning("the node does not answer, sealing resumes when it does: %s", exc)
            return False
        except LedgerError as exc:
            log.error("sealing failed, will retry: %s", exc)
            return False
        except Exception:  # noqa: BLE001 - the sealer thread must outlive any one failure
            log.exception("sealing failed unexpectedly, will retry")
            return False
        finally:
            changed = sealer.reanchored + sealer.moved
            if changed and self.on_proofs_changed is not None:
                self.on_proofs_changed(changed)
        return True

    def start_sealer(self) -> None:
        settings = self.container.settings

        def loop() -> None:
            last, failures = time.monotonic(), 0
            while not self._stop.wait(1.0):
                since = time.monotonic() - last
                try:
                    if failures:  # back off: 2, 4, 8 … 60 s between tries
                        due = since >= min(60.0, 2.0 ** failures)
                    else:
                        due = (since >= settings.seal_interval
                               or self.pending_entries() >= settings.seal_pending)
                except Exception:  # noqa: BLE001 - e.g. the database briefly locked
                    log.exception("could not tell whether to seal; trying again")
                    continue
                if due:
                    failures = 0 if self.seal_once() else min(failures + 1, 6)
                    last = time.monotonic()

        self._thread = threading.Thread(target=loop, name="sealer", daemon=True)
        self._thread.start()

    def stop_sealer(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
