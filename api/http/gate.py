"""A serving process decides first: while one of its threads holds the write lock, its
other submissions' checks wait between chunks of records.

Checking (parsing, canonicalising, quantifying) and deciding (in the write lock) are
both Python, so two threads of one process doing them at once share the GIL, handed back
and forth every few milliseconds: the lock, which every worker waits for, is then held
about twice as long. Measured with `scripts/bench_api.py`, one worker and two clients:
the locked part took 62 ms a submission beside a check, 31 ms alone. Checks pause only
while this process is deciding, not while it waits for the lock, so they still overlap
other workers' turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class DecideFirst:
    #: the longest one pause waits (a check of a large submission is slowed, never stuck)
    MAX_PAUSE = 1.0

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._deciding = 0

    def pause(self) -> None:
        """Called by a check between chunks: return once no thread of this process is
        deciding (or after :attr:`MAX_PAUSE`)."""
        if not self._deciding:  # the common case, without the condition's lock
            return
        with self._changed:
            self._changed.wait_for(lambda: not self._deciding, timeout=self.MAX_PAUSE)

    @contextmanager
    def deciding(self) -> Iterator[Callable[[], None]]:
        """Around a write-locked unit of work; call what it yields once the lock is held
        (checks pause from then until the block is left, after the commit)."""
        began = False

        def begin() -> None:
            nonlocal began
            with self._changed:
                self._deciding += 1
            began = True

        try:
            yield begin
        finally:
            if began:
                with self._changed:
                    self._deciding -= 1
                    self._changed.notify_all()
