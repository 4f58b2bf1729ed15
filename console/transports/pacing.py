"""Handing results back a few per event-loop iteration, so parsing never starves the screen.

When hundreds of hosts answer within the same millisecond, asyncio resumes
every waiting collector in the same loop iteration, and each parses its
host's output before the loop gets back to the keyboard and the screen (an
XML read of 8 GPUs is 2-3 ms: at 1,000 hosts, iterations of 100 ms and more).
A ``LoopPacer`` lets ``per_tick`` callers through per iteration and the
others in the next ones: the same work, interleaved with everything else.
"""

from __future__ import annotations

import asyncio
from collections import deque


class LoopPacer:
    """``await pacer.turn()`` returns at most ``per_tick`` times per loop iteration (about)."""

    def __init__(self, per_tick: int = 4) -> None:
        if per_tick < 1:
            raise ValueError("per_tick must be at least 1")
        self.per_tick = per_tick
        self._left = per_tick
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._armed = False
        self.deferred = 0
        """How many turns had to wait for a later iteration (tests, benchmarks)."""

    async def turn(self) -> None:
        if self._left > 0 and not self._waiting:
            self._left -= 1
            self._arm()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        self.deferred += 1
        self._arm()
        await fut

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        # Runs once per loop iteration while there is traffic: a new allowance, and the
        # oldest waiters let through (they resume in the next iteration).
        self._armed = False
        self._left = self.per_tick
        while self._left and self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():  # a cancelled waiter does not use the allowance
                fut.set_result(None)
                self._left -= 1
        if self._waiting:
            self._arm()
