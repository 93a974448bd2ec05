"""When a serving process seals: the background loop, its backoff, and what it reports.

Each serving process runs one :class:`SealScheduler`. Every second it looks at how many
entries wait; it seals when ``interval`` has passed since its last seal or ``pending``
entries wait, and after a failure it waits by the shared :class:`~ledger.backoff.Backoff`
(never longer than ``interval``, so once the database or the node is back the next batch
is anchored within two intervals). Only one process seals at a time (the sealer's lease):
the others find it taken, which is normal with several workers; the scheduler logs who
holds it and for how long at most once a minute, as a warning once entries have waited
longer than two intervals. :meth:`status` is what ``/v1/info`` shows an operator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ledger import views
from ledger.backoff import Backoff
from ledger.entries import oldest_unanchored_batch
from ledger.errors import AnchoringTurnTaken, ChainUnavailable, Conflict, LedgerError
from ledger.sealing import SEALER_LEASE, Sealer
from ledger.store import rollups
from ledger.store.database import OUTAGES, Database, first_line
from ledger.store.leases import lease_holder

log = logging.getLogger("carbon_ledger.sealer")

#: The least time between two log lines about the same kind of trouble.
LOG_EVERY_SECONDS = 60.0


class SealScheduler:
    def __init__(self, db: Database, new_sealer: Callable[[], Sealer], *, interval: float,
                 pending: int, on_proofs_changed: Callable[[list[int]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 chores: Sequence[Callable[[], None]] = ()) -> None:
        self.db, self.new_sealer = db, new_sealer
        #: the lease holder's work after a seal, each on its own clock (month statements)
        self.chores = tuple(chores)
        self.interval, self.pending = interval, pending
        #: called with the ids of batches whose proofs a reorg changed (sent again, or
        #: their anchor mined in another block): anything caching their bundles drops them
        self.on_proofs_changed = on_proofs_changed
        self.backoff = Backoff(first=min(2.0, interval), longest=min(60.0, interval))
        self._clock = clock
        self.state = "idle"  # idle | sealing | lease-taken | backing-off | stopped
        self.last_error: str | None = None
        self.last_anchor_at: float | None = None  # unix seconds
        self._pending_since: float | None = None  # unix seconds: first seen waiting
        self._logged: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round --------------------------------------------------------------------

    def seal_once(self) -> bool:
        """One seal; False if it failed (it is tried again later: the state is in the
        database, so nothing is lost or sent twice). A lease held elsewhere is not a
        failure."""
        self.state = "sealing"
        sealer = self.new_sealer()
        try:
            for batch in sealer.seal():
                log.info("anchored batch %s (%s entries) in block %s", batch.id,
                         batch.leaf_count, batch.block_number)
                self.last_anchor_at = time.time()
        except Conflict as exc:
            self.state = "lease-taken"
            self._lease_taken(exc)
            return True
        except ChainUnavailable as exc:
            return self._failed("chain", f"the node does not answer, sealing resumes when it "
                                         f"does: {exc}")
        except LedgerError as exc:
            return self._failed(exc.code, f"sealing failed, will retry: {exc}")
        except OUTAGES as exc:  # the tree is read through the engine, not a session
            return self._failed("database-unavailable", f"sealing failed, will retry: the "
                                f"database did not answer: {first_line(exc.orig)}")
        except Exception as exc:  # noqa: BLE001 - the sealer thread must outlive any one failure
            log.exception("sealing failed unexpectedly, will retry")
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            self.state = "backing-off"
            return False
        finally:
            changed = sealer.reanchored + sealer.moved
            if changed and self.on_proofs_changed is not None:
                self.on_proofs_changed(changed)
        self.state, self.last_error = "idle", None
        self._pending_since = None
        self._fold_city_rollups()
        for chore in self.chores:
            try:
                chore()
            except AnchoringTurnTaken:  # another worker seals or anchors now: a later seal
                self._log_at_most_once_a_minute(
                    "chore-turn", logging.INFO, "a chore after sealing waits: another process "
                    "holds the anchoring key's turn")
            except Exception as exc:  # noqa: BLE001 - a chore, tried again after the next seal
                self._log_at_most_once_a_minute(
                    "chore", logging.WARNING, f"a chore after sealing failed: {exc}")
        return True

    def _fold_city_rollups(self) -> None:
        """The lease holder's chore after a seal: gather settled days' rollup parts (see
        :func:`ledger.store.rollups.fold`), so the city report reads one row per cell.
        Best effort: unfolded parts are summed by readers all the same."""
        try:
            with self.db.session() as s:
                rollups.fold(s.connection(), int(time.time()))
        except Exception as exc:  # noqa: BLE001 - a chore, tried again after the next seal
            self._log_at_most_once_a_minute(
                "fold", logging.WARNING, f"could not fold the city rollups: {exc}")

    def _failed(self, kind: str, message: str) -> bool:
        self.state, self.last_error = "backing-off", message[:300]
        self._log_at_most_once_a_minute(kind, logging.WARNING, message)
        return False

    def _lease_taken(self, exc: Conflict) -> None:
        try:
            held = lease_holder(self.db, SEALER_LEASE)
        except LedgerError:
            held = None
        who = (f"held by {held[0]} for {max(0.0, held[1]):.0f} s more" if held
               else "(the holder could not be read)")
        try:
            waited = self.oldest_wait()
        except LedgerError:  # e.g. the database went away since the lease was refused
            waited = None
        stalled = waited is not None and waited > 2 * self.interval
        self._log_at_most_once_a_minute(
            "lease", logging.WARNING if stalled else logging.INFO,
            f"sealing waits for the sealer lease, {who}: {exc.message}"
            + (f"; the oldest unanchored entry has waited {waited:.0f} s" if stalled else ""))

    def _log_at_most_once_a_minute(self, kind: str, level: int, message: str) -> None:
        now = self._clock()
        if now - self._logged.get(kind, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            self._logged[kind] = now
            log.log(level, message)

    # -- the loop ---------------------------------------------------------------------

    def due(self, since_last: float) -> bool:
        """Whether to seal now, ``since_last`` seconds after the last try."""
        if self.backoff.failures:
            return since_last >= self.backoff.wait
        with self.db.session() as s:
            waiting = views.unsealed_entries(s)
        if waiting and self._pending_since is None:
            self._pending_since = time.time()
        return since_last >= self.interval or waiting >= self.pending

    def start(self) -> None:
        def loop() -> None:
            last = self._clock()
            while not self._stop.wait(1.0):
                try:
                    due = self.due(self._clock() - last)
                except Exception as exc:  # noqa: BLE001 - e.g. the database is down
                    self._log_at_most_once_a_minute(
                        "check", logging.WARNING,
                        f"could not tell whether to seal ({type(exc).__name__}: {exc}); "
                        "trying again")
                    continue
                if due:
                    try:
                        sealed = self.seal_once()
                    except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                        sealed = self._failed("round", f"a sealing round failed "
                                                       f"({type(exc).__name__}: {exc})")
                    if sealed:
                        self.backoff.succeeded()
                    else:
                        self.backoff.failed()
                    last = self._clock()

        self._thread = threading.Thread(target=loop, name="sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.state = "stopped"

    # -- what an operator sees --------------------------------------------------------

    def oldest_wait(self) -> float | None:
        """Seconds the oldest entry not yet anchored has waited, as far as this process
        can tell: since the oldest unanchored batch was sealed, or since this process
        first saw entries waiting to be sealed (at most a second late; a process that
        started with a backlog counts from its start). None if nothing waits."""
        with self.db.session(snapshot=True) as s:
            sealed = oldest_unanchored_batch(s)
            if self._pending_since is None and views.unsealed_entries(s):
                self._pending_since = time.time()
        starts = [self._pending_since] if self._pending_since is not None else []
        if sealed is not None:
            starts.append(float(sealed))
        return max(0.0, time.time() - min(starts)) if starts else None

    def status(self) -> dict[str, Any]:
        """The sealer's state, when this process last anchored, and how long the oldest
        unanchored entry has waited (public: no error text, which the log has)."""
        try:
            waited: float | None = self.oldest_wait()
            readable = True
        except LedgerError:
            waited, readable = None, False
        return {"state": self.state,
                "lastAnchorAt": int(self.last_anchor_at) if self.last_anchor_at else None,
                "oldestUnanchoredSeconds": None if waited is None else int(waited),
                "databaseReadable": readable}


class Throttle:
    """For a chore run after every seal that need not run that often: due the first time,
    then once ``every`` seconds have passed since it last was."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            return False
        self._last = now
        return True

    def again(self) -> None:
        """Due again at once (its run was put off, not done)."""
        self._last = None
