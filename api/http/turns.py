"""Expensive answers made on the event loop, a few per turn of it.

uvloop, like the libuv it wraps, accepts one new connection per turn of the loop, and a
turn runs every callback that was ready when it began. A route that makes an expensive
answer on the loop (a proof bundle read from the database: 0.5-1.5 ms) makes one for
every connection waiting with such a request, each turn, so the turn grows with the
connections and so does the wait to be accepted. 64 connections opened at once to two
fresh workers (wrk's start, or clients coming back after a restart) were accepted one per
20-40 ms turn: the last first requests were answered after ~0.7 s, which set the p99 of
a 10 s cold run. :class:`PerTurn` lets a few such answers be made per turn and queues
the rest in arrival order, so turns stay short: connections are accepted and cheap
answers given while the expensive ones wait their turn (docs/benchmarks.md, "Cold
proofs")."""

from __future__ import annotations

import asyncio
from collections import deque


class PerTurn:
    """At most ``per_turn`` callers of :meth:`admit` go on in one turn of the loop; the
    others wait, first come first served, for a later turn. One per event loop."""

    def __init__(self, per_turn: int) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self.per_turn = per_turn
        self._left = per_turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_ahead = False  # a reset is scheduled for the next turn

    async def admit(self) -> None:
        """Return when the caller may do its work (in this turn, or a later one)."""
        loop = asyncio.get_running_loop()
        self._next_turn_resets(loop)
        if self._left > 0 and not self._waiting:
            self._left -= 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        await waiter

    def _next_turn_resets(self, loop: asyncio.AbstractEventLoop) -> None:
        # a callback scheduled now runs in the loop's next turn, not this one
        if not self._turn_ahead:
            self._turn_ahead = True
            loop.call_soon(self._new_turn, loop)

    def _new_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._turn_ahead = False
        self._left = self.per_turn
        while self._left > 0 and self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a caller whose client went away takes no place
                waiter.set_result(None)
                self._left -= 1
        if self._waiting:
            self._next_turn_resets(loop)
