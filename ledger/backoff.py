"""The one retry policy for work that resumes from the database: the wait doubles after
each failure, from ``first`` up to ``longest``, and starts over after a success. The seal
scheduler and :func:`retry_unavailable` (a CLI seal while the node is away) both wait by
it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ledger.errors import ChainUnavailable

T = TypeVar("T")
log = logging.getLogger("carbon_ledger.chain")


@dataclass
class Backoff:
    first: float = 2.0
    longest: float = 60.0
    failures: int = 0

    @property
    def wait(self) -> float:
        """Seconds to wait before the next try (0 while nothing has failed)."""
        if not self.failures:
            return 0.0
        return min(self.longest, self.first * 2.0 ** (self.failures - 1))

    def failed(self) -> float:
        """Count a failure; the wait before the next try."""
        if self.wait < self.longest:
            self.failures += 1
        return self.wait

    def succeeded(self) -> None:
        self.failures = 0


def retry_unavailable(action: Callable[[], T], *, retry_for: float, what: str,
                      first_wait: float = 1.0, longest_wait: float = 15.0) -> T:
    """Run ``action``; while the node does not answer, log and try again with backoff
    for up to ``retry_for`` seconds. Safe for work that resumes from the database."""
    deadline = time.monotonic() + retry_for
    backoff = Backoff(first=first_wait, longest=longest_wait)
    while True:
        try:
            return action()
        except ChainUnavailable as exc:
            wait = backoff.failed()
            if time.monotonic() + wait > deadline:
                raise ChainUnavailable(f"{exc.message} (gave up after {retry_for:.0f}s)",
                                       field=exc.field) from exc
            log.warning("%s: %s; trying again in %.0fs", what, exc.message, wait)
            time.sleep(wait)
